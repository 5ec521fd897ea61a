"""Exits in the local network: published in the directory and the network file, several at once,
with IPR addresses that survive a restart; `smolmix testnet up --exits N`."""

from __future__ import annotations

import json
import signal
from ipaddress import IPv4Address
from pathlib import Path

import anyio
import pytest

from smolmix_cli.config import load_network_file
from smolmix_cli.ipr.messages import V10
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.directory.nym_api import PATH_DESCRIBED, NymApiClient
from smolmix_cli.netstack.errors import ConnectionRefused
from tests.e2e.cli_net import foreground_testnet, run_cli, state_env
from tests.testnet.exit_tunnel import exit_net, mini_tunnel, read_all

pytestmark = pytest.mark.anyio


async def test_two_exits_are_published_serve_and_keep_their_addresses(tmp_path: Path) -> None:
    with anyio.fail_after(50):
        async with exit_net(tmp_path, exits=2) as net:
            exits = net.network.exits
            assert [e.node_id for e in exits] == [2, 3]
            addresses = [Recipient.parse(e.ipr_address) for e in exits]
            assert addresses[0] != addresses[1]
            for info, address in zip(exits, addresses, strict=True):
                assert address.gateway == net.local.specs[info.node_id].identity.public_bytes
            # the directory's described answer names each IPR (discovery, spec 2.11)
            api = NymApiClient(net.network.api_urls, ssl_context=net.network.ssl_context())
            described = await api.get_json(PATH_DESCRIBED)
            published = {
                item["node_id"]: item["description"]
                for item in described["data"]
                if item["description"]["ip_packet_router"] is not None
            }
            assert {i: d["ip_packet_router"]["address"] for i, d in published.items()} == {
                e.node_id: e.ipr_address for e in exits
            }
            assert {d["build_information"]["build_version"] for d in published.values()} == {
                "1.31.0"
            }
            # the second exit carries traffic as well as the first
            demo = net.network.demo
            assert demo is not None
            async with mini_tunnel(net.client, addresses[1]) as tunnel:
                assert tunnel.runner is not None
                stream = await tunnel.runner.connect_tcp(IPv4Address(demo.ipv4), 80)
                await stream.send(b"GET / HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                assert (await read_all(stream)).startswith(b"HTTP/1.1 200")
            assert net.local.exits[3].nat.counters["tcp spliced"] == 1
            assert net.local.exits[2].nat.counters["tcp spliced"] == 0
            first = [e.ipr_address for e in exits]
        async with exit_net(tmp_path, exits=2) as again:
            assert [e.ipr_address for e in again.network.exits] == first


def test_testnet_up_with_exits_writes_them_to_the_network_file(tmp_path: Path) -> None:
    env = state_env(tmp_path)
    state_dir = tmp_path / "net"
    options = ("--mix-delay-ms", "0", "--exits", "3")
    with foreground_testnet(state_dir, *options, env=env) as (proc, network_file):
        network = load_network_file(network_file)
        assert [e.node_id for e in network.exits] == [2, 3, 4]
        assert network.dns_resolver == "198.18.0.1:53"
        assert network.demo is not None and network.demo.ports["https"] == 443
        status = run_cli(["testnet", "status", "--dir", str(state_dir), "--json"], env, timeout=30)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert [e["ipr_address"] for e in report["exits"]] == [e.ipr_address for e in network.exits]
        assert len(report["nodes"]) == 1 + 3 + 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    _, err = proc.communicate()
    assert "3 exits" in err


def test_exits_option_is_bounded(tmp_path: Path) -> None:
    result = run_cli(["testnet", "up", "--dir", str(tmp_path), "--exits", "0"], timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr


async def test_the_exit_serves_again_after_its_gateway_restarts(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with exit_net(tmp_path) as net, mini_tunnel(net.client, net.ipr()) as tunnel:
            assert tunnel.runner is not None
            demo = net.network.demo
            assert demo is not None
            address = IPv4Address(demo.ipv4)
            await tunnel.runner.ping(address, timeout=5)
            await net.local.restart_gateway(2, down_for=0.2)
            # the IPR's client reconnects to its gateway by itself; the session survives
            for _ in range(100):
                try:
                    await tunnel.runner.ping(address, timeout=0.5)
                    break
                except TimeoutError:
                    continue
            stream = await tunnel.runner.connect_tcp(address, 80)
            await stream.send(b"GET / HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
            assert (await read_all(stream)).startswith(b"HTTP/1.1 200")
            exit_client = net.local.exits[2].mixnet_client
            assert exit_client is not None and exit_client.stats.gateway_connects == 2


def test_a_bad_exit_policy_file_is_a_usage_error(tmp_path: Path) -> None:
    policy = tmp_path / "policy.txt"
    policy.write_text("accept 127.0.0.1:*\npermit *:*\n")
    up = ["testnet", "up", "--dir", str(tmp_path / "n"), "--exit-policy", str(policy)]
    result = run_cli(up, timeout=30)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "line 2" in result.stderr and "permit" in result.stderr
    assert not (tmp_path / "n" / "testnet.pid").exists()


async def test_a_custom_exit_policy_is_enforced(tmp_path: Path) -> None:
    policy = "reject 127.0.0.0/8:*\naccept 198.18.0.0/15:80\n"  # nothing else: denied
    with anyio.fail_after(30):
        async with (
            exit_net(tmp_path, exit_policy=policy) as net,
            mini_tunnel(net.client, net.ipr()) as tunnel,
        ):
            assert tunnel.runner is not None
            stream = await tunnel.runner.connect_tcp(IPv4Address("198.18.0.1"), 80)
            await stream.aclose()
            for host, port in (("127.0.0.1", 80), ("198.18.0.1", 443), ("1.1.1.1", 443)):
                with pytest.raises(ConnectionRefused, match="unreachable"):
                    await tunnel.runner.connect_tcp(IPv4Address(host), port)
            assert [i.message for i in tunnel.infos] == [
                "127.0.0.1:80",
                "198.18.0.1:443",
                "1.1.1.1:443",
            ]


async def test_the_exit_works_through_lossy_mix_nodes(tmp_path: Path) -> None:
    """10 % loss at every mix node: client messages are retransmitted by the client, lost
    control replies by the exit, lost data replies are left to TCP (as upstream)."""
    with anyio.fail_after(60):
        async with exit_net(tmp_path, loss=0.1, seed=3) as net:
            for _ in range(3):
                async with mini_tunnel(net.client, net.ipr()) as tunnel:
                    assert tunnel.runner is not None
                    stream = await tunnel.runner.connect_tcp(IPv4Address("198.18.0.1"), 80)
                    await stream.send(
                        b"GET /bytes/20000 HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
                    )
                    head, _, body = (await read_all(stream)).partition(b"\r\n\r\n")
                    assert head.startswith(b"HTTP/1.1 200") and len(body) == 20000
            dropped = sum(n.counters["dropped_loss"] for n in net.local.mixnodes.values())
            assert dropped > 0


async def test_a_v10_exit_reports_its_mtu(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with exit_net(tmp_path, ipr_build_version="1.99.0") as net:
            api = NymApiClient(net.network.api_urls, ssl_context=net.network.ssl_context())
            described = await api.get_json(PATH_DESCRIBED)
            versions = {
                item["node_id"]: item["description"]["build_information"]["build_version"]
                for item in described["data"]
            }
            assert versions[2] == "1.99.0"
            async with mini_tunnel(net.client, net.ipr(), version=V10) as tunnel:
                assert tunnel.ipr_client.version == V10
                assert tunnel.ipr_client.mtu == 1420
                assert tunnel.runner is not None
                stream = await tunnel.runner.connect_tcp(IPv4Address("198.18.0.1"), 80)
                await stream.send(b"GET / HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                assert (await read_all(stream)).startswith(b"HTTP/1.1 200")
