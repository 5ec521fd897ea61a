"""Chaos controls on a running local network: node churn, unlisting, key rotation, reshuffles,
through the directory's token-guarded control endpoints and in-process (NetworkControl)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import stat
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from smolmix_cli.bootstrap import boot_mixnet, fetch_topology
from smolmix_cli.cli.testnet_control import NODE_ACTIONS as CLI_ACTIONS
from smolmix_cli.cli.testnet_control import control_request
from smolmix_cli.config import Network, write_private_json
from smolmix_cli.exit_codes import CliError, ExitCode
from smolmix_cli.mixnet.client.client import ClientConfig, MixnetClient
from smolmix_cli.mixnet.directory.nym_api import NymApiClient
from smolmix_cli.mixnet.topology.topology import parse_key_rotation_info
from smolmix_cli.testnet.control import NODE_ACTIONS, TOKEN_FILE, Schedules
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.tunnel.exits import discover_exits
from smolmix_cli.tunnel.options import for_local_network
from smolmix_cli.tunnel.tunnel import Tunnel
from tests.e2e.cli_net import foreground_testnet, run_cli, state_env

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def running(tmp_path: Path, **options: Any) -> AsyncIterator[tuple[LocalNetwork, Network]]:
    options.setdefault("exit_ipr", False)
    options.setdefault("demo_origin", False)
    local = LocalNetwork(LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, **options))
    async with anyio.create_task_group() as tg:
        network = await tg.start(local.serve)
        yield local, network
        tg.cancel_scope.cancel()


async def control(network: Network, path: str, **params: Any) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(control_request, network, path, params)


def _raw_post(url: str, headers: dict[str, str], network: Network) -> int:
    request = urllib.request.Request(url, data=b"", method="POST", headers=headers)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=network.ssl_context()),
    )
    try:
        with opener.open(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def _echo(client: MixnetClient, payload: bytes) -> None:
    await client.send(client.address, payload)
    assert (await client.receive(timeout=15)).data == payload


async def test_every_action_over_the_token_guarded_endpoints(tmp_path: Path) -> None:
    assert CLI_ACTIONS == NODE_ACTIONS
    with anyio.fail_after(30):
        async with running(tmp_path) as (local, network):
            token_file = local.state_dir / TOKEN_FILE
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            assert network.extra["control"]["token"] == local.control.token
            url = network.extra["control"]["url"] + "rotate"
            # without the token, or with another one: 403, and nothing happened
            for headers in ({}, {"Authorization": "Bearer " + "x" * 43}):
                status = await anyio.to_thread.run_sync(_raw_post, url, headers, network)
                assert status == 403
            wrong = {**network.extra, "control": {**network.extra["control"], "token": "nope"}}
            with pytest.raises(CliError, match="refused") as refused:
                await control(dataclasses.replace(network, extra=wrong), "rotate")
            assert refused.value.code is ExitCode.FAILURE
            assert local.directory_state is not None and local.directory_state.rotation_id == 1
            # each node action, answered with the node's state
            assert await control(network, "nodes/201/stop") == {
                "node_id": 201,
                "state": "stopped",
                "listed": True,
                "standby": False,
            }
            with pytest.raises(CliError, match="is stopped"):
                await control(network, "nodes/201/kill")
            assert (await control(network, "nodes/201/start"))["state"] == "running"
            assert (await control(network, "nodes/202/kill"))["state"] == "killed"
            assert (await control(network, "nodes/202/restart"))["state"] == "running"
            assert (await control(network, "nodes/202/restart", kill=1, down=0.1))["state"] == (
                "running"
            )
            assert (await control(network, "nodes/1/unlist"))["listed"] is False
            assert local.status()["nodes"][0]["listed"] is False
            assert (await control(network, "nodes/1/list"))["listed"] is True
            with pytest.raises(CliError, match="no node 99") as unknown:
                await control(network, "nodes/99/stop")
            assert unknown.value.code is ExitCode.USAGE
            # rotation and reshuffle answer the new epoch and key rotation
            rotated = await control(network, "rotate")
            assert (rotated["rotation_id"], rotated["epoch_id"]) == (2, 20)
            shuffled = await control(network, "reshuffle")
            assert (shuffled["rotation_id"], shuffled["epoch_id"]) == (2, 21)
            assert shuffled["control"]["kills"] == 2
            status = local.status()
            assert status["rotation_id"] == 2
            assert {n["state"] for n in status["nodes"]} == {"running"}


async def test_a_killed_mix_node_carries_traffic_once_started_again(tmp_path: Path) -> None:
    with anyio.fail_after(40):
        async with (
            running(tmp_path) as (local, network),
            boot_mixnet(network, ClientConfig.fast(), phase_timeout=10) as mixnet,
        ):
            client = mixnet.client
            await _echo(client, b"before")
            old = local.mixnodes[201]
            port = local.specs[201].mix_port
            await local.control.kill(201)
            assert old.killed and local.control.state(201).value == "killed"
            with pytest.raises(OSError):
                await anyio.connect_tcp("127.0.0.1", port)
            await local.control.start(201)
            assert local.mixnodes[201] is not old and local.specs[201].mix_port == port
            await _echo(client, b"after the kill")  # every route crosses node 201
            assert local.mixnodes[201].counters["forwarded"] > 0


async def test_a_restarted_gateway_keeps_its_clients_registration(tmp_path: Path) -> None:
    with anyio.fail_after(40):
        async with running(tmp_path) as (local, network):
            topology = await fetch_topology(network, 10)
            config = ClientConfig.fast()
            async with MixnetClient.start(
                topology, gateway=local.specs[1].identity.public_bytes, config=config
            ) as client:
                await _echo(client, b"registered")
                assert local.gateways[1].counters["clients_registered"] == 1
                for kill in (False, True):  # stopped (state saved) and killed (last save)
                    await local.control.restart(1, kill=kill, down_for=0.2)
                    await _echo(client, b"after a restart")
                    gateway = local.gateways[1]
                    assert gateway.counters["clients_authenticated"] >= 1
                    assert gateway.counters["clients_registered"] == 0  # not a new client
                assert client.stats.gateway_connects >= 3


async def test_a_refreshing_client_delivers_across_two_key_rotations(tmp_path: Path) -> None:
    with anyio.fail_after(40):
        async with running(tmp_path) as (local, network):
            api = NymApiClient(network.api_urls, ssl_context=network.ssl_context(), timeout=5)
            config = ClientConfig.fast(topology_refresh_interval=0.2)
            async with boot_mixnet(network, config, phase_timeout=10) as mixnet:
                client = mixnet.client
                await _echo(client, b"rotation 1")
                keys = {i: s.sphinx.public_bytes for i, s in local.specs.items()}
                for rotation in (2, 3):
                    await local.control.rotate()
                    # sent before the client has seen the new keys: the old key still works
                    await _echo(client, b"just after the rotation")
                    info = await api.get_json("v1/epoch/key-rotation-info")
                    assert info["progress"]["current_key_rotation_id"] == rotation
                    assert info["current_absolute_epoch_id"] == rotation * 10
                    # a fresh rotation: the next one is a whole rotation (10 epochs) away
                    predicted = parse_key_rotation_info(info).next_rotation_at()
                    assert predicted is not None and predicted > time.time() + 9.5 * 3600
                    topology = await api.topology()
                    assert topology.rotation_id == rotation
                    for node_id, spec in local.specs.items():
                        assert spec.rotation_id == rotation
                        assert topology.nodes[node_id].sphinx_key == spec.sphinx.public_bytes
                        assert spec.sphinx.public_bytes != keys[node_id]
                        keys[node_id] = spec.sphinx.public_bytes
                    refreshes = client.topology_refreshes
                    while client.topology_refreshes < refreshes + 2:
                        await anyio.sleep(0.05)
                    await _echo(client, f"rotation {rotation}".encode())
                assert client.topology_refresh_failures == 0
            # the keys of the current rotation are kept for the next start of the network
            saved = json.loads((local.state_dir / "nodes.json").read_text())["nodes"]
            assert {n["rotation_id"] for n in saved} == {3}
            assert {n["mix_port"] for n in saved} == {0}


async def test_reshuffle_moves_layers_and_standby_and_traffic_follows(tmp_path: Path) -> None:
    with anyio.fail_after(40):
        async with running(tmp_path, mix_nodes=4) as (local, network):
            api = NymApiClient(network.api_urls, ssl_context=network.ssl_context(), timeout=5)
            before = await api.get_json("v1/nym-nodes/rewarded-set")
            config = ClientConfig.fast(topology_refresh_interval=0.2)
            async with boot_mixnet(network, config, phase_timeout=10) as mixnet:
                await local.control.reshuffle(standby=1)
                after = await api.get_json("v1/nym-nodes/rewarded-set")
                assert after["epoch_id"] == before["epoch_id"] + 1
                assert len(after["standby"]) == 1
                layers = [after[f"layer{n}"] for n in (1, 2, 3)]
                assert all(len(layer) == 1 for layer in layers)
                assert layers != [before[f"layer{n}"] for n in (1, 2, 3)]
                refreshes = mixnet.client.topology_refreshes
                while mixnet.client.topology_refreshes < refreshes + 2:
                    await anyio.sleep(0.05)
                await _echo(mixnet.client, b"after the reshuffle")
                standby = after["standby"][0]
                assert local.mixnodes[standby].counters["received"] == 0  # off every route
                shown = {n["node_id"]: n for n in local.status()["nodes"]}
                assert shown[standby]["standby"] is True
                for layer, (node_id,) in enumerate(layers, start=1):
                    assert (shown[node_id]["layer"], shown[node_id]["standby"]) == (layer, False)
            with pytest.raises(Exception, match="standby must be"):
                await local.control.reshuffle(standby=2)


async def test_an_unlisted_exit_is_not_discovered_and_comes_back_when_listed(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(40):
        async with running(tmp_path, exit_ipr=True, exits=2) as (local, network):
            api = NymApiClient(network.api_urls, ssl_context=network.ssl_context(), timeout=5)
            by_identity = {s.identity.public_base58(): i for i, s in local.specs.items()}

            async def exits() -> set[int]:
                topology = await api.topology()
                found = await discover_exits(api, topology)
                return {by_identity[c.node_identity or ""] for c in found.candidates}

            assert await exits() == {2, 3}
            await local.control.unlist(2)
            assert await exits() == {3}
            described = await api.get_json("v2/nym-nodes/described")
            assert 2 not in {d["node_id"] for d in described["data"]}
            skimmed = await api.get_json("v2/unstable/nym-nodes/skimmed")
            assert 2 not in {n["node_id"] for n in skimmed["nodes"]["data"]}
            assert 2 not in (await api.get_json("v1/nym-nodes/rewarded-set"))["exit_gateways"]
            assert local.control.state(2).value == "running"  # unlisted, not stopped
            await local.control.rotate()  # an unlisted node rotates too, and is listed rotated
            await local.control.relist(2)
            assert await exits() == {2, 3}
            topology = await api.topology()
            assert topology.nodes[2].sphinx_key == local.specs[2].sphinx.public_bytes
            # an exit's IPR stops and starts with its gateway and keeps its address
            address = local.exits[2].address
            await local.control.restart(2)
            assert local.exits[2].address == address
            assert await exits() == {2, 3}


async def test_schedules_rotate_and_reshuffle_by_themselves(tmp_path: Path) -> None:
    schedules = Schedules(rotate_every=0.3, reshuffle_every=0.2)
    assert schedules.epoch_seconds(10) == 1
    assert Schedules(rotate_every=60).epoch_seconds(10) == 6
    with pytest.raises(ValueError):
        Schedules(rotate_every=0)
    with anyio.fail_after(20):
        async with running(tmp_path, schedules=schedules) as (local, _network):
            counters = local.control.counters
            while counters.get("rotations", 0) < 2 or counters.get("reshuffles", 0) < 2:
                await anyio.sleep(0.05)
            state = local.directory_state
            assert state is not None
            assert state.rotation_id == state.absolute_epoch_id // state.validity_epochs >= 3


def test_the_cli_drives_a_running_network(tmp_path: Path) -> None:
    env = state_env(tmp_path)
    state_dir = tmp_path / "net"
    where = ("--dir", str(state_dir))
    options = ("--mix-delay-ms", "0", "--rotate-every", "3600")
    with foreground_testnet(state_dir, *options, env=env) as (proc, network_file):
        assert network_file.exists(), proc.stderr.read() if proc.stderr else ""
        done = run_cli(["testnet", "node", "kill", "202", *where], env, timeout=30)
        assert (done.returncode, done.stdout) == (0, "node 202: killed, listed\n"), done.stderr
        done = run_cli(["testnet", "status", *where, "--json"], env, timeout=30)
        report = json.loads(done.stdout)
        assert done.returncode == 0, done.stderr  # a node killed on purpose is no failure
        assert {n["node_id"]: n["state"] for n in report["nodes"]}[202] == "killed"
        assert (report["rotation_id"], report["epoch_id"]) == (1, 10)
        done = run_cli(["testnet", "node", "restart", "202", *where, "--json"], env, timeout=30)
        assert json.loads(done.stdout)["state"] == "running", done.stderr
        done = run_cli(["testnet", "rotate", *where], env, timeout=30)
        assert (done.returncode, done.stdout) == (0, "epoch 20, key rotation 2\n"), done.stderr
        done = run_cli(["testnet", "reshuffle", *where], env, timeout=30)
        assert (done.returncode, done.stdout) == (0, "epoch 21, key rotation 2\n"), done.stderr
        # one-line errors with their documented codes
        done = run_cli(["testnet", "node", "stop", "99", *where], env, timeout=30)
        assert (done.returncode, done.stderr) == (2, "smolmix: no node 99 in this network\n")
        data = json.loads(network_file.read_text())
        data["control"]["token"] = "wrong"
        write_private_json(network_file, data)
        done = run_cli(["testnet", "rotate", *where], env, timeout=30)
        assert done.returncode == 1 and done.stderr.startswith("smolmix: refused:"), done.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    done = run_cli(["testnet", "node", "start", "201", *where], env, timeout=30)
    assert done.returncode == 112 and "no local test network is running" in done.stderr


async def _fetch_demo(tunnel: Tunnel, host: str) -> bytes:
    stream = await tunnel.open_tcp(host, 80)
    await stream.send(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
    reply = b""
    with contextlib.suppress(anyio.EndOfStream):
        while True:
            reply += await stream.receive()
    return reply


async def test_a_tunnel_carries_fetches_through_the_chaos(tmp_path: Path) -> None:
    """The acceptance scenario's events, each followed by a fetch that must succeed (after at
    most a few retries: only in-flight fetches may fail)."""
    with anyio.fail_after(40):
        async with running(tmp_path, exit_ipr=True, demo_origin=True) as (local, network):
            assert network.demo is not None
            failures = 0

            async def fetch() -> None:
                nonlocal failures
                for _ in range(5):
                    with anyio.move_on_after(8):
                        try:
                            if (await _fetch_demo(tunnel, network.demo.ipv4)).startswith(
                                b"HTTP/1.1 200"
                            ):
                                return
                        except Exception:
                            pass
                    failures += 1
                raise AssertionError("the tunnel did not recover")

            async with Tunnel.open(
                network, for_local_network(data_dir=tmp_path / "data")
            ) as tunnel:
                await tunnel.wait_ready()
                await fetch()
                await local.control.rotate()
                await fetch()
                await local.control.unlist(2)  # its exit leaves the directory, and runs on
                await fetch()
                await local.control.restart(1, kill=True)  # the entry gateway
                await fetch()
                await local.control.kill(203)  # a mix node on every route (one per layer)
                await local.control.start(203)
                await fetch()
                assert local.gateways[1].counters["clients_authenticated"] >= 1  # it came back
                assert local.mixnodes[203].counters["forwarded"] > 0
            assert failures <= 3
