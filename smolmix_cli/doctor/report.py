"""The doctor's findings, the exit code they give, and their JSON form (keys are stable).

Every phase leaves a finding even when it fails, so a report says how far the run got;
`exit_code` turns the first failing phase into the documented code (docs/exit-codes.md).
Nothing here holds a secret: no key of ours, not even our own address.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from smolmix_cli.exit_codes import ExitCode

FORMAT = 1
"""`doctor --json`'s "format": raised when a key changes meaning or goes away."""


@dataclass(slots=True)
class DirectoryFinding:
    """What the directory listed, and what the client's filters keep of it."""

    urls: list[str]
    ok: bool = False
    error: str | None = None
    code: ExitCode | None = None  # the failure's exit code (5 unreachable, 110 unusable)
    seconds: float = 0.0
    nodes: int = 0  # nodes the `skimmed` list gave (parsed)
    unparsed: Counter[str] = field(default_factory=Counter)  # listed but unparseable, by reason
    by_role: Counter[str] = field(default_factory=Counter)  # rewarded-set role of each node
    described: int = 0  # entries of the `described` list
    builds: Counter[str] = field(default_factory=Counter)  # build_version -> nodes
    declared: Counter[str] = field(default_factory=Counter)  # declared role -> nodes
    topology_nodes: int = 0  # nodes the route choice may use (performance >= 50)
    layers: tuple[int, int, int] = (0, 0, 0)
    gateways: int = 0  # entry-capable gateways of the topology
    topology_skipped: Counter[str] = field(default_factory=Counter)
    exits_usable: int = 0  # exits left after the tunnel's filters (tunnel/exits.py)
    exits_skipped: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            "urls": list(self.urls),
            "seconds": round(self.seconds, 3),
            "nodes": self.nodes,
            "unparsed": dict(self.unparsed.most_common()),
            "by_role": dict(self.by_role.most_common()),
            "described": self.described,
            "builds": dict(self.builds.most_common()),
            "declared_roles": dict(self.declared.most_common()),
            "topology": {
                "nodes": self.topology_nodes,
                "layers": list(self.layers),
                "gateways": self.gateways,
                "skipped": dict(self.topology_skipped.most_common()),
            },
            "exits": {
                "described": self.described,
                "usable": self.exits_usable,
                "skipped": dict(self.exits_skipped.most_common()),
            },
        }


@dataclass(frozen=True, slots=True)
class GatewayAttempt:
    gateway: str  # "IDENTITY at URL"
    result: str  # "connected" or why it was skipped


@dataclass(slots=True)
class GatewayFinding:
    """The entry gateway the client connected to, and the ones it left on the way."""

    ok: bool = False
    attempted: bool = False
    identity: str | None = None
    url: str | None = None
    protocol_version: int | None = None
    seconds: float = 0.0
    tried: list[GatewayAttempt] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "attempted": self.attempted,
            "identity": self.identity,
            "url": self.url,
            "protocol_version": self.protocol_version,
            "seconds": round(self.seconds, 3),
            "tried": [{"gateway": t.gateway, "result": t.result} for t in self.tried],
            "error": self.error,
        }


# What became of one exit's probe (ExitProbe.answer).
ANSWER_HEALTH = "health"  # a HealthResponse: the exit's IPR runs and speaks v9
ANSWER_INFO = "info"  # an InfoResponse instead (e.g. a version mismatch): it runs
ANSWER_NONE = "none"  # no reply within the probe timeout
ANSWER_NO_ROUTE = "no route"  # its gateway is not in our topology: nothing was sent
ANSWER_ERROR = "error"  # the send failed here (the message says why)
ANSWER_NOT_PROBED = "not probed"  # the overall budget ran out first
ANSWERED = frozenset({ANSWER_HEALTH, ANSWER_INFO})


@dataclass(slots=True)
class ExitProbe:
    """One exit candidate and its IPR's answer to a Health request."""

    ipr: str
    gateway: str
    build: str | None
    performance: int
    answer: str = ANSWER_NOT_PROBED
    detail: str = ""  # the answering build, the Info text, the error
    rtt_ms: float | None = None
    routable: bool | None = None  # the exit's own "routable" flag (None: not said)

    @property
    def answered(self) -> bool:
        return self.answer in ANSWERED

    def to_json(self) -> dict[str, Any]:
        return {
            "ipr": self.ipr,
            "gateway": self.gateway,
            "build": self.build,
            "performance": self.performance,
            "answer": self.answer,
            "answered": self.answered,
            "detail": self.detail,
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 1),
            "routable": self.routable,
        }


@dataclass(slots=True)
class ExitsFinding:
    candidates: int = 0  # exits the probes were drawn from
    timeout: float = 0.0  # seconds per probe
    width: int = 0  # probes at a time
    seconds: float = 0.0
    pinned: bool = False  # --ipr: the one exit given, not the directory's
    probes: list[ExitProbe] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(p.answered for p in self.probes)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "probed": sum(p.answer != ANSWER_NOT_PROBED for p in self.probes),
            "answered": self.answered,
            "timeout_s": self.timeout,
            "width": self.width,
            "seconds": round(self.seconds, 3),
            "pinned": self.pinned,
            "results": [p.to_json() for p in self.probes],
        }


@dataclass(slots=True)
class DoctorReport:
    network: str
    version: str
    directory: DirectoryFinding
    gateway: GatewayFinding = field(default_factory=GatewayFinding)
    exits: ExitsFinding = field(default_factory=ExitsFinding)

    @property
    def verdict(self) -> tuple[ExitCode, str]:
        """The exit code and its one line: the first phase that failed decides."""
        d, g, e = self.directory, self.gateway, self.exits
        if not d.ok:
            return d.code or ExitCode.NETWORK_UNREACHABLE, f"directory: {d.error}"
        if not g.ok:
            return ExitCode.GATEWAY_REFUSED, f"no gateway connected: {g.error}"
        if not e.probes:
            return ExitCode.IPR_HANDSHAKE, "no exit candidate to probe"
        if e.answered == 0:
            return ExitCode.IPR_HANDSHAKE, f"none of {len(e.probes)} exits answered"
        return ExitCode.OK, f"{e.answered} of {len(e.probes)} exits answered"

    def to_json(self) -> dict[str, Any]:
        code, message = self.verdict
        return {
            "format": FORMAT,
            "smolmix": self.version,
            "network": self.network,
            "exit_code": int(code),
            "result": "ok" if code is ExitCode.OK else code.name.lower(),
            "message": message,
            "directory": self.directory.to_json(),
            "gateway": self.gateway.to_json(),
            "exits": self.exits.to_json(),
        }
