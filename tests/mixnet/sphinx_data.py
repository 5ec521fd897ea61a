"""Shared loaders for the Sphinx tests: the official client's nodes and packets."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from smolmix_cli.mixnet.keys import x25519_public
from smolmix_cli.mixnet.packet.sphinx import Destination, RouteHop, SphinxNode
from tests.vectors import h, load_vector

ROUTE_ORDER = ("layer1", "layer2", "layer3", "gateway")


def sphinx_packets() -> Any:
    return load_vector("official-client", "sphinx-packets.json")


def recorded_nodes() -> dict[str, SphinxNode]:
    """The capture's four nodes by name, with their recorded private keys."""
    return {
        name: SphinxNode(h(node["x25519_sphinx_private"]))
        for name, node in sphinx_packets()["nodes"].items()
    }


def recorded_route() -> list[RouteHop]:
    nodes = sphinx_packets()["nodes"]
    return [
        RouteHop(h(nodes[n]["node_address_bytes_32"]), h(nodes[n]["x25519_sphinx_public"]))
        for n in ROUTE_ORDER
    ]


def seeded_bytes(seed: int) -> Callable[[int], bytes]:
    """Deterministic random_bytes for reproducible builds (not cryptographic)."""
    import random

    rng = random.Random(seed)
    return lambda n: rng.randbytes(n)


def make_nodes(count: int, seed: int = 1) -> tuple[list[SphinxNode], list[RouteHop]]:
    """`count` fresh nodes on 10.0.0.x:1789.. with deterministic keys."""
    rnd = seeded_bytes(seed)
    nodes, route = [], []
    for i in range(count):
        sk = rnd(32)
        nodes.append(SphinxNode(sk))
        address = bytes([4]) + (1789 + i).to_bytes(2, "big") + bytes([10, 0, 0, i + 1])
        route.append(RouteHop(address.ljust(32, b"\0"), x25519_public(sk)))
    return nodes, route


def random_destination() -> Destination:
    return Destination(os.urandom(32), os.urandom(16))
