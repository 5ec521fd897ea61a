"""Counting the directory: nodes by role and build, and what the client's filters keep.

Directory data is only counted here, never trusted: an entry of any shape adds to an
"unknown" bucket instead of failing the report (mainnet lists hundreds of nodes, some
of them odd). The exit filters are the tunnel's own (tunnel/exits.py), so the counts
are what `fetch` would see.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from smolmix_cli.doctor.report import DirectoryFinding
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.topology.topology import NodesPage, Topology
from smolmix_cli.tunnel.exits import ExitDiscovery, candidates_from, routable

UNKNOWN = "unknown"
ROLE_FLAGS = ("mixnode", "entry", "exit_nr", "exit_ipr")
NR_ONLY = "network requester only"  # exit_nr without exit_ipr: a connect there times out


def count_topology(finding: DirectoryFinding, topology: Topology) -> None:
    """The nodes the route choice may use (the client's topology)."""
    finding.topology_nodes = len(topology.nodes)
    finding.layers = (len(topology.layer(1)), len(topology.layer(2)), len(topology.layer(3)))
    finding.gateways = sum(1 for n in topology.gateways() if n.entry is not None)
    finding.topology_skipped = Counter(topology.skipped)


def count_skimmed(finding: DirectoryFinding, pages: Iterable[NodesPage]) -> dict[str, int]:
    """Nodes by rewarded-set role; returns identity -> performance for the exit filter."""
    performance: dict[str, int] = {}
    for page in pages:
        finding.unparsed.update(page.skipped)
        for node in page.nodes:
            finding.nodes += 1
            finding.by_role[node.role.value] += 1
            performance[b58encode(node.identity)] = node.performance_percent
    return performance


def count_described(finding: DirectoryFinding, described: Sequence[Any]) -> None:
    """Builds and declared roles of every described node; odd entries count as unknown."""
    finding.described = len(described)
    for item in described:
        finding.builds[_build_of(item)] += 1
        roles = _declared_roles(item)
        if roles is None:
            finding.declared[UNKNOWN] += 1
            continue
        for flag in ROLE_FLAGS:
            if roles.get(flag) is True:
                finding.declared[flag] += 1
        if roles.get("exit_nr") is True and roles.get("exit_ipr") is not True:
            finding.declared[NR_ONLY] += 1


def usable_exits(
    finding: DirectoryFinding,
    described: Sequence[Any],
    performance: dict[str, int],
    topology: Topology,
) -> ExitDiscovery:
    """The exits the tunnel would try, by its own filters; the reasons go into `finding`."""
    found = ExitDiscovery([], len(described))
    listed = candidates_from(described, performance, skipped=found.skipped)
    found.candidates = routable(listed, topology, found.skipped)
    finding.exits_usable = len(found.candidates)
    finding.exits_skipped = Counter(found.skipped)
    return found


def _build_of(item: Any) -> str:
    try:
        build = item["description"]["build_information"]["build_version"]
    except (KeyError, TypeError, IndexError):
        return UNKNOWN
    if not isinstance(build, str) or not build.strip():
        return UNKNOWN
    return build.strip()[:40]  # a hostile directory's megabyte string stays one cell


def _declared_roles(item: Any) -> dict[str, Any] | None:
    try:
        roles = item["description"]["declared_role"]
    except (KeyError, TypeError, IndexError):
        return None
    return roles if isinstance(roles, dict) else None
