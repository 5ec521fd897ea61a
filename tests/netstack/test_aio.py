"""The anyio shell in real time, on asyncio and trio: streams, TLS, UDP, errors."""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import IPv4Address, IPv6Address

import anyio
import pytest
from anyio.streams.tls import TLSStream

from smolmix_cli.netstack.aio import StackRunner, TcpStream, run_stack
from smolmix_cli.netstack.errors import ConnectionRefused, ConnectionReset
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.phy.datagram import DatagramSocketDevice
from smolmix_cli.netstack.phy.memory import memory_link
from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from tests.self_signed import self_signed_tls

from .relay import Impairment, relay

pytestmark = [pytest.mark.anyio, pytest.mark.anyio_backends("asyncio", "trio")]

A4, B4 = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
A6, B6 = IPv6Address("fd00:e7a1::1"), IPv6Address("fd00:e7a1::2")


def _cfg() -> TcpConfig:
    return TcpConfig(rto_min=0.05, rto_initial=0.3, time_wait=0.2)


@asynccontextmanager
async def two_stacks(
    imp: Impairment | None = None,
) -> AsyncIterator[tuple[StackRunner, StackRunner]]:
    a_dev, a_far = memory_link()
    b_dev, b_far = memory_link()
    a = NetStack([A4, A6], tcp_config=_cfg())
    b = NetStack([B4, B6], tcp_config=_cfg())
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(relay, a_far, b_far, imp or Impairment(), Impairment(seed=7))
            async with run_stack(a, a_dev) as ra, run_stack(b, b_dev) as rb:
                yield ra, rb
            tg.cancel_scope.cancel()


async def _read_all(stream: TcpStream) -> bytes:
    parts = []
    while True:
        try:
            parts.append(await stream.receive())
        except anyio.EndOfStream:
            return b"".join(parts)


@pytest.mark.parametrize("host", [B4, B6], ids=["v4", "v6"])
async def test_echo_both_directions(host: IPv4Address | IPv6Address) -> None:
    data = random.Random(3).randbytes(300_000)
    async with two_stacks(Impairment(loss=0.01, seed=5)) as (ra, rb):
        listener = rb.listen_tcp(7)

        async def echo_server() -> None:
            stream = await listener.accept()
            async with stream:
                while True:
                    try:
                        chunk = await stream.receive()
                    except anyio.EndOfStream:
                        break
                    await stream.send(chunk)
                await stream.send_eof()

        async with anyio.create_task_group() as tg:
            tg.start_soon(echo_server)
            client = await ra.connect_tcp(host, 7)
            assert client.remote == (host, 7)

            async def writer() -> None:
                for i in range(0, len(data), 10_000):
                    await client.send(data[i : i + 10_000])
                await client.send_eof()

            tg.start_soon(writer)
            echoed = await _read_all(client)
            await client.aclose()
        assert hashlib.sha256(echoed).digest() == hashlib.sha256(data).digest()
        with pytest.raises(anyio.ClosedResourceError):
            await client.receive()


async def test_connect_refused_and_reset() -> None:
    async with two_stacks() as (ra, rb):
        with pytest.raises(ConnectionRefused):
            await ra.connect_tcp(B4, 9)
        listener = rb.listen_tcp(80)
        client = await ra.connect_tcp(B4, 80)
        server = await listener.accept()
        await client.send(b"x")
        assert await server.receive() == b"x"
        server.abort()
        with pytest.raises(anyio.BrokenResourceError) as info:
            await client.receive()
        assert isinstance(info.value.__cause__, ConnectionReset)
        await client.aclose()


async def test_udp_datagrams() -> None:
    async with two_stacks() as (ra, rb):
        server = rb.bind_udp(53)
        client = ra.bind_udp()
        await client.sendto(b"query", B6, 53)
        data, src = await server.receive()
        assert data == b"query" and src == (A6, client.port)
        await server.sendto(b"answer", *src)
        assert await client.receive() == (b"answer", (B6, 53))
        await client.aclose()
        await server.aclose()


