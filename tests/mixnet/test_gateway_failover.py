"""MixnetClient.start moving past gateway URLs and gateways that do not work."""

from __future__ import annotations

import dataclasses
import random
import socket

import anyio
import anyio.abc
import pytest

from smolmix_cli.mixnet.client.client import (
    MAX_GATEWAY_CANDIDATES,
    ClientConfig,
    MixnetClient,
    gateway_candidates,
)
from smolmix_cli.mixnet.client.key_store import KeyStore
from smolmix_cli.mixnet.gateway.client import GatewayUnavailable
from smolmix_cli.mixnet.topology.topology import EntryDetails, Topology
from tests.mixnet.loopback_net import LoopbackNet, loopback_net

FAST = ClientConfig.fast(keepalive_interval=None)

pytestmark = [pytest.mark.anyio, pytest.mark.anyio_backends("asyncio", "trio")]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_entry(net: LoopbackNet, index: int, entry: EntryDetails) -> Topology:
    node = net.sim.gateways[index].node
    nodes = dict(net.topology.nodes)
    nodes[node.node_id] = dataclasses.replace(nodes[node.node_id], entry=entry)
    return dataclasses.replace(net.topology, nodes=nodes)


async def test_unreachable_gateway_then_the_next_one() -> None:
    async with loopback_net() as net:
        dead = net.sim.gateways[0].node.identity
        live = net.sim.gateways[1].node.identity
        topology = _with_entry(net, 0, EntryDetails("127.0.0.1", _closed_port(), None))
        store = KeyStore.ephemeral()
        store.set_active_gateway(dead)  # remembered, so it is tried first
        async with (
            MixnetClient.start(topology, key_store=store, config=FAST) as alice,
            MixnetClient.start(topology, gateway=live, config=FAST) as bob,
        ):
            assert alice.address.gateway == live
            *skipped, (_last, outcome) = alice.gateways_tried
            # The dead gateway's hostname, then its announced IP: both refused.
            dead_node = topology.node_by_identity(dead)
            assert [name.split(" at ")[1] for name, _ in skipped] == [
                f"ws://127.0.0.1:{dead_node.entry.ws_port}/",  # type: ignore[union-attr]
                f"ws://{dead_node.ip_addresses[0]}:{dead_node.entry.ws_port}/",  # type: ignore[union-attr]
            ]
            assert all(why and why != "connected" for _, why in skipped)
            assert outcome == "connected"
            await alice.send(bob.address, b"hello")
            assert (await bob.receive(timeout=10)).data == b"hello"


async def test_wss_failing_falls_back_to_ws_on_the_same_gateway() -> None:
    async with loopback_net() as net:
        gw = net.sim.gateways[0].node.identity
        port = net.gateways[0].port
        # wss on a closed port, plain ws on the real one: the hostname's ws URL is next.
        topology = _with_entry(net, 0, EntryDetails("127.0.0.1", port, _closed_port()))
        async with MixnetClient.start(topology, gateway=gw, config=FAST) as alice:
            (wss, why), (ws, outcome) = alice.gateways_tried
            assert " at wss://127.0.0.1:" in wss and why
            assert ws.endswith(f" at ws://127.0.0.1:{port}/") and outcome == "connected"


async def test_all_gateways_failing_names_each_and_stays_bounded() -> None:
    async with loopback_net(gateways=4) as net:
        topology = net.topology
        for i in range(4):
            topology = dataclasses.replace(
                topology,
                nodes={
                    **topology.nodes,
                    net.sim.gateways[i].node.node_id: dataclasses.replace(
                        topology.nodes[net.sim.gateways[i].node.node_id],
                        entry=EntryDetails("127.0.0.1", _closed_port(), None),
                    ),
                },
            )
        for limit, tried in ((MAX_GATEWAY_CANDIDATES, 4), (3, 3)):
            config = dataclasses.replace(FAST, gateway_attempts=limit)
            with anyio.fail_after(10), pytest.raises(GatewayUnavailable) as info:
                async with MixnetClient.start(topology, config=config):
                    pass
            text = str(info.value)
            assert text.startswith("no usable gateway: ")
            # At most `limit` gateways, each on its hostname and its IP.
            assert text.count(" at ws://") == 2 * tried
            assert len({part.split(" at ")[0] for part in text[19:].split("; ")}) == tried


async def test_failover_over_dead_and_black_holed_gateways_stays_in_budget() -> None:
    """Five dead gateways (two refuse, three accept TCP and never answer) before a live
    one: each black hole costs one short attempt, not the whole gateway budget."""
    attempt = 1.0
    async with anyio.create_task_group() as holes, loopback_net(gateways=6) as net:
        sinks: list[anyio.abc.SocketListener] = []

        async def swallow(stream: anyio.abc.SocketStream) -> None:
            async with stream:
                await anyio.sleep_forever()

        for _ in range(3):
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
            sinks.append(listener)
            holes.start_soon(listener.serve, swallow)
        topology = net.topology
        for i in range(5):
            port = sinks[i].extra(anyio.abc.SocketAttribute.local_port) if i < 3 else _closed_port()
            node_id = net.sim.gateways[i].node.node_id
            nodes = dict(topology.nodes)
            nodes[node_id] = dataclasses.replace(
                nodes[node_id], entry=EntryDetails("127.0.0.1", port, None), ip_addresses=()
            )
            topology = dataclasses.replace(topology, nodes=nodes)
        live = net.sim.gateways[5].node.identity
        store = KeyStore.ephemeral()
        config = dataclasses.replace(FAST, gateway_attempt_timeout=attempt, gateway_budget=20.0)
        # every dead gateway comes first: the store remembers one, the rest are drawn
        for seed in range(200):
            order = gateway_candidates(topology, rng=random.Random(seed))
            if order[-1].identity == live:
                break
        started = anyio.current_time()
        with anyio.fail_after(15):
            async with MixnetClient.start(
                topology, key_store=store, config=config, rng=random.Random(seed)
            ) as alice:
                took = anyio.current_time() - started
                assert alice.gateway.identity == live
                *skipped, (_last, outcome) = alice.gateways_tried
                assert outcome == "connected"
                assert len({name.split(" at ")[0] for name, _ in skipped}) == 5
        assert took < 3 * attempt + 4  # three black holes, one attempt each
        holes.cancel_scope.cancel()
