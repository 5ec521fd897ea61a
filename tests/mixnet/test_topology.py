"""Topology from the directory answers the official client accepted (spec 4.2, 4.4, 9.2)."""

from __future__ import annotations

import contextlib
import copy
import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.packet.size import SphinxKeyRotation
from smolmix_cli.mixnet.topology.route import InvalidDelay, exponential_delays, random_route
from smolmix_cli.mixnet.topology.topology import (
    NodeRole,
    NoUsableRoute,
    Topology,
    TopologyError,
    parse_key_rotation_info,
    parse_node,
    parse_nodes_page,
    parse_rewarded_set,
)
from tests.vectors import h, load_vector

ANSWERS = load_vector("official-client", "directory-answers.json")["requests_in_order"]
PACKETS = load_vector("official-client", "sphinx-packets.json")


def _body(fragment: str) -> Any:
    return next(r["body"] for r in ANSWERS if fragment in r["path"])


def _topology() -> Topology:
    pages = [parse_nodes_page(r["body"]) for r in ANSWERS if "/skimmed/" in r["path"]]
    return Topology.from_directory(parse_rewarded_set(_body("rewarded-set")), pages)


def test_directory_answers_parse_into_the_recorded_nodes() -> None:
    topology = _topology()
    assert topology.is_usable
    for recorded in PACKETS["nodes"].values():
        node = topology.nodes[recorded["node_id"]]
        assert node.sphinx_key == h(recorded["x25519_sphinx_public"])
        assert node.address.to_bytes() == h(recorded["node_address_bytes_32"])
        assert str(node.address) == recorded["mix_address"]
        assert node.route_hop.public_key == h(recorded["x25519_sphinx_public"])
    gateway = topology.node_by_identity(h(PACKETS["gateway_identity"]["ed25519_identity_public"]))
    assert gateway.node_id == PACKETS["gateway_identity"]["node_id"]
    assert gateway.role is NodeRole.ENTRY_GATEWAY and gateway.entry is not None
    assert topology.key_rotation == PACKETS["packets"][0]["mix_packet_v2"]["key_rotation"]
    assert topology.rotation_id == PACKETS["directory"]["rotation_id"]


def test_node_fields() -> None:
    raw = _body("mixnodes/active")["nodes"]["data"][0]
    node = parse_node(raw)
    assert node.node_id == raw["node_id"]
    assert node.layer == raw["role"]["Mixnode"]["layer"]
    assert node.performance == Decimal(raw["performance"])
    assert node.mix_port == raw["mix_port"]
    assert node.supported_roles.mixnode == raw["supported_roles"]["mixnode"]
    assert node.entry is None


def test_key_rotation_info() -> None:
    body = _body("key-rotation-info")
    info = parse_key_rotation_info(body)
    assert info.current_key_rotation_id == body["progress"]["current_key_rotation_id"]
    assert info.validity_epochs == body["key_rotation_state"]["validity_epochs"]
    assert (
        SphinxKeyRotation.from_rotation_id(info.current_key_rotation_id) == _topology().key_rotation
    )


def test_route_is_one_node_per_layer_then_egress() -> None:
    topology = _topology()
    egress = h(PACKETS["gateway_identity"]["ed25519_identity_public"])
    route = random_route(topology, egress, random.Random(1))
    assert [n.layer for n in route[:3]] == [1, 2, 3]
    assert route[3].identity == egress
    with pytest.raises(NoUsableRoute):
        random_route(topology, bytes(32), random.Random(1))


def test_low_performance_nodes_dropped() -> None:
    page = copy.deepcopy(_body("mixnodes/active"))
    page["nodes"]["data"][0]["performance"] = "0.499"
    parsed = parse_nodes_page(page)
    topology = Topology.from_directory(parse_rewarded_set(_body("rewarded-set")), [parsed])
    assert topology.layer(1) == []
    with pytest.raises(NoUsableRoute):
        random_route(topology, parsed.nodes[1].identity, random.Random(1))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("performance",), 1.0),  # the official client requires a decimal string
        (("performance",), "1.5"),
        (("performance",), "abc"),
        (("x25519_sphinx_pubkey",), "0OIl"),
        (("ed25519_identity_pubkey",), 5),
        (("ip_addresses",), []),
        (("ip_addresses",), ["not-an-ip"]),
        (("mix_port",), 70000),
        (("role",), {"Mixnode": {"layer": 4}}),
        (("role",), "Unknown"),
        (("node_id",), True),
    ],
)
def test_bad_node_fields_raise_topology_error(path: tuple[str, ...], value: Any) -> None:
    raw = copy.deepcopy(_body("mixnodes/active")["nodes"]["data"][0])
    raw[path[0]] = value
    with pytest.raises(TopologyError):
        parse_node(raw)


def test_pages_must_agree() -> None:
    a = parse_nodes_page(_body("mixnodes/active"))
    other = copy.deepcopy(_body("entry-gateways"))
    other["metadata"]["rotation_id"] += 1
    with pytest.raises(TopologyError):
        Topology.from_directory(
            parse_rewarded_set(_body("rewarded-set")), [a, parse_nodes_page(other)]
        )


def test_delays() -> None:
    assert exponential_delays(0, 4, random.Random(1)) == [0, 0, 0, 0]
    rnd = random.Random(2)
    delays = exponential_delays(1_000_000, 4000, rnd)
    assert all(isinstance(d, int) and d >= 0 for d in delays)
    assert 900_000 < sum(delays) / len(delays) < 1_100_000
    assert exponential_delays(1_000_000, 4, random.Random(9)) == exponential_delays(
        1_000_000, 4, random.Random(9)
    )
    with pytest.raises(InvalidDelay):
        exponential_delays(-1, 1, rnd)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


@given(_JSON)
def test_parsers_raise_only_mixnet_errors_on_random_json(value: Any) -> None:
    for parse in (parse_node, parse_nodes_page, parse_rewarded_set, parse_key_rotation_info):
        with contextlib.suppress(MixnetError):
            parse(value)


@given(st.data())
def test_parsers_on_mutated_real_answers(data: st.DataObject) -> None:
    body = copy.deepcopy(_body("mixnodes/active"))
    node = body["nodes"]["data"][0]
    key = data.draw(st.sampled_from(sorted(node)))
    node[key] = data.draw(_JSON)
    with contextlib.suppress(MixnetError):
        parse_nodes_page(body)
