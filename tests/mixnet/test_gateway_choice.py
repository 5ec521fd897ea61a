"""Which entry gateways a client tries, in which order, and on which URLs."""

from __future__ import annotations

import dataclasses
import ipaddress
import random
from collections import Counter
from decimal import Decimal

from smolmix_cli.mixnet.client.client import (
    MAX_GATEWAY_CANDIDATES,
    choose_gateway,
    gateway_candidates,
    gateway_url,
    gateway_urls,
    weighted_order,
)
from smolmix_cli.mixnet.topology.topology import EntryDetails, Node, Topology
from tests.mixnet.simnet import build_simnet


def _with_performances(perfs: list[str]) -> tuple[Topology, list[Node]]:
    sim = build_simnet(gateways=len(perfs))
    nodes = dict(sim.topology.nodes)
    gateways = []
    for sim_gw, perf in zip(sim.gateways, perfs, strict=True):
        node = dataclasses.replace(sim_gw.node, performance=Decimal(perf))
        nodes[node.node_id] = node
        gateways.append(node)
    return dataclasses.replace(sim.topology, nodes=nodes), gateways


def test_choice_is_seeded_random_not_always_the_best() -> None:
    topology, gateways = _with_performances(["1.0", "0.9", "0.8", "0.7", "0.6", "0.5"])
    first = [choose_gateway(topology, rng=random.Random(seed)) for seed in range(3)]
    again = [choose_gateway(topology, rng=random.Random(seed)) for seed in range(3)]
    assert first == again  # a seeded rng makes it reproducible
    counts = Counter(choose_gateway(topology, rng=random.Random(s)).node_id for s in range(3000))
    by_id = {g.node_id: counts[g.node_id] for g in gateways}
    assert all(by_id.values())  # everyone gets picked sometimes ...
    assert max(by_id.values()) < 3000 * 0.4  # ... and the best does not take it all
    # ... but better performers more often: 1.0 vs 0.5 weight is 2:1 for coming first.
    best, worst = by_id[gateways[0].node_id], by_id[gateways[-1].node_id]
    assert 1.5 < best / worst < 2.7


def test_weighted_order_is_a_permutation() -> None:
    _topology, gateways = _with_performances(["0.9", "0.8", "0.7", "0.6"])
    order = weighted_order(gateways, random.Random(5))
    assert sorted(n.node_id for n in order) == sorted(n.node_id for n in gateways)


def test_candidates_bounded_and_sticky() -> None:
    performances = [f"0.{99 - i}" for i in range(MAX_GATEWAY_CANDIDATES + 2)]
    topology, gateways = _with_performances(performances)
    rng = random.Random(1)
    got = gateway_candidates(topology, rng=rng)
    assert len(got) == MAX_GATEWAY_CANDIDATES and len(set(got)) == len(got)
    remembered = gateways[-1]
    for seed in range(10):
        got = gateway_candidates(topology, remembered=remembered.identity, rng=random.Random(seed))
        assert got[0] == remembered and remembered not in got[1:]
    # A remembered gateway no longer listed is simply not there.
    got = gateway_candidates(topology, remembered=b"\x01" * 32, rng=random.Random(3))
    assert len(got) == MAX_GATEWAY_CANDIDATES
    # A named gateway is the only candidate: pins do not fail over to others.
    assert gateway_candidates(topology, explicit=gateways[2].identity) == [gateways[2]]


def test_url_chain_wss_then_ws_by_hostname_then_ws_by_each_ip() -> None:
    _topology, gateways = _with_performances(["0.9"])
    node = dataclasses.replace(
        gateways[0],
        entry=EntryDetails("gw.example", 9000, 9001),
        ip_addresses=(ipaddress.ip_address("192.0.2.7"), ipaddress.ip_address("2001:db8::7")),
    )
    assert gateway_urls(node) == [
        "wss://gw.example:9001/",
        "ws://gw.example:9000/",
        "ws://192.0.2.7:9000/",
        "ws://[2001:db8::7]:9000/",
    ]
    assert gateway_url(node) == "wss://gw.example:9001/"
    # No hostname: the IPs only; no wss without a hostname to check a certificate against.
    bare = dataclasses.replace(node, entry=EntryDetails(None, 9000, 9001))
    assert gateway_urls(bare) == ["ws://192.0.2.7:9000/", "ws://[2001:db8::7]:9000/"]
    # A hostname that is an IP is not tried twice.
    same = dataclasses.replace(node, entry=EntryDetails("192.0.2.7", 9000, None))
    assert gateway_urls(same) == ["ws://192.0.2.7:9000/", "ws://[2001:db8::7]:9000/"]
