"""The exit IPR end to end: a client tunnel through a real local network to loopback servers.

Every byte crosses real Sphinx packets (entry gateway, three mix nodes, exit
gateway), the exit's IprRouter and its userspace NAT, and real OS sockets.
"""

from __future__ import annotations

import contextlib
import hashlib
from ipaddress import IPv4Address
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSStream
from dnslib import DNSRecord

from smolmix_cli.ipr.client_logic import ClientConfig
from smolmix_cli.ipr.router_logic import RouterConfig
from smolmix_cli.mixnet.client.client import ClientConfig as MixnetClientConfig
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.netstack.aio import StackRunner
from smolmix_cli.netstack.errors import ConnectionRefused
from smolmix_cli.testnet.exit.ipr import ExitIpr, ExitIprOptions
from smolmix_cli.testnet.exit.policy import ExitPolicy
from tests.testnet.exit_tunnel import (
    ExitNet,
    MiniTunnel,
    exit_net,
    mini_tunnel,
    read_all,
    serve_tcp,
)

pytestmark = pytest.mark.anyio


def _runner(tunnel: MiniTunnel) -> StackRunner:
    assert tunnel.runner is not None
    return tunnel.runner


async def test_http_get_to_a_loopback_server_through_the_exit(tmp_path: Path) -> None:
    async def http(stream: anyio.abc.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive()
        body = b"hello " + request.split(b" ")[1]
        await stream.send(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await stream.aclose()

    with anyio.fail_after(40):
        async with exit_net(tmp_path) as net, serve_tcp(http) as port:
            async with mini_tunnel(net.client, net.ipr()) as tunnel:
                stream = await _runner(tunnel).connect_tcp(IPv4Address("127.0.0.1"), port)
                await stream.send(b"GET /through-the-mixnet HTTP/1.0\r\nHost: x\r\n\r\n")
                response = await read_all(stream)
                assert response.startswith(b"HTTP/1.0 200 OK")
                assert response.endswith(b"hello /through-the-mixnet")
            stats = net.local.exits[2].stats()
            assert stats["nat_tcp spliced"] == 1
            assert stats["exit_replies sent"] >= 2  # connect success, then bundled packets


async def test_one_mebibyte_download_is_byte_exact(tmp_path: Path) -> None:
    blob = hashlib.shake_256(b"smolmix").digest(1 << 20)

    async def source(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(blob)
        await stream.aclose()

    with anyio.fail_after(60):
        async with (
            exit_net(tmp_path) as net,
            serve_tcp(source) as port,
            mini_tunnel(net.client, net.ipr()) as tunnel,
        ):
            stream = await _runner(tunnel).connect_tcp(IPv4Address("127.0.0.1"), port)
            await stream.send(b"go")
            data = await read_all(stream)
            assert len(data) == len(blob)
            assert data == blob
            stats = net.local.exits[2].stats()
            # ~1000 replies from 2 SURBs per uplink message: the exit asked for more, and got them
            assert stats["exit_surb requests sent"] > 0
            assert stats.get("exit_reply dropped (no surbs)", 0) == 0
            # ~760 IP packets, bundled across fragments (up to 9 in 8 reply packets)
            assert 80 < stats["exit_replies sent"] < 700


async def test_demo_origin_dns_http_https_and_ping_through_mapped_addresses(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(40):
        async with exit_net(tmp_path) as net, mini_tunnel(net.client, net.ipr()) as tunnel:
            runner = _runner(tunnel)
            demo = net.network.demo
            assert demo is not None and net.network.dns_resolver == "198.18.0.1:53"
            # DNS over UDP to the resolver named in the network file
            host, _, port = net.network.dns_resolver.rpartition(":")
            udp = runner.bind_udp()
            query = DNSRecord.question(demo.zone, "A")
            await udp.sendto(query.pack(), IPv4Address(host), int(port))
            data, source = await udp.receive()
            assert source == (IPv4Address(host), int(port))  # answered from where we asked
            answer = DNSRecord.parse(data)
            assert answer.header.id == query.header.id
            assert [str(rr.rdata) for rr in answer.rr] == [demo.ipv4]
            # plain HTTP on the mapped port 80
            stream = await runner.connect_tcp(IPv4Address(demo.ipv4), demo.ports["http"])
            await stream.send(
                b"GET /bytes/3000 HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"
            )
            response = await read_all(stream)
            head, _, body = response.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert len(body) == 3000
            # HTTPS on 443 with the network CA's certificate for the demo name
            raw = await runner.connect_tcp(IPv4Address(demo.ipv4), demo.ports["https"])
            tls = await TLSStream.wrap(
                raw,
                hostname=demo.zone,
                ssl_context=net.network.ssl_context(),
                standard_compatible=False,
            )
            await tls.send(
                b"GET / HTTP/1.1\r\nHost: demo.smolmix.test\r\nConnection: close\r\n\r\n"
            )
            assert (await read_all(tls)).startswith(b"HTTP/1.1 200")
            # DNS over TLS on 853 (length-prefixed messages, RFC 7858)
            raw = await runner.connect_tcp(IPv4Address(demo.ipv4), demo.ports["dot"])
            dot = await TLSStream.wrap(
                raw,
                hostname=demo.zone,
                ssl_context=net.network.ssl_context(),
                standard_compatible=False,
            )
            query = DNSRecord.question(f"www.{demo.zone}", "A")
            wire = query.pack()
            await dot.send(len(wire).to_bytes(2, "big") + wire)
            reply = b""
            while len(reply) < 2 or len(reply) < 2 + int.from_bytes(reply[:2], "big"):
                reply += await dot.receive()
            answer = DNSRecord.parse(reply[2:])
            assert answer.header.id == query.header.id
            assert demo.ipv4 in [str(rr.rdata) for rr in answer.rr]
            # ICMP echo: answered by the exit for any destination
            for target in (demo.ipv4, "1.1.1.1", "10.0.0.1"):
                rtt = await runner.ping(IPv4Address(target), timeout=5)
                assert rtt > 0
            counters = net.local.exits[2].nat.counters
            assert counters["icmp echo answered"] == 2  # 10.0.0.1 is the stack's own
            assert counters["udp relayed down"] == 1


async def test_policy_denial_and_refusal_fail_fast_with_distinct_signals(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(40):
        async with exit_net(tmp_path) as net, mini_tunnel(net.client, net.ipr()) as tunnel:
            runner = _runner(tunnel)
            rtt = await runner.ping(IPv4Address("198.18.0.1"), timeout=5)
            # denied by the exit policy: Info + ICMP administratively prohibited
            start = anyio.current_time()
            with pytest.raises(ConnectionRefused, match="unreachable"):
                await runner.connect_tcp(IPv4Address("192.168.77.1"), 80)
            denied_after = anyio.current_time() - start
            assert denied_after < 1.0  # before the first SYN retransmission: one round trip
            assert [i.message for i in tunnel.infos] == ["192.168.77.1:80"]
            assert tunnel.infos[0].kind.name == "EXIT_POLICY_FILTER_CHECK_FAILED"
            # allowed, but nobody listens: the exit's OS connect is refused -> RST, no Info
            closed = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
            port = int(closed.extra(anyio.abc.SocketAttribute.local_port))
            await closed.aclose()
            start = anyio.current_time()
            with pytest.raises(ConnectionRefused) as refused:
                await runner.connect_tcp(IPv4Address("127.0.0.1"), port)
            assert "unreachable" not in str(refused.value)
            assert anyio.current_time() - start < 1.0
            assert len(tunnel.infos) == 1
            # denied UDP: the Info names it too
            udp = runner.bind_udp()
            await udp.sendto(b"x", IPv4Address("169.254.1.1"), 53)
            with anyio.fail_after(max(2.0, 20 * rtt)):
                while len(tunnel.infos) < 2:
                    await anyio.sleep(0.01)
            assert tunnel.infos[1].message == "169.254.1.1:53"
            stats = net.local.exits[2].stats()
            assert stats["ipr_exit policy"] == 2
            assert stats["nat_rejected by policy"] == 2
            assert stats["nat_tcp connect refused"] == 1


async def test_connect_with_few_surbs_waits_for_a_surb_request(tmp_path: Path) -> None:
    """5 + 2 SURBs leave the exit below its reserve of 10: it must ask before answering."""
    config = ClientConfig(open_reply_surbs=5)
    with anyio.fail_after(30):
        async with exit_net(tmp_path) as net, mini_tunnel(net.client, net.ipr(), config=config):
            stats = net.local.exits[2].stats()
            assert stats["exit_surb requests sent"] >= 1
            assert net.client.stats.surb_requests_served >= 1


async def test_flows_of_a_replaced_session_are_closed_at_the_origin(tmp_path: Path) -> None:
    """A reconnect (new LP stream, same sender tag) gets new addresses; the NAT then ends
    the old session's connections instead of keeping OS sockets for a client that is gone."""
    ended = anyio.Event()

    async def hold(stream: anyio.abc.SocketStream) -> None:
        await stream.send(b"hello")
        try:
            while await stream.receive():
                pass
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            pass
        ended.set()

    with anyio.fail_after(40):
        async with exit_net(tmp_path) as net, serve_tcp(hold) as port:
            async with mini_tunnel(net.client, net.ipr()) as first:
                stream = await _runner(first).connect_tcp(IPv4Address("127.0.0.1"), port)
                assert await stream.receive() == b"hello"
                udp = _runner(first).bind_udp()
                await udp.sendto(DNSRecord.question("demo.smolmix.test").pack(), *_resolver(net))
                await udp.receive()
            nat = net.local.exits[2].nat
            assert nat.stats()["nat_tcp_flows"] == 1 and nat.stats()["nat_udp_flows"] == 1
            async with mini_tunnel(net.client, net.ipr()):
                with anyio.fail_after(5):
                    await ended.wait()
                assert nat.stats()["nat_tcp_flows"] == 0
                assert nat.stats()["nat_udp_flows"] == 0
                assert nat.counters["tcp flow of a gone client"] == 1


def _own_exit(net: ExitNet, options: ExitIprOptions) -> ExitIpr:
    """An exit IPR of the test's own options on the network's exit gateway (the network
    was started with `exit_ipr=False`)."""
    assert net.network.exit_gateway is not None
    return ExitIpr(
        net.topology,
        decode_key_base58(net.network.exit_gateway.identity, "exit"),
        ssl_context=net.network.ssl_context(),
        options=options,
    )


def _resolver(net: ExitNet) -> tuple[IPv4Address, int]:
    assert net.network.dns_resolver is not None
    host, _, port = net.network.dns_resolver.rpartition(":")
    return IPv4Address(host), int(port)


async def test_an_idle_client_is_forgotten_and_its_flows_closed(tmp_path: Path) -> None:
    """The router's idle sweep (60 s upstream; 1 s here) drops the client silently; the
    NAT then closes its connection to the origin."""
    ended = anyio.Event()

    async def hold(stream: anyio.abc.SocketStream) -> None:
        await stream.send(b"hi")
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            while await stream.receive():
                pass
        ended.set()

    router = RouterConfig(idle_timeout=1.0, sweep_interval=0.25)
    with anyio.fail_after(30):
        async with (
            exit_net(tmp_path, exit_ipr=False) as net,
            serve_tcp(hold) as port,
            anyio.create_task_group() as tg,
        ):
            exit_ipr = _own_exit(
                net, ExitIprOptions(policy=ExitPolicy.local_network(), router=router)
            )
            address = await tg.start(exit_ipr.serve)
            async with mini_tunnel(net.client, address) as tunnel:
                stream = await _runner(tunnel).connect_tcp(IPv4Address("127.0.0.1"), port)
                assert await stream.receive() == b"hi"
                assert exit_ipr.nat.stats()["nat_tcp_flows"] == 1
                with anyio.fail_after(5):
                    await ended.wait()  # no uplink data for 1 s: forgotten, flow closed
                assert exit_ipr.router.stats["idle client removed"] == 1
                assert exit_ipr.nat.counters["tcp flow of a gone client"] == 1
            tg.cancel_scope.cancel()


async def test_a_download_is_byte_exact_when_the_exit_drops_surbs_over_its_bound(
    tmp_path: Path,
) -> None:
    """The exit's SURB store keeps 40 per client and the client sends 60 with its Open: the
    oldest go, the download is byte-exact and the router counts what the store holds."""
    blob = hashlib.shake_256(b"bounded").digest(256 * 1024)

    async def source(stream: anyio.abc.SocketStream) -> None:
        await stream.receive()
        await stream.send(blob)
        await stream.aclose()

    client = MixnetClientConfig.fast(
        keepalive_interval=None, max_retransmissions=0, max_reply_surbs_per_tag=40
    )
    options = ExitIprOptions(policy=ExitPolicy.local_network(), client=client)
    with anyio.fail_after(60):
        async with (
            exit_net(tmp_path, exit_ipr=False) as net,
            serve_tcp(source) as port,
            anyio.create_task_group() as tg,
        ):
            exit_ipr = _own_exit(net, options)
            address = await tg.start(exit_ipr.serve)
            config = ClientConfig(open_reply_surbs=60)
            async with mini_tunnel(net.client, address, config=config) as tunnel:
                stream = await _runner(tunnel).connect_tcp(IPv4Address("127.0.0.1"), port)
                await stream.send(b"go")
                assert await read_all(stream) == blob
            held = exit_ipr.mixnet_client
            assert held is not None and held.stats.reply_surbs_dropped >= 20
            (tag,) = exit_ipr._tags
            with anyio.fail_after(5):  # the router's count follows the store (synced every 0.5 s)
                while exit_ipr.router.surbs_available(tag) != held.reply_surbs_available(tag):
                    await anyio.sleep(0.1)
            assert exit_ipr.stats().get("exit_reply dropped (no surbs)", 0) == 0
            tg.cancel_scope.cancel()
