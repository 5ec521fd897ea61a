"""The capture's test network (node keys, directory answers) for end-to-end packet checks."""

from __future__ import annotations

from typing import Any

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.packet.sphinx import FinalHop, SphinxNode
from smolmix_cli.mixnet.topology.topology import Topology, parse_nodes_page, parse_rewarded_set
from tests.vectors import h, load_vector

SPHINX = load_vector("official-client", "sphinx-packets.json")


def recorded_topology() -> Topology:
    answers = load_vector("official-client", "directory-answers.json")["requests_in_order"]
    rewarded = next(r["body"] for r in answers if "rewarded-set" in r["path"])
    pages = [parse_nodes_page(r["body"]) for r in answers if "/skimmed/" in r["path"]]
    return Topology.from_directory(parse_rewarded_set(rewarded), pages)


def node_keys() -> dict[str, bytes]:
    return {n["mix_address"]: h(n["x25519_sphinx_private"]) for n in SPHINX["nodes"].values()}


def route_through(first_hop: NodeAddress, packet: bytes) -> tuple[FinalHop, list[Any]]:
    """Process a packet hop by hop with the recorded node keys; the final hop and all results."""
    keys = node_keys()
    address = str(first_hop)
    results: list[Any] = []
    while True:
        result = SphinxNode(keys[address]).process(packet)
        results.append(result)
        if isinstance(result, FinalHop):
            return result, results
        address = str(NodeAddress.from_bytes(result.next_hop))
        packet = result.packet
