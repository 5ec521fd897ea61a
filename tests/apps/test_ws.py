"""WebSocket client against the demo origin's echo server (ws and wss) over loopback."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from smolmix_cli.apps import ws
from smolmix_cli.apps.errors import (
    CertificateError,
    ConnectError,
    MalformedUrl,
    OperationTimeout,
    UnsupportedProtocol,
    UsageError,
    WsClosed,
    WsHandshakeError,
)
from smolmix_cli.apps.http_headers import parse_header_arg
from smolmix_cli.errors_map import classify
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.certs import DemoPki
from tests.apps.os_connector import OsConnector

pytestmark = pytest.mark.anyio


async def test_text_binary_and_normal_close(origin: DemoOrigin, connector: OsConnector) -> None:
    session = await ws.connect(connector, f"ws://127.0.0.1:{origin.ws_port}/chat?room=1")
    async with session:
        await session.send("hello")
        assert await session.receive(timeout=5) == "hello"
        payload = bytes(range(256)) * 1000
        await session.send(payload)
        assert await session.receive(timeout=5) == payload
        await session.send("path")
        assert await session.receive(timeout=5) == "/chat?room=1"
        rtt = await session.ping(timeout=5)
        assert 0 <= rtt < 5
    closed = session.closed
    assert closed is not None and closed.code == 1000 and closed.local
    assert closed.normal


async def test_server_close_code_and_reason(origin: DemoOrigin, connector: OsConnector) -> None:
    session = await ws.connect(connector, f"ws://127.0.0.1:{origin.ws_port}/")
    await session.send("close:4001:going away now")
    with pytest.raises(WsClosed) as info:
        await session.receive(timeout=5)
    assert (info.value.code, info.value.reason, info.value.local) == (
        4001,
        "going away now",
        False,
    )
    assert classify(info.value).code == 12
    with pytest.raises(WsClosed):
        await session.send("after close")
    await session.close()


async def test_local_close_with_code(origin: DemoOrigin, connector: OsConnector) -> None:
    session = await ws.connect(connector, f"ws://127.0.0.1:{origin.ws_port}/")
    await session.close(4100, "bye")
    closed = session.closed
    assert closed is not None and (closed.code, closed.reason) == (4100, "bye")
    with pytest.raises(UsageError):
        await session.close(1006)


async def test_subprotocol(origin: DemoOrigin, connector: OsConnector) -> None:
    async with await ws.connect(
        connector,
        f"ws://127.0.0.1:{origin.ws_port}/",
        ws.WsOptions(subprotocols=["other", "echo"]),
    ) as session:
        assert session.subprotocol == "echo"
    async with await ws.connect(
        connector, f"ws://127.0.0.1:{origin.ws_port}/", ws.WsOptions(subprotocols=["x"])
    ) as session:
        assert session.subprotocol is None


async def test_wss_with_test_ca(origin: DemoOrigin, connector: OsConnector, pki: DemoPki) -> None:
    url = f"wss://demo.smolmix.test:{origin.wss_port}/secure"
    async with await ws.connect(connector, url, ws.WsOptions(cafile=str(pki.ca_file))) as s:
        await s.send("over tls")
        assert await s.receive(timeout=5) == "over tls"
    with pytest.raises(CertificateError):
        await ws.connect(connector, url)
    async with await ws.connect(connector, url, ws.WsOptions(verify=False)) as s:
        await s.send("path")
        assert await s.receive(timeout=5) == "/secure"


async def test_handshake_refused_by_plain_http(origin: DemoOrigin, connector: OsConnector) -> None:
    with pytest.raises(WsHandshakeError) as info:
        await ws.connect(connector, f"ws://127.0.0.1:{origin.http_port}/status/404")
    assert info.value.status == 404


async def test_headers_and_origin_reach_the_server(connector: OsConnector) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        server = WSConnection(ConnectionType.SERVER)
        async with stream:
            while True:
                server.receive_data(await stream.receive())
                for event in server.events():
                    if isinstance(event, Request):
                        seen.append(list(event.extra_headers))
                        await stream.send(server.send(AcceptConnection()))
                        await anyio.sleep(0.2)
                        return

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_address)[1]
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        opts = ws.WsOptions(
            header_edits=[parse_header_arg("X-Token: abc"), parse_header_arg("X-Empty;")],
            origin="https://example.org",
        )
        session = await ws.connect(connector, f"ws://127.0.0.1:{port}/", opts)
        await session.close(timeout=0.5)
        tg.cancel_scope.cancel()
    headers = {k.decode().lower(): v.decode() for k, v in seen[0]}
    assert headers["x-token"] == "abc"
    assert headers["x-empty"] == ""
    assert headers["origin"] == "https://example.org"
    with pytest.raises(UsageError):
        await ws.connect(
            connector,
            f"ws://127.0.0.1:{port}/",
            ws.WsOptions(header_edits=[parse_header_arg("Sec-WebSocket-Key: x")]),
        )


async def test_keepalive_times_out_against_silent_peer(connector: OsConnector) -> None:
    """A peer that completes the upgrade and then never answers pings."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        server = WSConnection(ConnectionType.SERVER)
        async with stream:
            server.receive_data(await stream.receive())
            for event in server.events():
                if isinstance(event, Request):
                    await stream.send(server.send(AcceptConnection()))
            await anyio.sleep(5)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_address)[1]
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        session = await ws.connect(connector, f"ws://127.0.0.1:{port}/")
        with pytest.raises(OperationTimeout):
            await session.keepalive(interval=0.05, timeout=0.2)
        closed = session.closed
        assert closed is not None and closed.code == 1011
        tg.cancel_scope.cancel()


async def test_keepalive_with_live_peer(origin: DemoOrigin, connector: OsConnector) -> None:
    session = await ws.connect(connector, f"ws://127.0.0.1:{origin.ws_port}/")
    received: list[str | bytes] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(session.keepalive, 0.05, 2.0)

        async def reader() -> None:
            received.append(await session.receive(timeout=5))

        tg.start_soon(reader)
        await anyio.sleep(0.3)  # several pings answered meanwhile
        await session.send("still here")
        await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    assert received == ["still here"]
    assert session.closed is None
    await session.close()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://x/", UnsupportedProtocol),
        ("ws://", MalformedUrl),
        ("wss://bad host/", MalformedUrl),
    ],
)
async def test_bad_urls(connector: OsConnector, url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        await ws.connect(connector, url)


async def test_connect_refused(connector: OsConnector) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_address)[1]
    await listener.aclose()
    with pytest.raises(ConnectError) as info:
        await ws.connect(connector, f"ws://127.0.0.1:{port}/")
    assert classify(info.value).code == 7
