"""The directory's answers: shapes of the official client's accepted bodies, parsers, CORS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smolmix_cli.mixnet.topology.topology import (
    Topology,
    parse_key_rotation_info,
    parse_nodes_page,
    parse_rewarded_set,
)
from smolmix_cli.testnet.directory import DirectoryState
from tests.testnet.directory_data import probe_like_state
from tests.vectors import load_vector


def _shape(value: Any) -> Any:
    """Field names and JSON types, recursively; lists by the shape of their first item."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _merge_list_shapes(a: Any, b: Any) -> bool:
    """True when shape `a` fits shape `b` (nulls in the vector match anything optional)."""
    if b == "NoneType" or a == "NoneType":
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_merge_list_shapes(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return not a or not b or _merge_list_shapes(a[0], b[0])
    return bool(a == b)


def _get(state: DirectoryState, target: str) -> tuple[int, Any]:
    answer = state.answer("GET", target)
    return answer.status, json.loads(answer.body) if answer.body else None


def _recorded() -> list[dict[str, Any]]:
    return list(load_vector("official-client", "directory-answers.json")["requests_in_order"])


@pytest.mark.parametrize("index", range(len(_recorded())), ids=lambda i: _recorded()[i]["path"])
def test_every_recorded_request_gets_an_answer_of_the_accepted_shape(index: int) -> None:
    recorded = _recorded()[index]
    state = probe_like_state()
    status, body = _get(state, recorded["path"])
    assert status == 200
    if recorded["body"] is None:
        # described was 404 in the capture; ours follows the v10 variant's accepted body
        accepted = load_vector("official-client", "ipr-exchange.json")["variants"]["v10"][
            "described_json_served"
        ]
    else:
        accepted = recorded["body"]
    assert _merge_list_shapes(_shape(body), _shape(accepted)), (body, accepted)


def test_answers_parse_into_a_usable_topology() -> None:
    state = probe_like_state(per_layer=2)
    _, rewarded = _get(state, "/api/v1/nym-nodes/rewarded-set")
    _, rotation = _get(state, "/api/v1/epoch/key-rotation-info")
    _, mix = _get(state, "/api/v2/unstable/nym-nodes/skimmed/mixnodes/active?page=0")
    _, gws = _get(state, "/api/v2/unstable/nym-nodes/skimmed/entry-gateways?page=0&output=bincode")
    info = parse_key_rotation_info(rotation)
    pages = [parse_nodes_page(mix), parse_nodes_page(gws)]
    assert {p.rotation_id for p in pages} == {info.current_key_rotation_id} == {10}
    topology = Topology.from_directory(parse_rewarded_set(rewarded), pages)
    assert topology.is_usable
    assert [len(topology.layer(n)) for n in (1, 2, 3)] == [2, 2, 2]
    assert {g.node_id for g in topology.gateways()} == {1, 2}
    # every node keeps the keys and port it was registered with
    for node in state.nodes:
        parsed = topology.nodes[node.node_id]
        assert (parsed.identity, parsed.sphinx_key, parsed.mix_port) == (
            node.identity,
            node.sphinx_key,
            node.mix_port,
        )


def test_exit_gateways_and_all_nodes_lists() -> None:
    state = probe_like_state()
    _, exits = _get(state, "/api/v2/unstable/nym-nodes/skimmed/exit-gateways")
    assert [n["node_id"] for n in exits["nodes"]["data"]] == [2]
    _, every = _get(state, "/api/v2/unstable/nym-nodes/skimmed?page=0")
    assert every["nodes"]["pagination"]["total"] == len(state.nodes)
    assert parse_nodes_page(every).nodes[0].node_id == 1


def test_performance_is_a_decimal_string_and_status_null() -> None:
    _, body = _get(probe_like_state(), "/api/v2/unstable/nym-nodes/skimmed/mixnodes/active")
    assert body["metadata"]["status"] is None
    assert all(isinstance(n["performance"], str) for n in body["nodes"]["data"])


@pytest.mark.parametrize("per_page", [1, 2, 4, 100])
def test_pagination_splits_and_reports_total(per_page: int) -> None:
    state = probe_like_state(per_layer=3)  # 9 mix nodes
    seen: list[int] = []
    page = 0
    while True:
        status, body = _get(
            state,
            f"/api/v2/unstable/nym-nodes/skimmed/mixnodes/active?page={page}&per_page={per_page}",
        )
        assert status == 200
        parsed = parse_nodes_page(body)
        assert (parsed.total, parsed.page, parsed.size) == (9, page, per_page)
        assert len(parsed.nodes) <= per_page
        seen += [n.node_id for n in parsed.nodes]
        if len(seen) >= parsed.total:
            break
        page += 1
    assert seen == list(range(11, 20))
    _, beyond = _get(state, f"/api/v2/unstable/nym-nodes/skimmed/mixnodes/active?page={page + 5}")
    assert beyond["nodes"]["data"] == []


def test_cors_preflight_and_headers() -> None:
    state = probe_like_state()
    pre = state.answer(
        "OPTIONS", "/api/v2/unstable/nym-nodes/skimmed/entry-gateways?page=0&output=bincode"
    )
    headers = dict(pre.headers)
    assert pre.status == 204 and pre.body == b""
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "*"  # content-type must be allowed
    for target in ("/api/v1/nym-nodes/rewarded-set", "/api/nothing/here"):
        assert dict(state.answer("GET", target).headers)["Access-Control-Allow-Origin"] == "*"


def test_unknown_paths_bad_queries_and_methods() -> None:
    state = probe_like_state()
    status, body = _get(state, "/api/v3/unstable/nym-nodes/semi-skimmed")
    assert status == 404 and isinstance(body, dict)
    status, body = _get(state, "/api/v2/unstable/nym-nodes/skimmed?page=-1")
    assert status == 400 and "page" in body["message"]
    assert _get(state, "/api/v2/unstable/nym-nodes/skimmed?per_page=x")[0] == 400
    assert state.answer("POST", "/api/v1/nym-nodes/rewarded-set").status == 405
    head = state.answer("HEAD", "/api/v1/nym-nodes/rewarded-set")
    assert head.status == 200 and head.body == b""


def test_key_rotation_info_agrees_with_node_metadata() -> None:
    state = DirectoryState(probe_like_state().nodes, absolute_epoch_id=57, rotation_id=5)
    _, info = _get(state, "/api/v1/epoch/key-rotation-info")
    _, page = _get(state, "/api/v2/unstable/nym-nodes/skimmed/entry-gateways")
    parsed = parse_key_rotation_info(info)
    assert parsed.current_key_rotation_id == page["metadata"]["rotation_id"] == 5
    assert parsed.current_absolute_epoch_id == page["metadata"]["absolute_epoch_id"] == 57
    progress = info["progress"]
    assert (
        progress["current_rotation_starting_epoch"]
        <= 57
        <= progress["current_rotation_ending_epoch"]
    )


def test_status_endpoint_serves_the_provider() -> None:
    state = DirectoryState(probe_like_state().nodes, status_provider=lambda: {"nodes": [1, 2]})
    assert _get(state, "/smolmix/status") == (200, {"nodes": [1, 2]})


def test_duplicate_node_ids_are_refused() -> None:
    nodes = probe_like_state().nodes
    with pytest.raises(ValueError):
        DirectoryState([*nodes, nodes[0]])


def test_node_specs_become_directory_nodes() -> None:
    from decimal import Decimal

    from smolmix_cli.mixnet.topology.topology import NodeRole
    from smolmix_cli.testnet.directory import DirectoryNode
    from smolmix_cli.testnet.nodes.node_spec import NodeSpec

    specs = [
        NodeSpec.generate(1, NodeRole.ENTRY_GATEWAY, mix_port=4001, ws_port=4002),
        NodeSpec.generate(2, NodeRole.EXIT_GATEWAY, mix_port=4003, ws_port=4004),
        *(
            NodeSpec.generate(10 + n, NodeRole.MIXNODE, layer=n, mix_port=4010 + n)
            for n in (1, 2, 3)
        ),
        NodeSpec.generate(20, NodeRole.MIXNODE, layer=1, mix_port=4020, performance=Decimal("0.3")),
    ]
    state = DirectoryState([DirectoryNode.from_spec(s) for s in specs], rotation_id=1)
    _, rewarded = _get(state, "/api/v1/nym-nodes/rewarded-set")
    _, mix = _get(state, "/api/v2/unstable/nym-nodes/skimmed/mixnodes/active")
    _, gws = _get(state, "/api/v2/unstable/nym-nodes/skimmed/entry-gateways")
    topology = Topology.from_directory(
        parse_rewarded_set(rewarded), [parse_nodes_page(mix), parse_nodes_page(gws)]
    )
    assert topology.key_rotation == specs[0].key_rotation
    for spec in specs[:5]:
        assert topology.nodes[spec.node_id] == spec.to_topology_node()
    assert 20 not in topology.nodes  # below the 50 % performance floor
    assert {n["performance"] for n in mix["nodes"]["data"]} == {"1.0", "0.3"}


def test_an_exit_ipr_address_appears_in_described() -> None:
    state = probe_like_state()
    _, before = _get(state, "/api/v2/nym-nodes/described?page=0")
    assert all(d["description"]["ip_packet_router"] is None for d in before["data"])
    address = "yg2uf8d47x41HxttwDcqC1GGTc1Zobu5ahofGHfpkPu.93oLFBTTJhB85LHc7RR1n6nXFKMLpyiimhnsSx17Esb2@AVizt8jS9L3qNi9WmCeWWRHpZKEYpF8tLnhyfFoaEnqu"
    state.update_node(2, ipr_address=address)
    _, after = _get(state, "/api/v2/nym-nodes/described?page=0")
    by_id = {d["node_id"]: d["description"] for d in after["data"]}
    assert by_id[2]["ip_packet_router"] == {"address": address}
    assert by_id[2]["build_information"]["build_version"] == "1.31.0"  # >= 1.30.0: IPR v9
    assert by_id[1]["ip_packet_router"] is None
    with pytest.raises(KeyError):
        state.update_node(99, performance="0.1")


def test_described_mixnet_websockets_is_never_null() -> None:
    """The official client (mix-tunnel 0.2.1) rejects the whole described page when any node
    has `mixnet_websockets: null` ("invalid type: null, expected struct WebSocketsV1"), so the
    IPR version lookup failed and discovery had nothing to pick from."""
    _, described = _get(probe_like_state(), "/api/v2/nym-nodes/described?page=0")
    assert any(not d["description"]["declared_role"]["entry"] for d in described["data"])
    for item in described["data"]:
        ws = item["description"]["mixnet_websockets"]
        assert isinstance(ws, dict)
        assert isinstance(ws["ws_port"], int) and 0 < ws["ws_port"] < 65536
        assert ws["wss_port"] is None or isinstance(ws["wss_port"], int)
