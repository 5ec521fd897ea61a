"""WebSocket client and server roles against each other over real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSStream
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Pong, Request, TextMessage

from smolmix_cli.websocket import (
    WebSocketClosed,
    WebSocketConnection,
    WebSocketHandshakeError,
    WebSocketTimeout,
    connect_websocket,
    parse_websocket_url,
)
from tests.mixnet.wsutil import ws_server
from tests.self_signed import self_signed_tls

pytestmark = pytest.mark.anyio_backends("asyncio", "trio")


async def _echo(conn: WebSocketConnection) -> None:
    while True:
        try:
            message = await conn.receive(timeout=10)
        except WebSocketClosed:
            return
        if message == "close-4001":
            await conn.aclose(4001, "asked to")
            return
        if isinstance(message, str):
            await conn.send_text(message.upper())
        else:
            await conn.send_binary(message[::-1])


async def _accept_raw(stream: anyio.abc.ByteStream) -> WSConnection:
    """A plain wsproto server side: read until the upgrade request, accept it."""
    ws = WSConnection(ConnectionType.SERVER)
    while not any(isinstance(e, Request) for e in ws.events()):
        ws.receive_data(await stream.receive())
    await stream.send(ws.send(AcceptConnection()))
    return ws


@pytest.mark.anyio
@pytest.mark.parametrize("secure", [False, True])
async def test_echo_text_and_binary(secure: bool) -> None:
    tls = self_signed_tls() if secure else None
    async with ws_server(_echo, ssl_context=tls.server if tls else None) as server:
        scheme = "wss" if secure else "ws"
        url = f"{scheme}://localhost:{server.port}/some/path?x=1"
        async with await connect_websocket(
            url, ssl_context=tls.client if tls else None, timeout=5
        ) as client:
            await client.send_text("hello")
            assert await client.receive(timeout=5) == "HELLO"
            payload = bytes(range(256)) * 300  # 76800 bytes: several TCP reads
            await client.send_binary(payload)
            assert await client.receive(timeout=5) == payload[::-1]
            await client.send_binary(b"")
            assert await client.receive(timeout=5) == b""
        assert server.connections[0].path == "/some/path?x=1"
        with anyio.fail_after(5):
            await server.done.wait()
        assert server.errors == []
        assert client.closed is not None and client.closed.code == 1000 and client.closed.local


@pytest.mark.anyio
@pytest.mark.anyio_backends("asyncio")
@pytest.mark.parametrize("secure", [False, True])
async def test_asyncio_reads_at_most_64_kib(secure: bool) -> None:
    # Its default 256 KiB read buffer is mmap'd and unmapped for every read
    # (websocket._read_at_most); this fails when anyio or asyncio move the attribute.
    tls = self_signed_tls() if secure else None
    async with ws_server(_echo, ssl_context=tls.server if tls else None) as server:
        scheme = "wss" if secure else "ws"
        async with await connect_websocket(
            f"{scheme}://localhost:{server.port}/", ssl_context=tls.client if tls else None
        ) as client:
            stream = client._stream
            inner = stream.transport_stream if isinstance(stream, TLSStream) else stream
            assert inner._transport.max_size == 65536  # type: ignore[attr-defined]
            await client.send_binary(b"x" * 100_000)
            assert await client.receive(timeout=5) == b"x" * 100_000


@pytest.mark.anyio
async def test_wss_rejects_untrusted_certificate() -> None:
    tls = self_signed_tls()
    other = self_signed_tls()
    async with ws_server(_echo, ssl_context=tls.server) as server:
        with pytest.raises(WebSocketHandshakeError):
            await connect_websocket(
                f"wss://localhost:{server.port}/", ssl_context=other.client, timeout=5
            )
        # The default context (system + certifi CAs) does not trust it either.
        with pytest.raises(WebSocketHandshakeError):
            await connect_websocket(f"wss://localhost:{server.port}/", timeout=5)


@pytest.mark.anyio
async def test_client_close_is_seen_by_server_with_code() -> None:
    seen: list[WebSocketClosed] = []

    async def handler(conn: WebSocketConnection) -> None:
        try:
            await conn.receive(timeout=5)
        except WebSocketClosed as exc:
            seen.append(exc)

    async with ws_server(handler) as server:
        client = await connect_websocket(f"ws://127.0.0.1:{server.port}/", timeout=5)
        await client.aclose(4321, "bye", timeout=5)
        with anyio.fail_after(5):
            await server.done.wait()
    assert len(seen) == 1
    assert (seen[0].code, seen[0].reason, seen[0].local) == (4321, "bye", False)
    with pytest.raises(WebSocketClosed):
        await client.send_text("after close")


@pytest.mark.anyio
async def test_server_close_raises_on_client_receive() -> None:
    async with ws_server(_echo) as server:
        client = await connect_websocket(f"ws://127.0.0.1:{server.port}/", timeout=5)
        await client.send_text("close-4001")
        with pytest.raises(WebSocketClosed) as info:
            await client.receive(timeout=5)
        assert (info.value.code, info.value.reason, info.value.local) == (4001, "asked to", False)
        # Repeated receives keep reporting the same close.
        with pytest.raises(WebSocketClosed) as again:
            await client.receive(timeout=5)
        assert again.value.code == 4001
        await client.aclose()


@pytest.mark.anyio
async def test_lost_transport_is_abnormal_closure() -> None:
    async def handler(conn: WebSocketConnection) -> None:
        # Drop TCP without a close frame.
        await anyio.aclose_forcefully(conn._stream)

    async with ws_server(handler) as server:
        client = await connect_websocket(f"ws://127.0.0.1:{server.port}/", timeout=5)
        with pytest.raises(WebSocketClosed) as info:
            await client.receive(timeout=5)
        assert info.value.code == 1006
        await client.aclose()


@pytest.mark.anyio
async def test_oversized_message_closes_with_1009() -> None:
    async with ws_server(_echo, max_message_size=1000) as server:
        client = await connect_websocket(f"ws://127.0.0.1:{server.port}/", timeout=5)
        await client.send_binary(b"x" * 1000)
        assert await client.receive(timeout=5) == b"x" * 1000
        await client.send_binary(b"y" * 1001)
        with pytest.raises(WebSocketClosed) as info:
            await client.receive(timeout=5)
        assert info.value.code == 1009 and not info.value.local
        await client.aclose()


@pytest.mark.anyio
async def test_receive_timeout_leaves_connection_usable() -> None:
    async with (
        ws_server(_echo) as server,
        await connect_websocket(f"ws://127.0.0.1:{server.port}/", timeout=5) as client,
    ):
        with pytest.raises(WebSocketTimeout):
            await client.receive(timeout=0.05)
        await client.send_text("still")
        assert await client.receive(timeout=5) == "STILL"


@pytest.mark.anyio
async def test_ping_round_trip_with_and_without_a_reader() -> None:
    async with (
        ws_server(_echo) as server,
        await connect_websocket(f"ws://127.0.0.1:{server.port}/", timeout=5) as client,
    ):
        # Nobody is receiving: ping reads for itself and buffers messages.
        await client.send_text("buffered")
        rtt = await client.ping(timeout=5)
        assert 0 <= rtt < 5
        assert await client.receive(timeout=5) == "BUFFERED"
        # A reader task sees the pong on the ping's behalf.
        got: list[str | bytes] = []
        async with anyio.create_task_group() as tg:

            async def reader() -> None:
                got.append(await client.receive(timeout=5))

            tg.start_soon(reader)
            await anyio.sleep(0.01)
            await client.ping(b"12345678", timeout=5)
            await client.send_text("done")
        assert got == ["DONE"]


@pytest.mark.anyio
async def test_fragmented_messages_and_auto_pong() -> None:
    """A raw wsproto peer sends fragments and a ping; our side reassembles and answers."""
    pongs: list[bytes] = []

    async def raw_server(stream: anyio.abc.SocketStream) -> None:
        ws = await _accept_raw(stream)
        data = ws.send(TextMessage(data="ab", message_finished=False))
        data += ws.send(Ping(payload=b"tag"))  # control frames may interleave fragments
        data += ws.send(TextMessage(data="cd", message_finished=True))
        await stream.send(data)
        while not pongs:
            ws.receive_data(await stream.receive())
            pongs.extend(bytes(e.payload) for e in ws.events() if isinstance(e, Pong))
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, raw_server)
        client = await connect_websocket(f"ws://127.0.0.1:{port}/", timeout=5)
        assert await client.receive(timeout=5) == "abcd"
        with pytest.raises(WebSocketClosed):
            await client.receive(timeout=5)
        tg.cancel_scope.cancel()
    await listener.aclose()
    assert pongs == [b"tag"]


@pytest.mark.anyio
async def test_plain_http_request_gets_400() -> None:
    async with ws_server(_echo) as server:
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        with anyio.fail_after(5):
            while True:
                try:
                    answer += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
        assert answer.startswith(b"HTTP/1.1 400")
        with anyio.fail_after(5):
            await server.done.wait()
        assert len(server.errors) == 1 and isinstance(server.errors[0], WebSocketHandshakeError)


@pytest.mark.anyio
async def test_client_sees_refusal_and_silence() -> None:
    async def http_only(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        await anyio.sleep(1)

    async def silent(stream: anyio.abc.SocketStream) -> None:
        await anyio.sleep(5)

    for handler, expected in ((http_only, WebSocketHandshakeError), (silent, WebSocketTimeout)):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            with pytest.raises(expected) as info:
                await connect_websocket(f"ws://127.0.0.1:{port}/", timeout=0.5)
            if expected is WebSocketHandshakeError:
                assert getattr(info.value, "status_code", None) == 404
            tg.cancel_scope.cancel()
        await listener.aclose()


@pytest.mark.anyio
async def test_connection_refused_is_typed() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(WebSocketHandshakeError):
        await connect_websocket(f"ws://127.0.0.1:{port}/", timeout=5)


@pytest.mark.parametrize("url", ["http://x/", "ws://", "wss://h:99999/", "ftp://h/", "ws://[::1/"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(WebSocketHandshakeError):
        parse_websocket_url(url)


def test_url_parts() -> None:
    u = parse_websocket_url("wss://gw.example:9001/a?b=c")
    assert (u.secure, u.host, u.port, u.target, u.host_header) == (
        True,
        "gw.example",
        9001,
        "/a?b=c",
        "gw.example:9001",
    )
    v = parse_websocket_url("ws://[::1]")
    assert (v.port, v.target, v.host_header) == (80, "/", "[::1]")


@pytest.mark.anyio
async def test_keepalive_closes_when_pongs_stop() -> None:
    """A peer that completed the handshake but stopped reading gets 1011 after a late pong."""

    async def mute(stream: anyio.abc.SocketStream) -> None:
        await _accept_raw(stream)
        await anyio.sleep(10)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, mute)
        client = await connect_websocket(f"ws://127.0.0.1:{port}/", timeout=5)
        with anyio.fail_after(5), pytest.raises(WebSocketTimeout):
            await client.keepalive(0.01, 0.1)
        assert client.closed is not None and client.closed.code == 1011
        tg.cancel_scope.cancel()
    await listener.aclose()


@pytest.mark.anyio
async def test_keepalive_with_a_live_peer_and_close_while_receiving() -> None:
    async with ws_server(_echo) as server:
        client = await connect_websocket(f"ws://127.0.0.1:{server.port}/", timeout=5)
        results: list[BaseException] = []
        async with anyio.create_task_group() as tg:

            async def reader() -> None:
                try:
                    while True:
                        await client.receive()
                except WebSocketClosed as exc:
                    results.append(exc)

            tg.start_soon(reader)
            with anyio.move_on_after(0.3):
                await client.keepalive(0.02, 1.0)  # pongs keep coming: runs until cancelled
            # Many concurrent senders share the stream without interleaving frames.
            async with anyio.create_task_group() as senders:
                for i in range(20):
                    senders.start_soon(client.send_binary, bytes([i]) * 5000)
            await anyio.sleep(0.1)
            # Closing while another task is inside receive(): it ends with our close.
            with anyio.fail_after(5):
                await client.aclose(1000, "done")
        assert len(results) == 1 and isinstance(results[0], WebSocketClosed)
        assert results[0].local and results[0].code == 1000


_MESSAGES = st.lists(
    st.one_of(st.text(max_size=3000), st.binary(max_size=70_000)), min_size=1, max_size=12
)


@settings(max_examples=25, deadline=None)
@given(messages=_MESSAGES)
def test_any_message_sequence_round_trips_in_order(messages: list[str | bytes]) -> None:
    async def run() -> list[str | bytes]:
        async def same(conn: WebSocketConnection) -> None:
            try:
                while True:
                    message = await conn.receive(timeout=10)
                    if isinstance(message, str):
                        await conn.send_text(message)
                    else:
                        await conn.send_binary(message)
            except WebSocketClosed:
                return

        async with (
            ws_server(same) as server,
            await connect_websocket(f"ws://127.0.0.1:{server.port}/", timeout=5) as client,
        ):
            for message in messages:
                if isinstance(message, str):
                    await client.send_text(message)
                else:
                    await client.send_binary(message)
            return [await client.receive(timeout=10) for _ in messages]

    assert anyio.run(run) == messages


# -- a header that announces more than the limit is refused at the header ---------------------

_HUGE_HEADER = bytes([0x82, 127]) + (100 << 20).to_bytes(8, "big")  # binary, 100 MiB, no payload


@asynccontextmanager
async def _raw_server_sending(extra: bytes, *, with_accept: bool) -> AsyncIterator[RawSeen]:
    """A server that accepts the upgrade, sends `extra` (with the 101 or after it), then
    records the first bytes the client sends back."""
    seen = RawSeen()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        async with stream:
            while not any(isinstance(e, Request) for e in ws.events()):
                ws.receive_data(await stream.receive())
            accept = ws.send(AcceptConnection())
            if with_accept:
                await stream.send(accept + extra)
            else:
                await stream.send(accept)
                await anyio.sleep(0.05)
                await stream.send(extra)
            with anyio.move_on_after(5):
                while len(seen.reply) < 8:
                    seen.reply += await stream.receive()
            seen.done.set()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    seen.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield seen
        tg.cancel_scope.cancel()


@dataclass
class RawSeen:
    port: int = 0
    reply: bytes = b""
    done: anyio.Event = field(default_factory=anyio.Event)


@pytest.mark.anyio
@pytest.mark.parametrize("with_accept", [False, True], ids=["after", "with the 101"])
async def test_oversized_frame_header_closes_with_1009_at_once(with_accept: bool) -> None:
    async with _raw_server_sending(_HUGE_HEADER, with_accept=with_accept) as seen:
        client = await connect_websocket(f"ws://127.0.0.1:{seen.port}/", timeout=5)
        started = anyio.current_time()
        with pytest.raises(WebSocketClosed) as info:
            await client.receive(timeout=10)
        assert anyio.current_time() - started < 1.0
        assert info.value.code == 1009 and info.value.local
        await client.aclose()
        with anyio.fail_after(5):
            await seen.done.wait()
    close = seen.reply
    assert close[0] == 0x88  # a close frame, masked as a client's
    mask, payload = close[2:6], close[6:]
    code = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:2]))
    assert int.from_bytes(code, "big") == 1009


def test_frame_length_guard_follows_frames() -> None:
    from smolmix_cli.websocket_frames import FrameLengthGuard

    guard = FrameLengthGuard(1000)
    small = bytes([0x81, 5]) + b"hello"
    ping = bytes([0x89, 0x80 | 4]) + b"mask" + b"pong"  # masked control frame
    assert guard.feed(small + ping) is None
    first = bytes([0x02, 126]) + (600).to_bytes(2, "big")  # a fragment, not final
    assert guard.feed(first + b"x" * 600) is None
    assert guard.feed(ping[:3]) is None and guard.feed(ping[3:]) is None  # between fragments
    rest = bytes([0x80, 126]) + (401).to_bytes(2, "big")  # 600 + 401 > 1000: refused at header
    assert guard.feed(rest[:2]) is None
    assert guard.feed(rest[2:]) == 1001
    assert FrameLengthGuard(1000).feed(bytes([0x82, 126]) + (1000).to_bytes(2, "big")) is None


# -- a close that arrives with messages the application has not taken yet ---------------------


async def _raw_client_burst(port: int, messages: list[str]) -> list[object]:
    """Send `messages` and a close frame in one write; return what came back, in order."""
    from wsproto.events import CloseConnection

    ws = WSConnection(ConnectionType.CLIENT)
    got: list[object] = []
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(ws.send(Request(host="localhost", target="/")))
        while not any(isinstance(e, AcceptConnection) for e in ws.events()):
            ws.receive_data(await stream.receive())
        burst = b"".join(ws.send(TextMessage(data=m)) for m in messages)
        await stream.send(burst + ws.send(CloseConnection(code=1000)))
        with anyio.fail_after(10):
            while not any(isinstance(e, CloseConnection) for e in got):
                try:
                    data = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
                ws.receive_data(data)
                for event in ws.events():
                    got.append(event.data if isinstance(event, TextMessage) else event)
    return got


@pytest.mark.anyio
async def test_close_in_the_same_read_as_messages_is_answered_after_them() -> None:
    # The close used to be answered as soon as it was parsed, while the messages before it
    # still waited in the queue: the echoes of those messages could no longer be sent.
    async with ws_server(_echo) as server:
        got = await _raw_client_burst(server.port, ["a", "b", "c"])
        with anyio.fail_after(5):
            await server.done.wait()
    assert got[:3] == ["A", "B", "C"]
    assert len(got) == 4 and getattr(got[3], "code", None) == 1000
    assert server.errors == []


@pytest.mark.anyio
async def test_demo_echo_server_echoes_every_message_before_a_burst_close() -> None:
    from smolmix_cli.testnet.origin.ws import serve_ws_echo

    messages = [f"line {i}\n" for i in range(12)]
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve_ws_echo)
        got = await _raw_client_burst(port, messages)
        tg.cancel_scope.cancel()
    assert got[:-1] == messages
    assert getattr(got[-1], "code", None) == 1000


@pytest.mark.anyio
async def test_pong_and_close_reply_behind_unread_messages_end_the_waits() -> None:
    """A reader that takes one message leaves the frames after it in the parser; a ping
    or a close waiting in another task must see a pong or close reply among them without
    another read from the socket (the peer says nothing more and keeps it open)."""
    from wsproto.events import CloseConnection

    async def raw_server(stream: anyio.abc.SocketStream) -> None:
        ws = await _accept_raw(stream)
        with anyio.move_on_after(10):
            while True:
                ws.receive_data(await stream.receive())
                for event in ws.events():
                    if isinstance(event, Ping):  # two messages, then the pong, in one write
                        data = ws.send(TextMessage(data="m1")) + ws.send(TextMessage(data="m2"))
                        await stream.send(data + ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        # a peer finishing its messages: raw frames, wsproto refuses them now
                        await stream.send(b"\x81\x02m3\x81\x02m4" + ws.send(event.response()))
                        await anyio.sleep(5)  # open and silent
                        return

    got: list[str | bytes] = []
    ended: list[WebSocketClosed] = []

    async def reader(client: WebSocketConnection) -> None:
        while True:
            try:
                got.append(await client.receive(timeout=8))
            except WebSocketClosed as exc:
                ended.append(exc)
                return

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, raw_server)
        client = await connect_websocket(f"ws://127.0.0.1:{port}/", timeout=5)
        async with anyio.create_task_group() as readers:
            readers.start_soon(reader, client)
            await anyio.sleep(0.05)  # the reader holds the socket
            await client.ping(timeout=2)
            with anyio.fail_after(1):
                while len(got) < 2:
                    await anyio.sleep(0.01)
            started = anyio.current_time()
            await client.aclose(timeout=3)
            assert anyio.current_time() - started < 1.0
        tg.cancel_scope.cancel()
    assert got == ["m1", "m2", "m3", "m4"]
    assert client.closed is not None and client.closed.code == 1000
    assert len(ended) == 1


@pytest.mark.anyio
async def test_ping_after_a_lazy_read_sees_the_close_already_received() -> None:
    """The peer sent two messages and its close in one write; the application took one
    message. A ping now must meet the close that is already here (the peer never answers
    pings while it closes), not wait on the socket until its timeout."""
    from wsproto.events import CloseConnection

    async def raw_server(stream: anyio.abc.SocketStream) -> None:
        ws = await _accept_raw(stream)
        data = ws.send(TextMessage(data="m1")) + ws.send(TextMessage(data="m2"))
        await stream.send(data + ws.send(CloseConnection(code=1000, reason="bye")))
        await anyio.sleep(5)  # open and silent

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, raw_server)
        client = await connect_websocket(f"ws://127.0.0.1:{port}/", timeout=5)
        assert await client.receive(timeout=2) == "m1"
        await anyio.sleep(0.05)
        with pytest.raises(WebSocketClosed) as info:
            await client.ping(timeout=3)
        assert info.value.code == 1000 and not info.value.local
        assert await client.receive(timeout=1) == "m2"  # nothing is lost on the way
        with pytest.raises(WebSocketClosed):
            await client.receive(timeout=1)
        tg.cancel_scope.cancel()
