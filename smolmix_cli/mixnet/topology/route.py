"""Route and delay choice for one packet (spec 1.6, 4.4).

Every packet crosses one random node of each mix layer and then the
recipient's gateway. Per-hop delays are exponential with a configurable mean
(zero means none), in nanoseconds. The RNG is injectable: production passes a
`random.SystemRandom`, tests a seeded `random.Random`.
"""

from __future__ import annotations

import random

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.packet.sphinx import RouteHop
from smolmix_cli.mixnet.topology.topology import Node, NoUsableRoute, Topology

MIX_LAYERS = (1, 2, 3)
DEFAULT_AVERAGE_PACKET_DELAY_NS = 15_000_000
DEFAULT_AVERAGE_ACK_DELAY_NS = 15_000_000


class InvalidDelay(MixnetError):
    """A configured mean delay that cannot be used (negative)."""


def random_route(topology: Topology, egress_identity: bytes, rng: random.Random) -> list[Node]:
    """[L1, L2, L3, egress]: one node chosen uniformly per layer, then the egress gateway."""
    egress = topology.node_by_identity(egress_identity)
    route = []
    for layer in MIX_LAYERS:
        candidates = topology.layer(layer)
        if not candidates:
            raise NoUsableRoute(f"mix layer {layer} has no known nodes")
        route.append(rng.choice(candidates))
    route.append(egress)
    return route


def route_hops(route: list[Node]) -> list[RouteHop]:
    return [node.route_hop for node in route]


def exponential_delays(mean_ns: int, count: int, rng: random.Random) -> list[int]:
    """`count` delays drawn from Exp(mean), rounded to whole nanoseconds; all 0 if mean is 0."""
    if mean_ns < 0:
        raise InvalidDelay(f"mean delay must not be negative, got {mean_ns} ns")
    if mean_ns == 0:
        return [0] * count
    return [round(rng.expovariate(1.0 / mean_ns)) for _ in range(count)]
