"""Hostile connections against every listener of a local network; each still serves after.

Issue 20's acceptance: connects that reset at once, garbage then a reset or a close,
half-closed partial greetings and idle half-open connects, thrown at every mix port,
both gateways' client WebSocket ports (ws and wss), the directory and the demo origin's
servers (HTTP, HTTPS, ws, wss, DNS over TCP, UDP and TLS). Between the waves real
requests must succeed: a real mixnet client's message through each gateway and all three
mix layers back to itself, a wss registration at each gateway, the directory's topology,
and a fetch from every origin service.

CI runs HOSTILE connections per listener; `--hypothesis-profile=fuzz` runs the 10,000.
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSStream
from dnslib import DNSRecord

from smolmix_cli.bootstrap import fetch_topology, start_client
from smolmix_cli.config import Network
from smolmix_cli.mixnet.client.client import ClientConfig
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.websocket import connect_websocket
from tests.testnet.gw_client import GwClient

HOSTILE = 1000  # per listener in CI (CI time); the fuzz profile runs the acceptance's 10,000
ACCEPTANCE = 10_000
WAVES = 4  # real requests between the waves
CONCURRENCY = 48  # hostile connections open at once per listener
HOLD_S = 0.05  # longest an idle half-open connect stays before its reset
# The servers share the test's event loop: when a wave ends on the client side they may
# still be working through thousands of accepted connections. A real request must be
# answered once that backlog is through; this bounds how long that may take.
SERVES_WITHIN_S = 90.0


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    greeting: bytes  # a plausible first message of the protocol, sent cut short
    udp: bool = False

    @property
    def tls(self) -> bool:
        return self.greeting[:1] == b"\x16"


def _careless_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


CARELESS_TLS = _careless_tls()


async def _hostile_tcp(target: Target, rng: random.Random) -> None:
    kind = rng.randrange(6)
    try:
        stream = await anyio.connect_tcp("127.0.0.1", target.port)
    except OSError:
        return  # a full backlog refuses a connect: that is the kernel, not the server
    sock: socket.socket = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    reset = kind != 2
    try:
        if kind in (1, 2):
            await stream.send(rng.randbytes(rng.randrange(1, 400)))
        elif kind == 3:
            await stream.send(target.greeting[: rng.randrange(1, len(target.greeting) + 1)])
            await stream.send_eof()
            reset = rng.random() < 0.5
        elif kind == 4:
            await anyio.sleep(rng.random() * HOLD_S)  # half-open: connected, silent
        elif kind == 5 and target.tls:  # a full handshake, then garbage inside TLS
            with anyio.fail_after(5):
                tls = await TLSStream.wrap(stream, ssl_context=CARELESS_TLS, hostname="localhost")
                await tls.send(rng.randbytes(rng.randrange(1, 400)))
        elif kind == 5:  # the whole greeting, then gone while the server answers
            await stream.send(target.greeting)
            with anyio.move_on_after(rng.random() * HOLD_S):
                await stream.receive()
    except (OSError, TimeoutError, anyio.BrokenResourceError, anyio.EndOfStream):
        pass
    finally:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await anyio.aclose_forcefully(stream)


async def _hostile_udp(target: Target, rng: random.Random) -> None:
    data = rng.randbytes(rng.randrange(0, 600)) if rng.random() < 0.7 else target.greeting
    async with await anyio.create_connected_udp_socket("127.0.0.1", target.port) as udp:
        await udp.send(data)  # closed at once: the answer (if any) meets a closed port


async def _wave(target: Target, count: int, seed: int) -> None:
    rng = random.Random(seed)
    slots = anyio.Semaphore(CONCURRENCY)
    hit = _hostile_udp if target.udp else _hostile_tcp

    async def one(r: random.Random) -> None:
        async with slots:
            await hit(target, r)

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            await slots.acquire()  # bound the tasks too, not only the sockets
            slots.release()
            tg.start_soon(one, random.Random(rng.random()))


# -- real requests ------------------------------------------------------------------


def _dns_query() -> bytes:
    return bytes(DNSRecord.question("demo.smolmix.test", "A").pack())


async def _exchange(port: int, request: bytes, tls: ssl.SSLContext | None = None) -> bytes:
    stream: anyio.abc.ByteStream = await anyio.connect_tcp("127.0.0.1", port)
    if tls is not None:
        stream = await TLSStream.wrap(
            stream, ssl_context=tls, hostname="localhost", standard_compatible=False
        )
    data = b""
    async with stream:
        await stream.send(request)
        with anyio.fail_after(10):
            while True:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return data
                if request[:2] != b"GE" and len(data) >= 2 + int.from_bytes(data[:2], "big"):
                    return data  # one DNS answer over TCP/TLS


async def _check_origin(local: LocalNetwork, tls: ssl.SSLContext) -> None:
    origin = local.origin
    assert origin is not None
    get = b"GET /bytes/1000 HTTP/1.1\r\nHost: demo.smolmix.test\r\nConnection: close\r\n\r\n"
    for port, context in ((origin.http_port, None), (origin.https_port, tls)):
        answer = await _exchange(port, get, context)
        assert answer.startswith(b"HTTP/1.1 200") and len(answer) > 1000, answer[:200]
    for scheme, port in (("ws", origin.ws_port), ("wss", origin.wss_port)):
        ws = await connect_websocket(
            f"{scheme}://localhost:{port}/", ssl_context=tls if scheme == "wss" else None, timeout=5
        )
        try:
            await ws.send_text("still here")
            with anyio.fail_after(5):
                assert await ws.receive() == "still here"
        finally:
            await ws.aclose(timeout=1)
    query = _dns_query()
    framed = len(query).to_bytes(2, "big") + query
    for port, context in ((origin.dns_port, None), (origin.dot_port, tls)):
        answer = await _exchange(port, framed, context)
        assert DNSRecord.parse(answer[2:]).rr, port
    async with await anyio.create_connected_udp_socket("127.0.0.1", origin.dns_port) as udp:
        await udp.send(query)
        with anyio.fail_after(5):
            assert DNSRecord.parse(await udp.receive()).rr


async def _check_mixnet(local: LocalNetwork, network: Network) -> None:
    """A fresh client on each gateway sends itself a message over all three mix layers."""
    topology = await fetch_topology(network, 10)  # the directory serves
    for node_id, gateway in local.gateways.items():
        identity = local.specs[node_id].identity.public_bytes
        async with start_client(
            network, topology, config=ClientConfig.fast(), gateway=identity
        ) as client:
            payload = os.urandom(3000)  # a few packets: every layer carries some
            await client.send(client.address, payload)
            assert (await client.receive(timeout=15)).data == payload
        spec = local.specs[node_id]
        assert spec.wss_port is not None, gateway
        wss = GwClient(identity)
        async with wss.connect(
            f"wss://localhost:{spec.wss_port}/", ssl_context=network.ssl_context()
        ) as live:
            assert live.failure is None


async def _eventually(check: Callable[..., Awaitable[None]], *args: object) -> None:
    """`check` passes within SERVES_WITHIN_S; the last failure is raised otherwise."""
    deadline = time.monotonic() + SERVES_WITHIN_S
    while True:
        try:
            with anyio.fail_after(max(1.0, deadline - time.monotonic())):
                await check(*args)
            return
        except Exception:
            if time.monotonic() >= deadline:
                raise
        await anyio.sleep(0.5)


def _targets(local: LocalNetwork) -> list[Target]:
    frame = bytes([3, 0, 1, 0]) + bytes(64)  # a frame header, then too little packet
    upgrade = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    hello = bytes.fromhex("160301020001000200fc0303") + bytes(40)  # a ClientHello, cut
    targets = [Target(f"mix {i}", s.mix_port, frame) for i, s in local.specs.items()]
    for i, spec in local.specs.items():
        if spec.ws_port is not None:
            targets.append(Target(f"gateway {i} ws", spec.ws_port, upgrade))
        if spec.wss_port is not None:
            targets.append(Target(f"gateway {i} wss", spec.wss_port, hello))
    directory, origin = local.directory, local.origin
    assert directory is not None and origin is not None
    targets.append(Target("directory", directory.port, hello))
    query = _dns_query()
    targets += [
        Target("origin http", origin.http_port, b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n"),
        Target("origin https", origin.https_port, hello),
        Target("origin ws", origin.ws_port, upgrade),
        Target("origin wss", origin.wss_port, hello),
        Target("origin dns tcp", origin.dns_port, len(query).to_bytes(2, "big") + query),
        Target("origin dot", origin.dot_port, hello),
        Target("origin dns udp", origin.dns_port, query, udp=True),
    ]
    return targets


def _run(tmp_path: Path, per_listener: int) -> None:
    async def main() -> None:
        local = LocalNetwork(LocalNetworkOptions(tmp_path, mean_delay_ms=0.0, mix_nodes=3))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            tls = network.ssl_context()
            targets = _targets(local)
            timings: list[float] = []
            recoveries: list[float] = []
            with anyio.fail_after(WAVES * SERVES_WITHIN_S + per_listener * len(targets) / 200):
                await _check_mixnet(local, network)
                await _check_origin(local, tls)
                for wave in range(WAVES):
                    start = time.monotonic()
                    async with anyio.create_task_group() as waves:
                        for n, target in enumerate(targets):
                            waves.start_soon(_wave, target, per_listener // WAVES, wave * 100 + n)
                    timings.append(time.monotonic() - start)
                    start = time.monotonic()
                    await _eventually(_check_mixnet, local, network)
                    await _eventually(_check_origin, local, tls)
                    recoveries.append(time.monotonic() - start)
            nodes = {**local.mixnodes, **local.gateways}
            failures = {i: n.counters["internal_errors"] for i, n in nodes.items()}
            print(
                f"{len(targets)} listeners x {per_listener} hostile connections:"
                f" waves {[round(t, 1) for t in timings]} s,"
                f" real requests after them {[round(t, 1) for t in recoveries]} s;"
                f" contained failures: nodes {failures}, directory"
                f" {local.directory.counters.get('errors', 0) if local.directory else None},"
                f" origin {local.origin.failures if local.origin else None}"
            )
            tg.cancel_scope.cancel()

    anyio.run(main)


def test_every_listener_serves_after_hostile_connections(tmp_path: Path) -> None:
    _run(tmp_path, HOSTILE)


@pytest.mark.fuzz
def test_every_listener_serves_after_ten_thousand_hostile_connections(tmp_path: Path) -> None:
    _run(tmp_path, ACCEPTANCE)
