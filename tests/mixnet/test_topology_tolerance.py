"""Odd nodes in a directory list are skipped and counted, never fatal (readiness rows 5, 7, 8).

Mainnet lists hundreds of nodes; one with no IP, an unknown role or a bad key
must cost that node only. Only a malformed document (metadata, pagination, the
list itself) fails a page.
"""

from __future__ import annotations

import copy
import ipaddress
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.topology.topology import (
    LOW_PERFORMANCE,
    ROTATION_REFRESH_MARGIN,
    KeyRotationInfo,
    RewardedSet,
    Topology,
    TopologyError,
    parse_key_rotation_info,
    parse_nodes_page,
)
from tests.vectors import load_vector

ANSWERS = load_vector("official-client", "directory-answers.json")["requests_in_order"]


def _body(fragment: str) -> Any:
    return copy.deepcopy(next(r["body"] for r in ANSWERS if fragment in r["path"]))


def _good_node(node_id: int, layer: int | None = None) -> dict[str, Any]:
    """A well-formed SkimmedNodeV1 with distinct keys (a mixnode, or an entry gateway)."""
    raw = _body("mixnodes/active")["nodes"]["data"][0]
    raw["node_id"] = node_id
    raw["ed25519_identity_pubkey"] = b58encode(node_id.to_bytes(4, "big") * 8)
    raw["x25519_sphinx_pubkey"] = b58encode(bytes(28) + node_id.to_bytes(4, "big"))
    raw["ip_addresses"] = [str(ipaddress.IPv4Address(0x0A000000 + node_id))]
    if layer is None:
        raw["role"] = "EntryGateway"
        raw["entry"] = {"hostname": None, "ws_port": 9000, "wss_port": None}
    else:
        raw["role"] = {"Mixnode": {"layer": layer}}
    return raw


def _page(data: list[Any], rotation_id: int = 10) -> dict[str, Any]:
    body = _body("mixnodes/active")
    body["metadata"]["rotation_id"] = rotation_id
    body["nodes"]["data"] = data
    body["nodes"]["pagination"] = {"total": len(data), "page": 0, "size": len(data)}
    return body


def _odd(kind: str, node_id: int) -> Any:
    """A node mainnet could plausibly serve that the client cannot route."""
    raw = _good_node(node_id, layer=1)
    match kind:
        case "empty ip_addresses":
            raw["ip_addresses"] = []
        case "layer out of range":
            raw["role"] = {"Mixnode": {"layer": 4}}
        case "unknown role":
            raw["role"] = "Gateway"
        case "bad key":
            raw["x25519_sphinx_pubkey"] = "0OIl"
        case "missing mix_port":
            del raw["mix_port"]
        case "bad performance":
            raw["performance"] = 1.0
        case "not an object":
            return [raw]
        case _:
            assert kind == LOW_PERFORMANCE
            raw["performance"] = "0"
    return raw


ODD_KINDS = (
    "empty ip_addresses",
    "layer out of range",
    "unknown role",
    "bad key",
    "missing mix_port",
    "bad performance",
    "not an object",
    LOW_PERFORMANCE,
)


@pytest.mark.parametrize("kind", ODD_KINDS)
def test_one_odd_node_among_good_ones_is_skipped_and_counted(kind: str) -> None:
    good = [_good_node(100 + i, layer=1 + i % 3) for i in range(6)]
    page = parse_nodes_page(_page([*good[:3], _odd(kind, 99), *good[3:]]))
    assert page.received == 7
    topology = Topology.from_directory(RewardedSet(1, layer1=(99, 100, 103)), [page])
    assert sorted(topology.nodes) == [n["node_id"] for n in good]
    assert topology.skipped == Counter({kind: 1})
    assert [n.node_id for n in topology.layer(1)] == [100, 103]
    assert topology.summary() == f"6 nodes, 1 skipped ({kind}: 1)"


def test_a_mainnet_sized_list_with_a_dozen_odd_nodes() -> None:
    """May 2026: 258 active mixnodes and 477 gateways; 12 odd ones spread among them."""
    mixnodes = [_good_node(i, layer=1 + i % 3) for i in range(1, 259)]
    gateways = [_good_node(i) for i in range(1000, 1477)]
    kinds = [ODD_KINDS[i % len(ODD_KINDS)] for i in range(12)]
    for i, kind in enumerate(kinds):
        target = mixnodes if i % 2 else gateways
        target.insert(i * 20, _odd(kind, 5000 + i))
    pages = [parse_nodes_page(_page(mixnodes)), parse_nodes_page(_page(gateways))]
    rewarded = RewardedSet(
        1, layer1=tuple(range(1, 259, 3)), entry_gateways=tuple(range(1000, 1477))
    )
    topology = Topology.from_directory(rewarded, pages)
    assert len(topology.nodes) == 258 + 477
    assert topology.skipped == Counter(kinds)
    assert topology.summary().startswith("735 nodes, 12 skipped (")
    assert len(topology.layer(1)) == 86 and len(topology.gateways()) == 477


