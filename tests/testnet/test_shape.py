"""The mainnet-shaped local network: its directory as the client reads it, and gzip."""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.directory.nym_api import NymApiClient
from smolmix_cli.mixnet.topology.topology import LOW_PERFORMANCE
from smolmix_cli.testnet.directory import accepts_gzip
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions, exit_ids
from smolmix_cli.testnet.shape import (
    DEAD_EXITS,
    DEAD_GATEWAYS,
    FIRST_DECOY_ID,
    FIRST_MIX_ID,
    LAB,
    MAINNET,
    Fault,
    parse_fault_counts,
    plan,
)
from smolmix_cli.tunnel.exits import (
    SKIP_LOW_PERFORMANCE,
    SKIP_NO_IPR,
    SKIP_NO_ROLE,
    SKIP_OLD_BUILD,
    SKIP_UNROUTABLE,
    discover_exits,
)

SKIMMED = "/api/v2/unstable/nym-nodes/skimmed"
DESCRIBED = "/api/v2/nym-nodes/described"


def test_plan_keeps_gateways_and_mix_nodes_apart() -> None:
    lab = plan(LAB, exits=1, mix_nodes=3)
    assert [(p.node_id, p.role.value) for p in lab][:2] == [(1, "EntryGateway"), (2, "ExitGateway")]
    assert [p.node_id for p in lab[2:]] == [201, 202, 203]
    nodes = plan(MAINNET, exits=3, mix_nodes=6)
    faults = Counter(p.fault for p in nodes if p.fault is not None)
    assert faults == Counter({k: v for k, v in MAINNET.faults.items() if v and k not in DEAD})
    assert max(p.node_id for p in nodes if p.layer is None) < FIRST_MIX_ID
    assert plan(LAB, exits=150, mix_nodes=3)[-4].node_id == 151
    with pytest.raises(ValueError, match="199"):
        plan(MAINNET.with_faults({Fault.SILENT: 190}), exits=3, mix_nodes=6)


DEAD = (Fault.DEAD_GATEWAY, Fault.DEAD_EXIT)


def test_fault_counts_parse_or_say_what_is_wrong() -> None:
    assert parse_fault_counts(["silent=2", "zk-nym=0"]) == {Fault.SILENT: 2, Fault.ZK_NYM: 0}
    for bad, words in (("nope=1", "unknown fault"), ("silent", "KIND=N"), ("slow=-1", "KIND=N")):
        with pytest.raises(ValueError, match=words):
            parse_fault_counts([bad])


def test_accept_encoding() -> None:
    assert accepts_gzip(["gzip"]) and accepts_gzip(["br, gzip;q=0.5"]) and accepts_gzip(["*"])
    assert not accepts_gzip([]) and not accepts_gzip(["identity"])
    assert not accepts_gzip(["gzip;q=0"])


def _body(answer: Any) -> Any:
    return json.loads(answer.body)


