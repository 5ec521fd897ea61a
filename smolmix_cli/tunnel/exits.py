"""Which exit IPRs the tunnel tries, and in what order: pinned, remembered, or from the directory.

Discovery follows the native client (spec §2.11) and upstream's newer rules
(nymtech/nym wasm/smolmix/src/ipr.rs discover_ipr; openspec add-ipr-connect-retry):
every page of `described` gives each node's IPR address, build and declared
roles, every page of `skimmed` its performance. A node is an exit if it declares
the `exit_ipr` role (an exit gateway may run only the network requester: a
connect to it just times out), publishes a parseable IPR address, runs build
1.30.0 or later and performs at 50 % or better. Its gateway must also be an
entry-capable gateway of our topology, or the route to it cannot be built.

The exits are then ordered once, at random weighted by performance (the best is
most likely first, none is tried twice); the last exit that carried traffic is
remembered in the data dir and goes first while the directory still lists it.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smolmix_cli.ipr.client_logic import parse_build_version
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.directory.api_urls import DirectoryUnavailable, FailureKind
from smolmix_cli.mixnet.directory.nym_api import PATH_ALL_SKIMMED, PATH_DESCRIBED, NymApiClient
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.topology.topology import Topology

MIN_BUILD = (1, 30, 0)  # v9::MIN_RELEASE_VERSION
MIN_PERFORMANCE = 50  # percent; below it the official client does not pick a node
EXIT_FILE = "exit.json"
MAX_DESCRIBED_PAGES = 100


@dataclass(frozen=True, slots=True)
class ExitCandidate:
    ipr: Recipient
    build_version: str | None = None
    performance: int = 100  # whole percent, the draw's weight
    node_identity: str | None = None  # base58 ed25519 of the node that described it

    @property
    def key(self) -> str:
        return str(self.ipr)

    @property
    def short(self) -> str:
        """`client..@gateway`, 8 characters of each: enough to tell exits apart in -v lines
        (the status and errors keep the whole address, which --ipr takes)."""
        client, _, gateway = self.key.partition("@")
        return f"{client[:8]}..@{gateway[:8]}"


# Why a described node is not an exit (the counts go into the -v report).
SKIP_MALFORMED = "malformed entry"
SKIP_NO_ROLE = "no exit_ipr role"
SKIP_NO_IPR = "no IPR address"
SKIP_OLD_BUILD = "build before 1.30.0"
SKIP_UNLISTED = "not in skimmed"
SKIP_LOW_PERFORMANCE = f"performance below {MIN_PERFORMANCE} %"
SKIP_UNROUTABLE = "gateway not in the topology"


@dataclass(slots=True)
class ExitDiscovery:
    """The usable exits plus how many described nodes each filter removed."""

    candidates: list[ExitCandidate]
    described: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        dropped = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common())
        text = f"{len(self.candidates)} usable exits of {self.described} described nodes"
        return f"{text} (skipped: {dropped})" if dropped else text


def candidates_from(
    described: Iterable[Any],
    performance: dict[str, int],
    min_build: tuple[int, int, int] = MIN_BUILD,
    *,
    skipped: Counter[str] | None = None,
) -> list[ExitCandidate]:
    """The exits among `described` entries; malformed entries are skipped, never fatal."""
    skip: Counter[str] = skipped if skipped is not None else Counter()
    found: dict[str, ExitCandidate] = {}
    for item in described:
        try:
            description = item["description"]
            identity = description["host_information"]["keys"]["ed25519"]
            build = description["build_information"]["build_version"]
            role = description.get("declared_role")
            router = description.get("ip_packet_router")
            address = router.get("address") if isinstance(router, dict) else None
        except (KeyError, TypeError, AttributeError):
            skip[SKIP_MALFORMED] += 1
            continue
        if not isinstance(role, dict) or role.get("exit_ipr") is not True:
            skip[SKIP_NO_ROLE] += 1
            continue
        if not isinstance(address, str) or not isinstance(build, str):
            skip[SKIP_NO_IPR] += 1
            continue
        parsed = parse_build_version(build)
        if parsed is None or parsed < min_build:
            skip[SKIP_OLD_BUILD] += 1
            continue
        try:
            ipr = Recipient.parse(address)
        except MixnetError:
            skip[SKIP_NO_IPR] += 1
            continue
        if not isinstance(identity, str) or identity not in performance:
            skip[SKIP_UNLISTED] += 1
            continue
        if performance[identity] < MIN_PERFORMANCE:
            skip[SKIP_LOW_PERFORMANCE] += 1
            continue
        candidate = ExitCandidate(ipr, build, performance[identity], identity)
        found.setdefault(candidate.key, candidate)
    return list(found.values())


def routable(
    candidates: Sequence[ExitCandidate], topology: Topology, skipped: Counter[str] | None = None
) -> list[ExitCandidate]:
    """Those whose gateway is an entry-capable gateway of `topology`: a route to any other
    ends at a node we do not know (NoUsableRoute), e.g. an exit-providers-only gateway that
    the directory leaves out of its entry gateways."""
    gateways = {node.identity for node in topology.gateways() if node.entry is not None}
    kept = [c for c in candidates if c.ipr.gateway in gateways]
    if skipped is not None and len(kept) < len(candidates):
        skipped[SKIP_UNROUTABLE] += len(candidates) - len(kept)
    return kept


async def read_described(api: NymApiClient) -> list[Any]:
    """Every `described` entry, page after page (nym-api answers them all as page 0 today);
    DirectoryUnavailable when a page is not nym-api's shape."""
    described: list[Any] = []
    for page in range(MAX_DESCRIBED_PAGES):
        body = await api.get_json(PATH_DESCRIBED, {"page": page})
        try:
            data = body["data"]
            total = int(body["pagination"]["total"])
        except (KeyError, TypeError, ValueError):
            raise DirectoryUnavailable(
                FailureKind.MALFORMED, PATH_DESCRIBED, "described page without data/pagination"
            ) from None
        if not isinstance(data, list):
            raise DirectoryUnavailable(FailureKind.MALFORMED, PATH_DESCRIBED, "data is not a list")
        described += data
        if len(described) >= total or not data:
            break
    return described