def test_unusual_but_routable_nodes_are_kept() -> None:
    v6_first = _good_node(7, layer=2)
    v6_first["ip_addresses"] = ["2001:db8::7", "10.0.0.7"]
    no_entry = _good_node(8)
    no_entry["entry"] = None  # an exit-only gateway: kept, just not one to connect to
    no_roles = _good_node(9, layer=3)
    del no_roles["supported_roles"]
    page = parse_nodes_page(_page([v6_first, no_entry, no_roles]))
    assert not page.skipped
    assert page.nodes[0].address.ip == ipaddress.IPv6Address("2001:db8::7")  # first, as Rust
    assert page.nodes[1].entry is None
    assert Topology.from_directory(RewardedSet(1), [page]).summary() == "3 nodes"


@pytest.mark.parametrize(
    "breakage",
    ["no metadata", "data not a list", "bad total", "rotation not a number", "not an object"],
)
def test_a_malformed_document_still_fails(breakage: str) -> None:
    body: Any = _page([_good_node(1, layer=1)])
    match breakage:
        case "no metadata":
            del body["metadata"]
        case "data not a list":
            body["nodes"]["data"] = {"0": _good_node(1, layer=1)}
        case "bad total":
            body["nodes"]["pagination"]["total"] = "1"
        case "rotation not a number":
            body["metadata"]["rotation_id"] = None
        case "not an object":
            body = [body]
    with pytest.raises(TopologyError):
        parse_nodes_page(body)


def test_next_rotation_is_predicted_from_key_rotation_info() -> None:
    info = parse_key_rotation_info(_body("key-rotation-info"))
    # epoch 100 of rotation 10 (epochs 100..109, 3600 s each): rotation 11 starts at epoch 110
    assert info.epoch_duration == 3600.0
    assert info.current_epoch_start is not None
    assert info.next_rotation_at() == info.current_epoch_start + 10 * 3600
    later = KeyRotationInfo(10, 0, 107, 10, current_epoch_start=1000.0, epoch_duration=60.0)
    assert later.next_rotation_at() == 1000.0 + 3 * 60
    assert KeyRotationInfo(10, 0, 107, 10).next_rotation_at() is None
    assert KeyRotationInfo(0, 0, 107, 10, 1000.0, 60.0).next_rotation_at() is None
    body = _body("key-rotation-info")
    del body["current_epoch_start"], body["epoch_duration"]
    assert parse_key_rotation_info(body).next_rotation_at() is None  # optional fields
    body["epoch_duration"] = {"secs": "3600"}
    with pytest.raises(TopologyError):
        parse_key_rotation_info(body)


def test_refresh_follows_the_predicted_rotation() -> None:
    topology = Topology(RewardedSet(1), {}, next_rotation_at=10_000.0)
    due = 10_000.0 + ROTATION_REFRESH_MARGIN
    assert topology.refresh_delay(300.0, now=due - 42.0) == pytest.approx(42.0)
    assert topology.refresh_delay(300.0, now=due - 1000.0) == 300.0  # the interval comes first
    assert topology.refresh_delay(300.0, now=due + 5.0) == 300.0  # passed (or a stuck epoch)
    assert Topology(RewardedSet(1), {}).refresh_delay(300.0, now=0.0) == 300.0


# --- property: mainnet-shaped lists with odd nodes mixed in ------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def _odd_node(draw: st.DrawFn, node_id: int) -> Any:
    """A named oddity, or a good node with one field replaced by arbitrary JSON."""
    if draw(st.booleans()):
        return _odd(draw(st.sampled_from(ODD_KINDS)), node_id)
    raw = _good_node(node_id, layer=1)
    key = draw(st.sampled_from(sorted(raw)))
    # a node id that still parses could collide with another node's: make it a bad one
    values = _JSON.filter(lambda v: not isinstance(v, int)) if key == "node_id" else _JSON
    raw[key] = draw(values)
    return raw


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_good_nodes_always_survive_odd_ones_are_counted(data: st.DataObject) -> None:
    good_count = data.draw(st.integers(0, 40))
    odd_count = data.draw(st.integers(0, 15))
    good = [
        _good_node(1000 + i, layer=None if i % 4 == 3 else 1 + i % 3) for i in range(good_count)
    ]
    odd = [data.draw(_odd_node(5000 + i)) for i in range(odd_count)]
    mixed = data.draw(st.permutations(good + odd))
    page = parse_nodes_page(_page(mixed))
    assert page.received == good_count + odd_count
    topology = Topology.from_directory(RewardedSet(1), [page])
    assert {n["node_id"] for n in good} <= set(topology.nodes)
    # every odd node is either kept (a mutation that happened to be harmless) or counted
    kept_odd = len(topology.nodes) - good_count
    assert kept_odd + topology.skipped.total() == odd_count
