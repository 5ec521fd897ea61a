"""A small exit IPR for the tunnel's tests, from the real parts: a MixnetClient at the exit
gateway, `IprRouter`, and a NetStack in accept-any mode behind it.

Behind the stack: TCP echo (port 7), a TCP source (port 19: send "N\\n", get N
deterministic bytes, then FIN), UDP echo (any other port), ICMP echo at
`ECHO_HOST`, and a tiny NAT mapping chosen virtual endpoints to loopback servers
(the demo origin). `DENIED_NET` is refused by the exit policy (the router answers
with an exit-policy Info, as upstream). Not a production exit: helper X builds that.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address

import anyio
import anyio.abc

from smolmix_cli.config import Network
from smolmix_cli.ipr.router_logic import (
    TUN_IPV4,
    TUN_IPV6,
    IprRouter,
    ReplyToClient,
    RequestSurbs,
    RouterConfig,
)
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.client.client import ClientConfig, MixnetClient
from smolmix_cli.mixnet.client.core import NoReplySurbs
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.mixnet.message.message import ReplyContentTag, ReplyMessage
from smolmix_cli.mixnet.topology.topology import Topology
from smolmix_cli.netstack.aio import StackRunner, TcpStream, UdpSocket
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.phy.memory import memory_link
from smolmix_cli.netstack.socket.tcp.config import TcpConfig

IpAddress = IPv4Address | IPv6Address
ECHO_HOST = IPv4Address("192.0.2.1")  # answers ICMP echo
SERVICE_HOST = IPv4Address("192.0.2.10")  # TCP 7 echo, TCP 19 source, UDP echo
DENIED_NET = IPv4Network("198.51.100.0/24")
ECHO_PORT = 7
SOURCE_PORT = 19


def source_bytes(size: int, seed: bytes = b"smolmix") -> bytes:
    """What the source service sends for a request of `size` bytes (deterministic)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.blake2b(seed + counter.to_bytes(8, "big"), digest_size=64).digest()
        counter += 1
    return bytes(out[:size])


def allow(destination: IpAddress, port: int) -> bool:
    return not (isinstance(destination, IPv4Address) and destination in DENIED_NET)