async def discover_exits(api: NymApiClient, topology: Topology) -> ExitDiscovery:
    """Every usable exit the directory lists (may be none); DirectoryUnavailable when it
    cannot be read."""
    described = await read_described(api)
    nodes = await api.get_nodes(PATH_ALL_SKIMMED)
    performance = {b58encode(n.identity): n.performance_percent for n in nodes}
    found = ExitDiscovery([], len(described))
    listed = candidates_from(described, performance, skipped=found.skipped)
    found.candidates = routable(listed, topology, found.skipped)
    return found


def exit_order(
    candidates: Sequence[ExitCandidate], rng: random.Random, *, prefer: str | None = None
) -> list[ExitCandidate]:
    """All candidates in the order to try them: the preferred one (if listed) first, then a
    performance-weighted random permutation (successive weighted draws without replacement),
    so a dead exit is never drawn twice (upstream: one weighted ordering, walked in turn)."""
    first = [c for c in candidates if c.key == prefer][:1]
    rest = [c for c in candidates if c.key != prefer and c.performance > 0]
    order = list(first)
    while rest:
        pick = rng.choices(range(len(rest)), weights=[c.performance for c in rest])[0]
        order.append(rest.pop(pick))
    return order


class ExitMemory:
    """The last exit that carried traffic, in `<data dir>/exit.json` (0600); None = memory only."""

    def __init__(self, data_dir: Path | None) -> None:
        self.path = None if data_dir is None else data_dir / EXIT_FILE
        self._value: str | None = None

    def load(self) -> str | None:
        if self.path is None:
            return self._value
        try:
            data = json.loads(self.path.read_text())
            value = data.get("ipr") if isinstance(data, dict) else None
            if isinstance(value, str):
                Recipient.parse(value)
                return value
        except (OSError, ValueError, MixnetError):
            pass
        return None

    def save(self, candidate: ExitCandidate) -> None:
        self._value = candidate.key
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        record = {"ipr": candidate.key, "build_version": candidate.build_version}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        os.replace(tmp, self.path)
