"""Which exit IPR the tunnel uses: pinned, remembered, or drawn from the directory.

Discovery follows the native client (spec §2.11): every page of `described`
gives each node's IPR address and build, every page of `skimmed` its
performance; a node is an exit if it publishes a parseable IPR address and a
build of at least 1.30.0. One is drawn at random weighted by performance (as a
whole percent); an exit that failed is excluded for the rest of the session.
The last exit that carried traffic is remembered in the data dir and preferred
while the directory still lists it.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smolmix_cli.ipr.client_logic import parse_build_version
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.directory.nym_api import (
    PATH_ALL_SKIMMED,
    PATH_DESCRIBED,
    DirectoryUnavailable,
    FailureKind,
    NymApiClient,
)
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.tunnel.errors import NoExitAvailable

MIN_BUILD = (1, 30, 0)  # v9::MIN_RELEASE_VERSION
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


def candidates_from(
    described: Iterable[Any],
    performance: dict[str, int],
    min_build: tuple[int, int, int] = MIN_BUILD,
) -> list[ExitCandidate]:
    """The exits among `described` entries; malformed entries are skipped, never fatal."""
    found: dict[str, ExitCandidate] = {}
    for item in described:
        try:
            description = item["description"]
            identity = description["host_information"]["keys"]["ed25519"]
            build = description["build_information"]["build_version"]
            router = description.get("ip_packet_router")
            address = router.get("address") if isinstance(router, dict) else None
        except (KeyError, TypeError, AttributeError):
            continue
        if not isinstance(address, str) or not isinstance(build, str):
            continue
        parsed = parse_build_version(build)
        if parsed is None or parsed < min_build:
            continue
        try:
            ipr = Recipient.parse(address)
        except MixnetError:
            continue
        if not isinstance(identity, str) or identity not in performance:
            continue
        candidate = ExitCandidate(ipr, build, performance[identity], identity)
        found.setdefault(candidate.key, candidate)
    return list(found.values())


async def discover_exits(api: NymApiClient) -> list[ExitCandidate]:
    """Every exit the directory lists (may be empty); DirectoryUnavailable when it cannot be read."""
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
    nodes = await api.get_nodes(PATH_ALL_SKIMMED)
    performance = {b58encode(n.identity): n.performance_percent for n in nodes}
    return candidates_from(described, performance)


def draw_exit(
    candidates: Sequence[ExitCandidate],
    rng: random.Random,
    *,
    exclude: Iterable[str] = (),
    prefer: str | None = None,
) -> ExitCandidate:
    """The preferred exit if still listed and not excluded, else a performance-weighted draw."""
    excluded = set(exclude)
    usable = [c for c in candidates if c.key not in excluded]
    for candidate in usable:
        if candidate.key == prefer:
            return candidate
    weighted = [c for c in usable if c.performance > 0]
    if not weighted:
        tried = f" ({len(excluded)} tried)" if excluded else ""
        raise NoExitAvailable(f"no exit gateway available{tried}")
    return rng.choices(weighted, weights=[c.performance for c in weighted])[0]


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
