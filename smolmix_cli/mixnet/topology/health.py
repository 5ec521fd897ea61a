"""Which listed nodes eat packets: a client-side, bounded failover for dead-but-listed mix nodes.

The directory's performance scores lag by an epoch (about an hour on mainnet), so a mix node
that died keeps being listed, and with two nodes in a layer half of all routes through it are
lost: uplink fragments are resent, but every resend again has that chance, and the reply
SURBs built over it are spent by the exit into nothing. Transfers then crawl (a 150 KB fetch
did not finish in 120 s with one of two layer-1 nodes stopped).

Every ack that comes (or does not, by its deadline) is one observation: the nodes the packet
and its ack crossed, and whether the round trip completed. A noisy-OR model (a route fails
when any node on it drops) fitted by a few EM rounds over the recent observations gives each
node a drop estimate. Failures are explained by the nodes that fail everywhere, so a healthy
node that shared routes with a dead one is not blamed; gateways are in the model (they absorb
"everything fails", such as a dead exit) but never avoided. Routes built from then on avoid
the nodes whose estimate is high (never emptying a layer: `Topology.avoiding`), until their
observations age out and they get another chance.

Sans-io: the caller passes the clock. Upstream Nym clients choose uniformly per layer and
leave this to the directory; nothing of it is visible on the wire.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

MAX_OBSERVATIONS = 512
MAX_AGE_S = 120.0
"""An avoided node is tried again once its failures are this old."""
REFIT_INTERVAL_S = 1.0
DROP_THRESHOLD = 0.7
MIN_OBSERVATIONS = 16
"""A node needs this many observations before it may be avoided: at 10 % loss per hop a
healthy node fails 16 round trips in a row about once in 10,000 tries."""
MIN_SUCCESSES = 3
"""Below this many completed round trips in the window nothing is localisable (our own link,
our gateway or the destination's is down): avoid nothing."""
PRIOR_DROP = 0.05
EM_ROUNDS = 6


@dataclass(frozen=True, slots=True)
class Observation:
    at: float
    nodes: tuple[int, ...]
    ok: bool


@dataclass
class NodeHealth:
    """Drop estimates per node id from ack outcomes; the set of mix nodes to route around."""

    max_observations: int = MAX_OBSERVATIONS
    max_age: float = MAX_AGE_S
    refit_interval: float = REFIT_INTERVAL_S
    threshold: float = DROP_THRESHOLD
    min_observations: int = MIN_OBSERVATIONS
    _seen: deque[Observation] = field(default_factory=deque)
    _drop: dict[int, float] = field(default_factory=dict)
    _counts: dict[int, int] = field(default_factory=dict)
    _avoided: frozenset[int] = frozenset()
    _next_fit: float = -math.inf
    _failures_since_fit: int = 0

    def observe(self, nodes: tuple[int, ...], ok: bool, now: float) -> None:
        """One round trip over `nodes` (its packet's and its ack's), completed or not."""
        if not nodes:
            return  # a route we do not know (a reply through someone's SURB) says nothing
        self._seen.append(Observation(now, nodes, ok))
        if len(self._seen) > self.max_observations:
            self._seen.popleft()
        if not ok:
            self._failures_since_fit += 1

    def avoided(self, now: float) -> frozenset[int]:
        """Node ids to keep out of new routes (refitted at most once per `refit_interval`)."""
        if now < self._next_fit:
            return self._avoided
        self._next_fit = now + self.refit_interval
        while self._seen and self._seen[0].at < now - self.max_age:
            self._seen.popleft()
        successes = sum(o.ok for o in self._seen)
        if successes < MIN_SUCCESSES or successes == len(self._seen):
            self._drop.clear()
            self._counts.clear()
            self._avoided = frozenset()
        elif self._failures_since_fit or self._avoided:
            self._fit()
            self._avoided = self._suspects()
        self._failures_since_fit = 0
        return self._avoided

    def drop_estimate(self, node_id: int) -> float | None:
        return self._drop.get(node_id)

    def _fit(self) -> None:
        """EM for noisy-OR: a failed round trip is blamed on each node by its share of the
        failure's probability; a node's estimate is its blame over its observations."""
        counts: dict[int, int] = {}
        for o in self._seen:
            for n in o.nodes:
                counts[n] = counts.get(n, 0) + 1
        drop = {n: self._drop.get(n, PRIOR_DROP) for n in counts}
        failed = [o.nodes for o in self._seen if not o.ok]
        for _ in range(EM_ROUNDS):
            blame = dict.fromkeys(counts, 0.0)
            for nodes in failed:
                survive = 1.0
                for n in nodes:
                    survive *= 1.0 - drop[n]
                p_fail = max(1.0 - survive, 1e-9)
                for n in nodes:
                    blame[n] += min(1.0, drop[n] / p_fail)
            drop = {n: min(0.999, max(1e-4, blame[n] / counts[n])) for n in counts}
        self._drop = drop
        self._counts = counts

    def _suspects(self) -> frozenset[int]:
        return frozenset(
            n
            for n, d in self._drop.items()
            if d >= self.threshold and self._counts.get(n, 0) >= self.min_observations
        )