async def test_tls_handshake_over_two_stacks() -> None:
    tls_pair = self_signed_tls("server.test")
    server_ctx, client_ctx = tls_pair.server, tls_pair.client
    client_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    payload = random.Random(9).randbytes(100_000)
    async with two_stacks(Impairment(delay_mean=0.002)) as (ra, rb):
        listener = rb.listen_tcp(443)

        async def server() -> None:
            raw = await listener.accept()
            tls = await TLSStream.wrap(raw, server_side=True, ssl_context=server_ctx)
            body = b""
            while len(body) < len(payload):
                body += await tls.receive()
            await tls.send(hashlib.sha256(body).digest())
            await tls.aclose()

        async with anyio.create_task_group() as tg:
            tg.start_soon(server)
            raw = await ra.connect_tcp(B4, 443)
            tls = await TLSStream.wrap(raw, hostname="server.test", ssl_context=client_ctx)
            assert tls.extra(anyio.streams.tls.TLSAttribute.tls_version) in (
                "TLSv1.3",
                "TLSv1.2",
            )
            await tls.send(payload)
            digest = await tls.receive()
            assert digest == hashlib.sha256(payload).digest()
            with pytest.raises(anyio.EndOfStream):
                await tls.receive()
            await tls.aclose()


async def test_ping_between_stacks() -> None:
    async with two_stacks() as (ra, _rb):
        for host in (B4, B6):
            rtt = await ra.ping(host)
            assert 0 <= rtt < 5
        assert ra.stack.counters["icmp_echo_reply"] == 2


async def test_send_backpressure_when_peer_does_not_read() -> None:
    async with two_stacks() as (ra, rb):
        listener = rb.listen_tcp(5001)
        client = await ra.connect_tcp(B4, 5001)
        server = await listener.accept()
        sent = 0
        with anyio.move_on_after(0.5):
            while True:
                await client.send(b"z" * 8192)
                sent += 8192
        # the sender stopped once the peer's receive window and our send buffer were full
        cfg = ra.stack.tcp_config_v4
        assert sent <= cfg.send_buffer + cfg.recv_buffer + 8192
        assert sent >= cfg.recv_buffer // 2
        # The send cancelled by the timeout may have queued part of its 8 KiB.
        await client.send_eof()
        got = 0
        with contextlib.suppress(anyio.EndOfStream):
            while True:
                got += len(await server.receive())
        assert sent <= got < sent + 8192
        await client.aclose()
        await server.aclose()


async def test_listener_close_and_stack_stop_wake_waiters() -> None:
    async with two_stacks() as (ra, rb):
        listener = rb.listen_tcp(5002)
        client = await ra.connect_tcp(B4, 5002)
        async with anyio.create_task_group() as tg:

            async def accept_after_close() -> None:
                await listener.accept()  # the queued connection
                with pytest.raises(anyio.ClosedResourceError):
                    await listener.accept()

            tg.start_soon(accept_after_close)
            await anyio.sleep(0.05)
            await listener.aclose()
    # the stacks have stopped: a waiting operation fails instead of hanging
    with anyio.fail_after(1), pytest.raises(anyio.BrokenResourceError):
        await client.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await listener.accept()


async def test_stacks_over_a_packet_socketpair() -> None:
    """DatagramSocketDevice: the device that lets a stack live in another process."""
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a = NetStack([A4], tcp_config=_cfg())
    b = NetStack([B4], tcp_config=_cfg())
    data = random.Random(11).randbytes(200_000)
    with anyio.fail_after(20):
        async with (
            run_stack(a, DatagramSocketDevice(left)) as ra,
            run_stack(b, DatagramSocketDevice(right)) as rb,
        ):
            listener = rb.listen_tcp(9000)
            client = await ra.connect_tcp(B4, 9000)
            server = await listener.accept()

            async def upload() -> None:
                await client.send(data)
                await client.send_eof()

            async with anyio.create_task_group() as tg:
                tg.start_soon(upload)
                assert await _read_all(server) == data
            await client.aclose()
            await server.aclose()