def test_the_mainnet_shape_reads_as_mainnet_does(tmp_path: Path) -> None:
    """Hundreds of nodes, most of them removed by the client's filters; among the rest
    about 60 % of the exits and 40 % of the gateways dead or refusing; nothing pinned."""
    local = LocalNetwork(LocalNetworkOptions.mainnet(tmp_path, mean_delay_ms=0.0, seed=3))
    shape = MAINNET

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            started = time.monotonic()
            network = await tg.start(local.serve)
            took = time.monotonic() - started
            assert took < 10, f"mainnet shape took {took:.1f} s to start"
            state = local.directory_state
            assert state is not None
            assert network.entry_gateway is None and network.exit_gateway is None
            assert network.exits == ()

            # the crowd has mainnet's field shapes
            skimmed = _body(state.answer("GET", SKIMMED))["nodes"]
            nodes = skimmed["data"]
            assert skimmed["pagination"]["total"] == len(nodes) >= 250  # one page: no paging
            roles = Counter(n["role"] if isinstance(n["role"], str) else "Mixnode" for n in nodes)
            assert roles["Standby"] > 30 and roles["Inactive"] > 30
            assert any(n["entry"] is None and n["supported_roles"]["entry"] for n in nodes)
            assert any(":" in n["ip_addresses"][0] for n in nodes)
            assert {"0", "1.0"} <= {n["performance"] for n in nodes}
            described = _body(state.answer("GET", DESCRIBED + "?per_page=10"))["data"]
            assert len(described) == len(nodes)
            decoys = [d for d in described if d["node_id"] >= FIRST_DECOY_ID]
            sizes = [len(json.dumps(d, separators=(",", ":"))) for d in decoys]
            assert 2000 <= sum(sizes) / len(sizes) <= 3200

            # gzip on request, the same document
            plain = state.answer("GET", DESCRIBED)
            packed = state.answer("GET", DESCRIBED, gzip_ok=True)
            assert ("Content-Encoding", "gzip") in packed.headers
            assert gzip.decompress(packed.body) == plain.body
            assert len(packed.body) < len(plain.body) // 2

            # the client's own parsers and filters (it asks for gzip)
            api = NymApiClient(network.api_urls, ssl_context=network.ssl_context(), timeout=5)
            topology = await api.topology()
            discovery = await discover_exits(api, topology)
            assert local.directory is not None
            for layer in (1, 2, 3):
                ids = [n.node_id for n in topology.layer(layer)]
                assert len(ids) == 2 and all(FIRST_MIX_ID <= i < FIRST_DECOY_ID for i in ids)
            assert topology.skipped[LOW_PERFORMANCE] > 0

            healthy = len(exit_ids(3))
            dead_exits = sum(shape.count(k) for k in DEAD_EXITS)
            reachable = healthy + shape.count(Fault.V9_ONLY) + shape.count(Fault.SLOW)
            assert len(discovery.candidates) == reachable + dead_exits
            assert 0.55 <= dead_exits / (reachable + dead_exits) <= 0.65
            skipped = discovery.skipped
            assert skipped[SKIP_NO_ROLE] >= shape.count(Fault.NR_ONLY) + 10
            assert skipped[SKIP_UNROUTABLE] >= shape.count(Fault.UNROUTABLE) + 10
            for why in (SKIP_OLD_BUILD, SKIP_LOW_PERFORMANCE, SKIP_NO_IPR):
                assert skipped[why] > 0, why
            faulty_ids = {
                b58encode(local.specs[i].identity.public_bytes): f for i, f in local.faults.items()
            }
            kinds = Counter(faulty_ids.get(c.node_identity or "") for c in discovery.candidates)
            assert kinds[Fault.NR_ONLY] == kinds[Fault.UNROUTABLE] == 0

            gateways = [g for g in topology.gateways() if g.entry is not None]
            refusing = sum(shape.count(k) for k in DEAD_GATEWAYS) + shape.count(Fault.DEAD_EXIT)
            assert 0.35 <= refusing / len(gateways) <= 0.45
            assert sum(g.node_id >= FIRST_DECOY_ID for g in gateways) == shape.count(
                Fault.DEAD_EXIT
            ) + shape.count(Fault.DEAD_GATEWAY)

            status = local.status()
            assert status["shape"]["name"] == "mainnet"
            assert {n["fault"] for n in status["nodes"]} >= {"silent", "zk-nym", None}
            local.stop()

    anyio.run(main)


def test_the_lab_shape_is_unchanged(tmp_path: Path) -> None:
    local = LocalNetwork(LocalNetworkOptions(tmp_path, mean_delay_ms=0.0, exits=2))

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            state = local.directory_state
            assert state is not None
            assert network.entry_gateway is not None and network.entry_gateway.node_id == 1
            assert [e.node_id for e in network.exits] == [2, 3]
            assert sorted(n.node_id for n in state.nodes) == [1, 2, 3, 201, 202, 203]
            page = _body(state.answer("GET", DESCRIBED + "?per_page=2"))
            assert page["pagination"] == {"total": 6, "page": 0, "size": 2}
            assert local.status()["shape"]["name"] == "lab"
            local.stop()

    anyio.run(main)
