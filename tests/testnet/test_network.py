"""LocalNetwork: every node listens, the directory lists them, the network file points there."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import anyio
import pytest

from smolmix_cli.config import NetworkConfigError, load_network_file
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.directory.nym_api import NymApiClient
from smolmix_cli.network_choice import NetworkChoice
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions


async def _connects(host: str, port: int) -> bool:
    try:
        stream = await anyio.connect_tcp(host, port)
    except OSError:
        return False
    await stream.aclose()
    return True


def test_local_network_serves_its_topology(tmp_path: Path) -> None:
    async def main() -> None:
        local = LocalNetwork(LocalNetworkOptions(tmp_path, mean_delay_ms=0.0, mix_nodes=4))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            with anyio.fail_after(20):
                client = NymApiClient(
                    network.api_urls, ssl_context=network.ssl_context(), timeout=5
                )
                topology = await client.topology()
                assert topology.is_usable
                assert [len(topology.layer(n)) for n in (1, 2, 3)] == [2, 1, 1]
                # the directory lists exactly the running nodes, with their bound ports
                for node_id, spec in local.specs.items():
                    node = topology.nodes[node_id]
                    assert node.mix_port == spec.mix_port != 0
                    assert node.sphinx_key == spec.sphinx.public_bytes
                    assert await _connects(spec.host, spec.mix_port)
                    if spec.ws_port is not None:
                        assert await _connects(spec.host, spec.ws_port)
                assert network.entry_gateway is not None and network.exit_gateway is not None
                entry = topology.nodes[network.entry_gateway.node_id]
                assert b58encode(entry.identity) == network.entry_gateway.identity
                assert network.entry_gateway.ws_url == f"ws://127.0.0.1:{entry.entry.ws_port}/"  # type: ignore[union-attr]
                assert network.mean_delay_ms == 0.0
                status = local.status()
                assert {n["node_id"] for n in status["nodes"]} == set(local.specs)
                assert status["directory"]["counters"]["requests"] >= 4
            tg.cancel_scope.cancel()

    anyio.run(main)
    # keys are private; the network file is self-contained (CA inline)
    assert stat.S_IMODE((tmp_path / "nodes.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode) == 0o600
    data = json.loads((tmp_path / "network.json").read_text())
    assert data["ca_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert "identity_private" not in json.dumps(data)


def test_restart_keeps_node_identities(tmp_path: Path) -> None:
    async def identities() -> dict[int, str]:
        local = LocalNetwork(LocalNetworkOptions(tmp_path, mix_nodes=3))
        async with anyio.create_task_group() as tg:
            await tg.start(local.serve)
            result = {i: s.identity.public_base58() for i, s in local.specs.items()}
            tg.cancel_scope.cancel()
        return result

    assert anyio.run(identities) == anyio.run(identities)


def test_gateway_restart_rebinds_the_same_ports(tmp_path: Path) -> None:
    async def main() -> None:
        local = LocalNetwork(LocalNetworkOptions(tmp_path, mix_nodes=3))
        async with anyio.create_task_group() as tg:
            await tg.start(local.serve)
            with anyio.fail_after(20):
                before = local.specs[1]
                old = local.gateways[1]
                await local.restart_gateway(1)
                assert local.gateways[1] is not old
                assert local.gateways[1].registry is old.registry
                assert local.specs[1] == before
                assert await _connects(before.host, before.ws_port or 0)
            tg.cancel_scope.cancel()

    anyio.run(main)


def test_network_choice_and_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMOLMIX_NETWORK", raising=False)
    assert NetworkChoice.parse(None).kind == "mainnet"
    monkeypatch.setenv("SMOLMIX_NETWORK", "testnet")
    assert NetworkChoice.parse(None).kind == "testnet"
    assert NetworkChoice.parse("mainnet").kind == "mainnet"  # the option wins over the env
    choice = NetworkChoice.parse(str(tmp_path / "net.json"))
    assert (choice.kind, choice.path) == ("file", tmp_path / "net.json")
    with pytest.raises(NetworkConfigError, match="no network file"):
        load_network_file(tmp_path / "net.json")
    (tmp_path / "net.json").write_text('{"format": "something-else"}')
    with pytest.raises(NetworkConfigError, match="not a smolmix network file"):
        load_network_file(tmp_path / "net.json")
    (tmp_path / "net.json").write_text("{not json")
    with pytest.raises(NetworkConfigError):
        load_network_file(tmp_path / "net.json")


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalNetworkOptions(tmp_path, mix_nodes=2)
    with pytest.raises(ValueError):
        LocalNetworkOptions(tmp_path, loss=1.0)
    with pytest.raises(ValueError):
        LocalNetworkOptions(tmp_path, mean_delay_ms=-1)


def test_another_listen_address_is_advertised_and_certified(tmp_path: Path) -> None:
    async def run(host: str) -> None:
        local = LocalNetwork(LocalNetworkOptions(tmp_path, host=host))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            with anyio.fail_after(20):
                assert network.api_urls[0].host == host
                client = NymApiClient(
                    network.api_urls, ssl_context=network.ssl_context(), timeout=5
                )
                topology = await client.topology()  # TLS verifies the certificate for `host`
                assert {str(n.ip_addresses[0]) for n in topology.nodes.values()} == {host}
                assert network.entry_gateway is not None
                assert network.entry_gateway.ws_url.startswith(f"ws://{host}:")
            tg.cancel_scope.cancel()

    anyio.run(run, "127.0.0.1")
    anyio.run(run, "127.0.0.2")  # node keys are regenerated for the new address, the cert too