async def test_timer_moved_earlier_while_the_driver_sleeps_still_fires() -> None:
    """An idle connection's driver sleeps until the keepalive (10 s); a send arms the
    retransmission timer far earlier, and the retransmission must come on that time
    (on asyncio the sleeping driver's alarm is moved, on trio the driver is woken)."""
    a_dev, a_far = memory_link()
    b_dev, b_far = memory_link()
    a = NetStack([A4], tcp_config=_cfg())
    b = NetStack([B4], tcp_config=_cfg())
    cut = False
    from_a: list[tuple[float, int]] = []

    async def wire(src: object, dst: object, record: bool) -> None:
        while True:
            packet = await src.receive()  # type: ignore[attr-defined]
            if record:
                from_a.append((anyio.current_time(), len(packet)))
            if not cut:
                await dst.send(packet)  # type: ignore[attr-defined]

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wire, a_far, b_far, True)
            tg.start_soon(wire, b_far, a_far, False)
            async with run_stack(a, a_dev) as ra, run_stack(b, b_dev) as rb:
                listener = rb.listen_tcp(5003)
                client = await ra.connect_tcp(B4, 5003)
                await listener.accept()
                await anyio.sleep(0.2)  # idle: only the keepalive timer is left
                cut = True
                start = anyio.current_time()
                await client.send(b"x")
                await anyio.sleep(1.0)
            tg.cancel_scope.cancel()
    sends = [t - start for t, size in from_a if t >= start and size > 52]
    assert len(sends) >= 2, sends  # the original and at least one retransmission
    assert sends[1] < 0.6, sends  # RTO floor 0.05 s plus backoff, not the 10 s keepalive


async def test_a_device_closed_at_the_far_end_fails_waiting_streams() -> None:
    """On asyncio the runner drains the link from a loop callback; EOF must still reach it."""
    a_dev, a_far = memory_link()
    b_dev, b_far = memory_link()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(relay, a_far, b_far, Impairment(), Impairment())
            async with (
                run_stack(NetStack([A4], tcp_config=_cfg()), a_dev) as ra,
                run_stack(NetStack([B4], tcp_config=_cfg()), b_dev) as rb,
            ):
                listener = rb.listen_tcp(5003)
                client = await ra.connect_tcp(B4, 5003)
                server = await listener.accept()
                await server.send(b"before")
                assert await client.receive() == b"before"
                tg.cancel_scope.cancel()  # the relay goes first ...
                await a_far.aclose()  # ... then the cable: the far end hangs up
                with pytest.raises(anyio.BrokenResourceError) as info:
                    await client.receive()
                assert "device closed" in repr(info.value.__cause__)


class _FaultyDevice:
    """A memory link end whose reads fail: a shell bug must stop the runner, not vanish."""

    def __init__(self) -> None:
        self.inner, self.far = memory_link()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def receive_nowait(self) -> bytes | None:
        raise RuntimeError("device read failed")

    async def receive(self) -> bytes:
        raise RuntimeError("device read failed")


async def test_an_error_while_reading_the_device_ends_the_runner() -> None:
    dev = _FaultyDevice()
    with anyio.fail_after(5), pytest.raises(ExceptionGroup) as info:
        async with run_stack(NetStack([A4]), dev):  # type: ignore[arg-type]
            dev.far.send_nowait(b"\x45" + bytes(19))
            await anyio.sleep(1)
    assert info.group_contains(RuntimeError, match="device read failed")


async def test_a_stack_stopped_under_waiting_sockets_is_the_tunnel_closing() -> None:
    """A socket waiting when its stack stops gets `StackStopped`, which the one classification
    reports as the tunnel closing (97), not as an internal error with a class name."""
    from smolmix_cli.errors_map import classify
    from smolmix_cli.netstack.aio import StackStopped

    failures: list[BaseException] = []
    with anyio.fail_after(10):
        async with two_stacks() as (ra, _rb):
            udp = ra.bind_udp()

            async def wait_for_a_datagram() -> None:
                try:
                    await udp.receive()
                except anyio.BrokenResourceError as exc:
                    failures.append(exc)

            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_for_a_datagram)
                await anyio.sleep(0.05)
                ra._fail(RuntimeError("the tunnel shut down"))
    assert len(failures) == 1 and isinstance(failures[0], StackStopped)
    error = classify(failures[0])
    assert (int(error.code), str(error)) == (97, "the tunnel closed: the network stack stopped")
