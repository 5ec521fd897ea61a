"""Interoperability with the Linux kernel's TCP through a TUN device in a fresh netns.

Our stack (192.0.2.2 / fd00:e7a1::2) drives the TUN fd; the kernel side
(192.0.2.1 / fd00:e7a1::1) is plain blocking sockets created inside the
namespace (see `netns.py`), run in worker threads with socket timeouts.
"""

from __future__ import annotations

import hashlib
import random
import socket
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import anyio
import pytest

from smolmix_cli.netstack.aio import StackRunner, TcpStream, run_stack
from smolmix_cli.netstack.errors import ConnectionRefused, ConnectionReset
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.phy.tun import TunDevice
from smolmix_cli.netstack.socket.tcp.config import TcpConfig

from .netns import Namespace, unavailable_reason

pytestmark = [pytest.mark.kernel, pytest.mark.anyio, pytest.mark.anyio_backends("asyncio", "trio")]

KERNEL = {4: IPv4Address("192.0.2.1"), 6: IPv6Address("fd00:e7a1::1")}
OURS = {4: IPv4Address("192.0.2.2"), 6: IPv6Address("fd00:e7a1::2")}
FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
BULK = 4 << 20
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def netns() -> Iterator[Namespace]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"kernel peer unavailable: {reason}")
    with Namespace(v4=f"{KERNEL[4]}/24", v6=f"{KERNEL[6]}/64") as ns:
        yield ns


_port = iter(range(20000, 30000))


@asynccontextmanager
async def our_stack(ns: Namespace) -> AsyncIterator[StackRunner]:
    stack = NetStack([OURS[4], OURS[6]], tcp_config=TcpConfig(time_wait=0.5, rto_min=0.05))
    device = TunDevice(ns.tun_fd, close_fd=False)
    with anyio.fail_after(TIMEOUT * 2):
        async with run_stack(stack, device) as runner:
            yield runner
    assert stack.counters["internal_error"] == 0
    assert stack.counters["bad_checksum"] == 0


def _kernel_listener(ns: Namespace, version: int) -> tuple[socket.socket, int]:
    sock = ns.socket(FAMILY[version])
    sock.settimeout(TIMEOUT)
    port = next(_port)
    sock.bind((str(KERNEL[version]), port))
    sock.listen(4)
    return sock, port


def _recv_all(conn: socket.socket) -> tuple[int, bytes]:
    h, n = hashlib.sha256(), 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return n, h.digest()
        h.update(chunk)
        n += len(chunk)


async def _read_all(stream: TcpStream) -> tuple[int, bytes]:
    h, n = hashlib.sha256(), 0
    while True:
        try:
            chunk = await stream.receive()
        except anyio.EndOfStream:
            return n, h.digest()
        h.update(chunk)
        n += len(chunk)


async def _in_thread(fn: Callable[[], Any]) -> Any:
    return await anyio.to_thread.run_sync(fn)


@pytest.mark.parametrize("version", [4, 6])
async def test_we_connect_bulk_both_ways(netns: Namespace, version: int) -> None:
    up = random.Random(1).randbytes(BULK)
    down = random.Random(2).randbytes(BULK)
    listener, port = _kernel_listener(netns, version)
    result: dict[str, Any] = {}

    def kernel_server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            result["up"] = _recv_all(conn)  # until our FIN
            conn.sendall(down)  # our half-close leaves the kernel free to send
        listener.close()

    async with our_stack(netns) as runner, anyio.create_task_group() as tg:
        tg.start_soon(_in_thread, kernel_server)
        stream = await runner.connect_tcp(KERNEL[version], port)
        assert stream.local == (OURS[version], stream.local[1])
        await stream.send(up)
        await stream.send_eof()
        got = await _read_all(stream)
        await stream.aclose()
    assert result["up"] == (BULK, hashlib.sha256(up).digest())
    assert got == (BULK, hashlib.sha256(down).digest())


@pytest.mark.parametrize("version", [4, 6])
async def test_kernel_connects_bulk_both_ways(netns: Namespace, version: int) -> None:
    up = random.Random(3).randbytes(BULK)
    down = random.Random(4).randbytes(BULK)
    port = next(_port)
    result: dict[str, Any] = {}

    def kernel_client() -> None:
        conn = netns.socket(FAMILY[version])
        conn.settimeout(TIMEOUT)
        with conn:
            conn.connect((str(OURS[version]), port))
            result["local"] = conn.getsockname()[:2]
            conn.sendall(up)
            conn.shutdown(socket.SHUT_WR)
            result["down"] = _recv_all(conn)

    async with our_stack(netns) as runner, anyio.create_task_group() as tg:
        listener = runner.listen_tcp(port)
        tg.start_soon(_in_thread, kernel_client)
        stream = await listener.accept()
        got = await _read_all(stream)  # until the kernel's FIN
        await stream.send(down)  # the kernel half-closed; we still send
        await stream.send_eof()
        await stream.aclose()
        await listener.aclose()
    assert stream.remote == (KERNEL[version], result["local"][1])
    assert got == (BULK, hashlib.sha256(up).digest())
    assert result["down"] == (BULK, hashlib.sha256(down).digest())


