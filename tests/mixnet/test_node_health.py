"""Routing around listed mix nodes that drop everything (mixnet/topology/health.py).

The model is checked on simulated round trips first (a dead node among healthy ones, uniform
loss, a dead destination), then end to end: two clients over the loopback mixnet where one of
the two layer-1 nodes eats every packet, as a stopped but still listed node does.
"""

from __future__ import annotations

import random

import anyio
import pytest

from smolmix_cli.mixnet.client.client import ClientConfig, MixnetClient
from smolmix_cli.mixnet.topology.health import MAX_AGE_S, NodeHealth
from tests.mixnet.loopback_net import loopback_net
from tests.mixnet.simnet import build_simnet

LAYERS = ((11, 12), (21, 22), (31, 32))
OWN_GATEWAY, EXIT_GATEWAY = 1, 2


def simulate(
    dead: set[int], loss: float, *, rounds: int = 600, seed: int = 1
) -> tuple[NodeHealth, float]:
    """Round trips (packet + ack, each over a fresh route) at 20 per second, routed as the
    client does: uniformly per layer among the nodes not avoided."""
    rng = random.Random(seed)
    health, now = NodeHealth(), 0.0
    for _ in range(rounds):
        now += 0.05
        avoid = health.avoided(now)
        choices = [[n for n in layer if n not in avoid] or list(layer) for layer in LAYERS]
        nodes = (*(rng.choice(c) for c in choices), EXIT_GATEWAY)
        nodes += (*(rng.choice(c) for c in choices), OWN_GATEWAY)
        mix_loss = [rng.random() < loss for n in nodes if n > 10]
        health.observe(nodes, not (set(nodes) & dead) and not any(mix_loss), now)
    return health, now


def test_a_dead_node_is_singled_out_and_its_layer_mates_are_not_blamed() -> None:
    health, now = simulate({12}, loss=0.0)
    assert health.avoided(now + 2) == {12}
    assert all(health.drop_estimate(n) < 0.2 for n in (11, 21, 22, 31, 32))  # type: ignore[operator]


def test_two_dead_nodes_in_different_layers() -> None:
    health, now = simulate({22, 31}, loss=0.05)
    assert health.avoided(now + 2) == {22, 31}


@pytest.mark.parametrize("seed", range(5))
def test_uniform_loss_avoids_nobody(seed: int) -> None:
    health, now = simulate(set(), loss=0.1, seed=seed)
    assert health.avoided(now + 2) == frozenset()


def test_a_dead_destination_is_not_blamed_on_mix_nodes() -> None:
    """Everything fails: nothing is localisable (the exit's gateway is on every route)."""
    health, now = simulate({EXIT_GATEWAY}, loss=0.0)
    assert health.avoided(now + 2) == frozenset()


def test_an_avoided_node_gets_another_chance_once_its_failures_age_out() -> None:
    health, now = simulate({12}, loss=0.0)
    assert health.avoided(now + 2) == {12}
    later = now + MAX_AGE_S + 5
    health.observe((11, 21, 31, EXIT_GATEWAY, 11, 22, 32, OWN_GATEWAY), True, later)
    assert health.avoided(later) == frozenset()


def test_routes_never_leave_a_layer_empty() -> None:
    topology = build_simnet().topology
    first, second = topology.layer(1)
    one_out = topology.avoiding(frozenset({first.node_id}))
    assert one_out.layer(1) == [second] and one_out.layer(2) == topology.layer(2)
    both_out = topology.avoiding(frozenset({first.node_id, second.node_id}))
    assert both_out.layer(1) == [first, second]
    assert one_out.avoiding(one_out.avoid) is one_out


@pytest.mark.anyio
async def test_a_client_routes_around_a_dead_layer_1_node() -> None:
    async with loopback_net() as net:
        dead = net.topology.layer(1)[0]
        net.drop = lambda packet: packet.next_hop == dead.address  # forward packets and acks
        config = ClientConfig.fast(keepalive_interval=None)
        async with (
            MixnetClient.start(net.topology, config=config) as alice,
            MixnetClient.start(net.topology, config=config) as bob,
        ):
            with anyio.fail_after(60):
                first = [await alice.send(bob.address, bytes([i]) * 500) for i in range(60)]
                for mid in first:
                    await alice.wait_delivered(mid, timeout=30)
                assert alice.stats.nodes_avoided == 1
                dropped = net.sim.dropped
                later = [await alice.send(bob.address, b"after") for _ in range(20)]
                for mid in later:
                    await alice.wait_delivered(mid, timeout=30)
                received = {(await bob.receive(timeout=10)).data for _ in range(80)}
            assert received == {bytes([i]) * 500 for i in range(60)} | {b"after"}
            assert net.sim.dropped == dropped  # no route crosses the dead node any more
