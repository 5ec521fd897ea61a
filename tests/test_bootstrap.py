"""The shared mixnet boot on an in-process local network: phases, pinned gateway, kept keys."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from smolmix_cli.bootstrap import boot_mixnet
from smolmix_cli.cli.ping import ping_config
from smolmix_cli.config import MAINNET, load_network_file
from smolmix_cli.mixnet.client.client import ClientConfig
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.tunnel.options import for_network

pytestmark = pytest.mark.anyio


async def test_phases_pinned_entry_gateway_and_keys_kept_in_the_data_dir(tmp_path: Path) -> None:
    local = LocalNetwork(
        LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, exit_ipr=False, demo_origin=False)
    )
    async with anyio.create_task_group() as tg:
        network = await tg.start(local.serve)
        assert network.entry_gateway is not None
        entry = decode_key_base58(network.entry_gateway.identity, "entry")
        phases: list[str] = []
        addresses = []
        with anyio.fail_after(30):
            for _ in range(2):
                async with boot_mixnet(
                    network,
                    ClientConfig.fast(),
                    data_dir=tmp_path / "data",
                    phase_timeout=10,
                    on_phase=phases.append,
                ) as mixnet:
                    assert mixnet.client.address.gateway == entry
                    await mixnet.client.send(mixnet.client.address, b"hello")
                    assert (await mixnet.client.receive(timeout=10)).data == b"hello"
                    addresses.append(mixnet.client.address)
        # -v: the directory's counts, then the gateway (and URL) tried; the pinned entry only.
        tried = f"connecting to gateway {network.entry_gateway.identity} at ws"
        assert phases[0::3] == ["reading the directory"] * 2
        assert all(
            p.startswith("directory: ") and p.endswith("; connecting to the gateway")
            for p in phases[1::3]
        )
        assert [p[: len(tried)] for p in phases[2::3]] == [tried] * 2
        assert addresses[0] == addresses[1]  # the same keys, read back from the data dir
        assert (tmp_path / "data" / "client").is_dir()
        tg.cancel_scope.cancel()


async def test_the_booted_client_refreshes_its_topology_from_the_directory(tmp_path: Path) -> None:
    local = LocalNetwork(
        LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, exit_ipr=False, demo_origin=False)
    )
    async with anyio.create_task_group() as tg:
        network = await tg.start(local.serve)
        server = local.directory
        assert server is not None
        config = ClientConfig.fast(topology_refresh_interval=0.2)
        with anyio.fail_after(30):
            async with boot_mixnet(network, config, phase_timeout=10) as mixnet:
                client = mixnet.client
                assert mixnet.topology.next_rotation_at is not None  # from key-rotation-info
                before = server.counters["requests"]
                while client.topology_refreshes < 2:
                    await anyio.sleep(0.05)
                assert server.counters["requests"] - before >= 8  # 4 endpoints, twice
                assert client.topology_refresh_failures == 0
                await client.send(client.address, b"after the refresh")
                assert (await client.receive(timeout=10)).data == b"after the refresh"
        tg.cancel_scope.cancel()


def test_ping_shapes_traffic_as_the_tunnel_does() -> None:
    assert ping_config(MAINNET, None) == for_network(MAINNET).mixnet_config(MAINNET)
    shaped = ping_config(MAINNET, None)
    assert shaped.cover and shaped.poisson and shaped.average_packet_delay == 0.05
    assert ping_config(MAINNET, 0.0).average_ack_delay == 0.0


async def test_an_unpinned_network_file_lets_the_client_choose_from_the_directory(
    tmp_path: Path,
) -> None:
    local = LocalNetwork(
        LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, exit_ipr=False, demo_origin=False)
    )
    async with anyio.create_task_group() as tg:
        await tg.start(local.serve)
        data = json.loads(local.network_file.read_text())
        data["entry_gateway"] = data["exit_gateway"] = None
        unpinned = tmp_path / "unpinned.json"
        unpinned.write_text(json.dumps(data))
        network = load_network_file(unpinned)
        assert network.entry_gateway is None and network.exit_gateway is None
        gateways = {
            decode_key_base58(s.identity.public_base58(), "g") for s in local.specs.values()
        }
        with anyio.fail_after(30):
            async with boot_mixnet(network, ClientConfig.fast(), phase_timeout=10) as mixnet:
                assert mixnet.client.address.gateway in gateways
                await mixnet.client.send(mixnet.client.address, b"chosen")
                assert (await mixnet.client.receive(timeout=10)).data == b"chosen"
        tg.cancel_scope.cancel()
