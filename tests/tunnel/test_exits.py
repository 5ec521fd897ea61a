"""Exit discovery filters (role, IPR, build, performance, routability) and the weighted order."""

from __future__ import annotations

import random
from collections import Counter
from ipaddress import IPv4Address
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.topology.topology import (
    EntryDetails,
    Node,
    NodeRole,
    RewardedSet,
    Topology,
)
from smolmix_cli.tunnel.exits import (
    SKIP_LOW_PERFORMANCE,
    SKIP_MALFORMED,
    SKIP_NO_IPR,
    SKIP_NO_ROLE,
    SKIP_OLD_BUILD,
    SKIP_UNLISTED,
    SKIP_UNROUTABLE,
    ExitCandidate,
    ExitDiscovery,
    candidates_from,
    exit_order,
    routable,
)


def _key() -> bytes:
    return Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _recipient(gateway: bytes | None = None) -> Recipient:
    return Recipient(_key(), bytes(range(32)), gateway if gateway is not None else _key())


def _described(
    identity: str, ipr: str | None, build: str, *, exit_ipr: bool = True
) -> dict[str, Any]:
    return {
        "description": {
            "host_information": {"keys": {"ed25519": identity}},
            "build_information": {"build_version": build},
            "declared_role": {
                "mixnode": False,
                "entry": True,
                "exit_nr": True,
                "exit_ipr": exit_ipr,
            },
            "ip_packet_router": None if ipr is None else {"address": ipr},
        }
    }


def test_candidates_need_the_role_an_ipr_a_recent_build_and_performance() -> None:
    good, old, unlisted, nr_only, slow = (_recipient() for _ in range(5))
    items = [
        _described("A", str(good), "1.31.0"),
        _described("B", str(old), "1.29.9"),
        _described("C", None, "1.31.0"),
        _described("D", "not-a-recipient", "1.31.0"),
        _described("E", str(unlisted), "1.31.0"),
        _described("F", str(nr_only), "1.37.0", exit_ipr=False),
        _described("G", str(slow), "1.37.0"),
        {"description": "garbage"},
        "garbage",
    ]
    skipped: Counter[str] = Counter()
    found = candidates_from(
        items, {"A": 80, "B": 90, "C": 90, "D": 90, "F": 99, "G": 49}, skipped=skipped
    )
    assert [c.key for c in found] == [str(good)]
    assert found[0].performance == 80
    assert skipped[SKIP_MALFORMED] == 2 and skipped[SKIP_NO_ROLE] == 1
    assert skipped[SKIP_OLD_BUILD] == 1 and skipped[SKIP_NO_IPR] == 2
    assert skipped[SKIP_UNLISTED] == 1 and skipped[SKIP_LOW_PERFORMANCE] == 1


def _gateway(node_id: int, identity: bytes, *, entry: bool = True) -> Node:
    return Node(
        node_id,
        identity,
        bytes(32),
        (IPv4Address("10.1.0.1"),),
        1789,
        NodeRole.EXIT_GATEWAY,
        entry=EntryDetails(None, 9000, None) if entry else None,
    )


def test_only_exits_behind_an_entry_capable_gateway_of_the_topology_are_routable() -> None:
    listed, no_socket, absent, unrewarded = _key(), _key(), _key(), _key()
    topology = Topology(
        RewardedSet(1, entry_gateways=(1,), exit_gateways=(2,)),
        {
            1: _gateway(1, listed),
            2: _gateway(2, no_socket, entry=False),
            3: _gateway(3, unrewarded),
        },
    )
    exits = [ExitCandidate(_recipient(g)) for g in (listed, no_socket, absent, unrewarded)]
    skipped: Counter[str] = Counter()
    assert routable(exits, topology, skipped) == exits[:1]
    assert skipped[SKIP_UNROUTABLE] == 3
    summary = ExitDiscovery(exits[:1], 7, skipped).summary()
    assert summary == "1 usable exits of 7 described nodes (skipped: 3 gateway not in the topology)"


def test_order_is_a_weighted_permutation_with_the_remembered_first() -> None:
    a = ExitCandidate(_recipient(), performance=90)
    b = ExitCandidate(_recipient(), performance=60)
    c = ExitCandidate(_recipient(), performance=50)
    zero = ExitCandidate(_recipient(), performance=0)
    rng = random.Random(1)
    firsts: Counter[str] = Counter()
    for _ in range(3000):
        order = exit_order([a, b, c, zero], rng)
        assert sorted(x.key for x in order) == sorted(x.key for x in (a, b, c))  # each once
        firsts[order[0].key] += 1
    assert 0.40 < firsts[a.key] / 3000 < 0.50  # 90 / 200
    assert firsts[a.key] > firsts[b.key] > firsts[c.key]
    assert exit_order([a, b, c], random.Random(7)) == exit_order([a, b, c], random.Random(7))
    assert exit_order([a, b, c], rng, prefer=c.key)[0] is c
    assert exit_order([a, b], rng, prefer="gone")[0] in (a, b)
    assert exit_order([], rng) == []