@dataclass
class LocalExit:
    network: Network
    topology: Topology
    nat: dict[tuple[IpAddress, int], tuple[str, int]] = field(default_factory=dict)
    router_config: RouterConfig = field(default_factory=RouterConfig)
    address: Recipient | None = None
    router: IprRouter | None = None
    client: MixnetClient | None = None
    replies_failed: int = 0

    async def serve(self, *, task_status: anyio.abc.TaskStatus[Recipient]) -> None:
        info = self.network.exit_gateway
        assert info is not None
        gateway = decode_key_base58(info.identity, "exit gateway")
        # upstream sends data replies with max_retransmissions = 0 (spec §5.7): TCP recovers losses,
        # and retransmitting through fresh SURBs would drain the reserve
        config = ClientConfig.fast(keepalive_interval=None, max_retransmissions=0)
        async with MixnetClient.start(
            self.topology, gateway=gateway, ssl_context=self.network.ssl_context(), config=config
        ) as client:
            self.client = client
            self.address = client.address
            preparer = client._core.preparer
            costs: dict[int, int] = {}

            def cost(size: int) -> int:
                if size not in costs:
                    message = ReplyMessage(ReplyContentTag.DATA, bytes(size))
                    costs[size] = len(preparer.split(message))
                return costs[size]

            router = IprRouter(
                config=self.router_config, allow_destination=allow, reply_surb_cost=cost
            )
            self.router = router
            stack = NetStack(
                [TUN_IPV4, TUN_IPV6, ECHO_HOST], tcp_config=TcpConfig(rto_min=0.2, delayed_ack=0.0)
            )
            ours, theirs = memory_link(4096)
            runner = StackRunner(stack, ours)
            wake = anyio.Event()
            known: dict[bytes, int] = {}

            def sync(tag: bytes, now: float) -> None:
                """Mirror the client's real SURB count into the router's account."""
                real = client.reply_surbs_available(tag)
                delta = real - known.get(tag, 0)
                known[tag] = real
                account = router._accounts.get(tag)
                if account is not None:
                    account.available = real - max(0, delta)
                if delta > 0:  # settles pending SURB requests too (cannot tell them apart)
                    router.on_additional_surbs(tag, delta, now)

            async def flush() -> None:
                nonlocal wake
                for packet in router.pop_uplink():
                    theirs.send_nowait(packet)
                for transmit in router.pop_transmits():
                    try:
                        if isinstance(transmit, ReplyToClient):
                            await client.send_reply(transmit.sender_tag, transmit.payload)
                        elif isinstance(transmit, RequestSurbs):
                            await client.request_reply_surbs(transmit.sender_tag, transmit.amount)
                    except NoReplySurbs:
                        self.replies_failed += 1
                    known[transmit.sender_tag] = client.reply_surbs_available(transmit.sender_tag)
                wake.set()

            async def from_mixnet() -> None:
                while True:
                    message = await client.receive()
                    tag = message.sender_tag
                    now = anyio.current_time()
                    if tag is not None:
                        sync(tag, now)
                    router.on_message(tag, message.data, 0, now)
                    await flush()

            async def from_stack() -> None:
                while True:
                    packet = await theirs.receive()
                    now = anyio.current_time()
                    router.on_downlink(packet, now)
                    while (more := theirs.receive_nowait()) is not None:
                        router.on_downlink(more, now)
                    await flush()

            async def clock() -> None:
                nonlocal wake
                while True:
                    now = anyio.current_time()
                    for tag in list(known):
                        sync(tag, now)
                    deadline = router.poll_deadline()
                    if deadline is not None and deadline <= now:
                        router.handle_timeout(now)
                    await flush()
                    deadline = router.poll_deadline()
                    wait = 0.02 if deadline is None else min(0.02, max(0.0, deadline - now))
                    wake = anyio.Event()
                    with anyio.move_on_after(wait):
                        await wake.wait()

            async with anyio.create_task_group() as tg:
                await tg.start(runner.run)
                tg.start_soon(from_mixnet)
                tg.start_soon(from_stack)
                tg.start_soon(clock)
                tg.start_soon(self._tcp_services, runner, tg)
                tg.start_soon(self._udp_services, runner, tg)
                task_status.started(client.address)
                await anyio.sleep_forever()

    async def _tcp_services(self, runner: StackRunner, tg: anyio.abc.TaskGroup) -> None:
        listener = runner.listen_tcp_any()
        while True:
            stream = await listener.accept()
            tg.start_soon(self._tcp_one, stream)

    async def _tcp_one(self, stream: TcpStream) -> None:
        local_addr, local_port = stream.local
        try:
            target = self.nat.get((local_addr, local_port))
            if target is not None:
                await _proxy(stream, target)
            elif local_port == SOURCE_PORT:
                request = b""
                while not request.endswith(b"\n"):
                    request += await stream.receive()
                size = int(request)
                data = source_bytes(size)
                for start in range(0, size, 65536):
                    await stream.send(data[start : start + 65536])
                await stream.send_eof()
                with anyio.move_on_after(30):
                    while await stream.receive():
                        pass
            else:
                while True:
                    await stream.send(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            await stream.aclose()

    async def _udp_services(self, runner: StackRunner, tg: anyio.abc.TaskGroup) -> None:
        sock = runner.bind_udp_any()
        while True:
            datagram = await sock.receive_datagram()
            target = self.nat.get((datagram.dst[0], datagram.dst[1]))
            if target is None:
                await sock.sendto(datagram.data, *datagram.src, src=datagram.dst)
            else:
                tg.start_soon(_udp_relay, sock, datagram.data, datagram.src, datagram.dst, target)


async def _proxy(stream: TcpStream, target: tuple[str, int]) -> None:
    async with await anyio.connect_tcp(*target) as outside:

        async def up() -> None:
            try:
                while True:
                    await outside.send(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                await outside.send_eof()

        async with anyio.create_task_group() as tg:
            tg.start_soon(up)
            try:
                while True:
                    await stream.send(await outside.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                await stream.send_eof()


async def _udp_relay(
    sock: UdpSocket,
    data: bytes,
    client: tuple[IpAddress, int],
    virtual: tuple[IpAddress, int],
    target: tuple[str, int],
) -> None:
    async with await anyio.create_udp_socket(family=socket.AF_INET, local_host="127.0.0.1") as out:
        await out.sendto(data, *target)
        with anyio.move_on_after(5):
            reply, _ = await out.receive()
            await sock.sendto(reply, *client, src=virtual)
