"""ExitNat on its own: a client NetStack wired straight to the NAT (no mixnet), real OS sockets."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import IPv4Address, IPv6Address

import anyio
import anyio.abc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.message.message import ReplyContentTag, ReplyMessage, split_message
from smolmix_cli.netstack.aio import StackRunner
from smolmix_cli.netstack.errors import ConnectionRefused
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.phy.callback import CallbackDevice
from smolmix_cli.netstack.wire import icmp
from smolmix_cli.netstack.wire.ip import PROTO_ICMP, PROTO_TCP, encode_ip, pseudo_header_raw
from smolmix_cli.netstack.wire.tcp import SYN, TcpSegment, encode_tcp
from smolmix_cli.testnet.exit.ipr import reply_surb_cost
from smolmix_cli.testnet.exit.nat import AddressMap, ExitNat, NatConfig
from tests.fuzzing import scaled
from tests.testnet.exit_tunnel import read_all, udp_packet

pytestmark = pytest.mark.anyio
CLIENT = IPv4Address("10.0.7.7")
LOOP = IPv4Address("127.0.0.1")


@asynccontextmanager
async def wired(
    config: NatConfig | None = None,
    address_map: AddressMap | None = None,
    client: IPv4Address | IPv6Address = CLIENT,
) -> AsyncIterator[tuple[StackRunner, ExitNat]]:
    """A client stack whose packets go into the NAT and back, through queues (as the mixnet)."""
    up_tx, up_rx = anyio.create_memory_object_stream[bytes](10_000)
    down_tx, down_rx = anyio.create_memory_object_stream[bytes](10_000)
    nat = ExitNat(down_tx.send_nowait, config=config, address_map=address_map)
    runner = StackRunner(NetStack([client]), CallbackDevice(up_tx.send_nowait))

    async def uplink() -> None:
        async for packet in up_rx:
            nat.feed(packet)

    async def downlink() -> None:
        async for packet in down_rx:
            runner.stack.receive_packet(packet, runner.clock())
            runner.flush()

    async with anyio.create_task_group() as tg:
        await tg.start(nat.run)
        await tg.start(runner.run)
        tg.start_soon(uplink)
        tg.start_soon(downlink)
        try:
            yield runner, nat
        finally:
            tg.cancel_scope.cancel()


async def test_half_close_travels_both_ways() -> None:
    async def upper(stream: anyio.abc.SocketStream) -> None:
        data = await read_all(stream)  # only ends when the client's FIN came through
        await stream.send(data.upper())
        await stream.send_eof()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    with anyio.fail_after(10):
        async with listener, anyio.create_task_group() as tg, wired() as (runner, nat):
            tg.start_soon(listener.serve, upper)
            stream = await runner.connect_tcp(LOOP, port)
            await stream.send(b"half ")
            await stream.send(b"closed")
            await stream.send_eof()
            assert await read_all(stream) == b"HALF CLOSED"
            await stream.aclose()
            tg.cancel_scope.cancel()
            assert nat.counters["tcp spliced"] == 1


async def test_tcp_flows_are_bounded_and_a_syn_beyond_is_refused() -> None:
    async def hold(stream: anyio.abc.SocketStream) -> None:
        await stream.send(b"hi")
        await read_all(stream)  # until the client's FIN
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    with anyio.fail_after(10):
        async with (
            listener,
            anyio.create_task_group() as tg,
            wired(NatConfig(max_tcp_flows=2)) as (runner, nat),
        ):
            tg.start_soon(listener.serve, hold)
            first = await runner.connect_tcp(LOOP, port)
            second = await runner.connect_tcp(LOOP, port)
            assert await first.receive() == b"hi" and await second.receive() == b"hi"
            with pytest.raises(ConnectionRefused):
                await runner.connect_tcp(LOOP, port)
            assert nat.counters["tcp too many flows"] == 1
            assert nat.stats()["nat_tcp_flows"] == 2
            await first.send_eof()
            assert await read_all(first) == b""
            with anyio.fail_after(5):  # a closed flow frees its place
                while nat.stats()["nat_tcp_flows"] == 2:
                    await anyio.sleep(0.05)
            third = await runner.connect_tcp(LOOP, port)
            assert await third.receive() == b"hi"
            tg.cancel_scope.cancel()


async def test_unreachable_destination_fails_the_connect_with_icmp() -> None:
    amap = AddressMap()
    amap.map_address(IPv4Address("198.18.9.9"), "no-such-host.invalid")  # fails, not refused
    with anyio.fail_after(10):
        async with wired(NatConfig(tcp_connect_timeout=0.3), amap) as (runner, nat):
            start = anyio.current_time()
            with pytest.raises(ConnectionRefused, match="unreachable"):
                await runner.connect_tcp(IPv4Address("198.18.9.9"), 80)
            assert anyio.current_time() - start < 0.9  # not the client's own SYN timeout
            assert nat.counters["tcp connect failed"] == 1


async def test_rejected_udp_gets_admin_prohibited_and_flows_expire_and_are_bounded() -> None:
    sock = await anyio.create_udp_socket(local_host="127.0.0.1")
    port = int(sock.extra(anyio.abc.SocketAttribute.local_port))

    async def echo() -> None:
        async for data, peer in sock:
            await sock.sendto(data, *peer)

    config = NatConfig(udp_idle_timeout=0.3, sweep_interval=0.05, max_udp_flows=2)
    with anyio.fail_after(10):
        async with sock, anyio.create_task_group() as tg, wired(config) as (runner, nat):
            tg.start_soon(echo)
            sockets = [runner.bind_udp() for _ in range(3)]
            for i, udp in enumerate(sockets):
                await udp.sendto(b"%d" % i, LOOP, port)
                assert (await udp.receive())[0] == b"%d" % i
            assert nat.counters["udp flow evicted"] == 1
            assert nat.stats()["nat_udp_flows"] == 2
            await anyio.sleep(0.6)
            assert nat.stats()["nat_udp_flows"] == 0
            assert nat.counters["udp flow expired"] == 2
            # a denied datagram: the NAT answers with ICMP administratively prohibited
            before = runner.stack.counters["icmp_error_udp"]
            denied = udp_packet(CLIENT, IPv4Address("192.168.1.1"), 5000, 53, b"x")
            nat.reject(denied)
            with anyio.fail_after(2):
                while runner.stack.counters["icmp_error_udp"] == before:
                    await anyio.sleep(0.01)
            assert nat.counters["rejected by policy"] == 1
            tg.cancel_scope.cancel()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40_000))
def test_reply_surb_cost_is_the_fragment_count(size: int) -> None:
    message = ReplyMessage(ReplyContentTag.DATA, bytes(size))
    assert reply_surb_cost(size) == len(split_message(message, random.Random(1)))


async def test_mangled_packets_are_dropped_and_the_nat_keeps_working() -> None:
    """Truncated, bit-flipped and random packets: counted, never raised, service goes on."""
    count = scaled(3000, fuzz=60_000)
    rng = random.Random(11)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def hello(stream: anyio.abc.SocketStream) -> None:
        await stream.send(b"still here")
        await stream.aclose()

    closed = await anyio.create_tcp_listener(local_host="127.0.0.1")
    closed_port = int(closed.extra(anyio.abc.SocketAttribute.local_port))
    await closed.aclose()
    s, d = CLIENT.packed, LOOP.packed
    syn = TcpSegment(40000, closed_port, 1, 0, SYN, 65535)
    echo = icmp.IcmpMessage(icmp.V4_ECHO_REQUEST, 0, 0x10001, b"ping")
    seeds = [
        udp_packet(CLIENT, LOOP, 5353, port, b"dns?"),
        udp_packet(CLIENT, IPv4Address("198.18.0.1"), 1, 2, b""),
        encode_ip(s, d, PROTO_ICMP, icmp.encode_icmp(echo)),
        encode_ip(s, d, PROTO_TCP, encode_tcp(syn, pseudo_header_raw(s, d, PROTO_TCP, 20))),
    ]
    with anyio.fail_after(20):
        async with listener, anyio.create_task_group() as tg, wired() as (runner, nat):
            tg.start_soon(listener.serve, hello)
            for _ in range(count):
                packet = bytearray(rng.choice(seeds))
                for _ in range(rng.randint(1, 4)):
                    choice = rng.random()
                    if choice < 0.4 and packet:
                        packet[rng.randrange(len(packet))] ^= 1 << rng.randrange(8)
                    elif choice < 0.7:
                        del packet[rng.randrange(len(packet) + 1) :]
                    else:
                        packet += rng.randbytes(rng.randint(1, 40))
                nat.feed(bytes(packet))
            nat.feed(rng.randbytes(0))
            for _ in range(200):
                nat.feed(rng.randbytes(rng.randint(1, 100)))
            bad = sum(v for k, v in nat.counters.items() if k.startswith("bad"))
            assert bad > count // 3
            assert nat.stats()["nat_tcp_flows"] == 0  # no mangled SYN opened anything
            stream = await runner.connect_tcp(LOOP, port)
            assert await read_all(stream) == b"still here"
            tg.cancel_scope.cancel()


async def test_ipv6_tunnel_side_reaches_a_mapped_ipv4_loopback_server() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = int(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def hello(stream: anyio.abc.SocketStream) -> None:
        await stream.send(b"v6 ok")
        await stream.aclose()

    demo = IPv6Address("2001:2::1")
    amap = AddressMap()
    amap.map_port(demo, 80, "127.0.0.1", port)
    with anyio.fail_after(10):
        async with (
            listener,
            anyio.create_task_group() as tg,
            wired(address_map=amap, client=IPv6Address("fc00::5")) as (runner, nat),
        ):
            tg.start_soon(listener.serve, hello)
            stream = await runner.connect_tcp(demo, 80)
            assert await read_all(stream) == b"v6 ok"
            assert await runner.ping(IPv6Address("2606:4700::1111"), timeout=2) > 0
            assert nat.counters["icmp echo answered"] == 1
            tg.cancel_scope.cancel()