@pytest.mark.parametrize("version", [4, 6])
async def test_connect_to_closed_kernel_port_refused(netns: Namespace, version: int) -> None:
    async with our_stack(netns) as runner:
        with anyio.fail_after(2):  # an RST, not a timeout
            with pytest.raises(ConnectionRefused):
                await runner.connect_tcp(KERNEL[version], next(_port))


@pytest.mark.parametrize("version", [4, 6])
async def test_kernel_abort_resets(netns: Namespace, version: int) -> None:
    listener, port = _kernel_listener(netns, version)
    accepted = anyio.Event()
    holder: list[socket.socket] = []

    def kernel_accept() -> None:
        conn, _ = listener.accept()
        conn.settimeout(TIMEOUT)
        assert conn.recv(5) == b"hello"
        holder.append(conn)
        listener.close()

    async with our_stack(netns) as runner, anyio.create_task_group() as tg:

        async def accept_then_flag() -> None:
            await _in_thread(kernel_accept)
            accepted.set()

        tg.start_soon(accept_then_flag)
        stream = await runner.connect_tcp(KERNEL[version], port)
        await stream.send(b"hello")
        await accepted.wait()
        conn = holder[0]
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # linger 0: the kernel sends RST
        with pytest.raises(anyio.BrokenResourceError) as info:
            await stream.receive()
        assert isinstance(info.value.__cause__, ConnectionReset)
        with pytest.raises(anyio.BrokenResourceError):
            await stream.send(b"more")
        await stream.aclose()


@pytest.mark.parametrize("version", [4, 6])
async def test_kernel_half_closes_first(netns: Namespace, version: int) -> None:
    listener, port = _kernel_listener(netns, version)
    result: dict[str, Any] = {}

    def kernel_server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            conn.sendall(b"greeting")
            conn.shutdown(socket.SHUT_WR)  # kernel FIN first
            result["reply"] = _recv_all(conn)
        listener.close()

    async with our_stack(netns) as runner, anyio.create_task_group() as tg:
        tg.start_soon(_in_thread, kernel_server)
        stream = await runner.connect_tcp(KERNEL[version], port)
        got = b""
        with pytest.raises(anyio.EndOfStream):
            while True:
                got += await stream.receive()
        assert got == b"greeting"
        await stream.send(b"reply after your FIN")
        await stream.send_eof()
        await stream.aclose()
    assert result["reply"] == (20, hashlib.sha256(b"reply after your FIN").digest())


@pytest.mark.parametrize("version", [4, 6])
async def test_udp_and_port_unreachable_with_kernel(netns: Namespace, version: int) -> None:
    port = next(_port)

    def kernel_udp() -> tuple[bytes, Any]:
        s = netns.socket(FAMILY[version], socket.SOCK_DGRAM)
        s.settimeout(TIMEOUT)
        with s:
            s.connect((str(OURS[version]), port))
            s.send(b"question")
            answer = s.recv(100)
        closed = netns.socket(FAMILY[version], socket.SOCK_DGRAM)
        closed.settimeout(TIMEOUT)
        with closed:
            closed.connect((str(OURS[version]), port + 1))
            closed.send(b"anyone?")
            try:
                closed.recv(100)
                refused: Any = None
            except ConnectionRefusedError as exc:  # our ICMP port unreachable
                refused = exc
        return answer, refused

    async with our_stack(netns) as runner, anyio.create_task_group() as tg:
        sock = runner.bind_udp(port)

        async def answer() -> None:
            data, src = await sock.receive()
            assert data == b"question" and src[0] == KERNEL[version]
            await sock.sendto(b"answer", *src)

        tg.start_soon(answer)
        got, refused = await _in_thread(kernel_udp)
    assert got == b"answer"
    assert isinstance(refused, ConnectionRefusedError)


@pytest.mark.parametrize("version", [4, 6])
async def test_kernel_ping_answered(netns: Namespace, version: int) -> None:
    """A raw ICMP echo from the kernel: our reply must pass the kernel's checksum checks."""
    from smolmix_cli.netstack.wire import icmp as icmp_mod

    def kernel_ping() -> bytes:
        if version == 4:
            s = netns.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            request = icmp_mod.encode_icmp(icmp_mod.IcmpMessage(8, 0, 0x12340001, b"smolmix"))
        else:
            s = netns.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            request = bytes([128, 0, 0, 0]) + struct.pack("!I", 0x12340001) + b"smolmix"
        s.settimeout(TIMEOUT)
        with s:
            s.sendto(request, (str(OURS[version]), 0))
            for _ in range(20):  # skip unrelated ICMP (echo requests seen on raw v4 sockets)
                data = s.recv(2000)
                body = data[(data[0] & 15) * 4 :] if version == 4 else data
                if body[0] in (0, 129):
                    return body
        raise AssertionError("no echo reply")

    async with our_stack(netns) as runner:
        reply = await _in_thread(kernel_ping)
        assert await runner.ping(KERNEL[version]) < TIMEOUT  # and the kernel answers ours
    assert reply[4:8] == struct.pack("!I", 0x12340001) and reply[8:] == b"smolmix"
