"""`TunnelStatus`: what a tunnel says about itself, typed, and the same in-process or attached.

The session daemon serves it in its status frame (as JSON) and `RemoteTunnel`
rebuilds it, so callers read one type whether their tunnel booted here or in a
background session.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_LISTS = ("exits_failed", "gateways_skipped", "exits_tried", "gateways_tried")


def gateway_lines(tried: Iterable[tuple[str, str]]) -> list[str]:
    """One line per gateway from MixnetClient.gateways_tried ("<id> at <url>", why):
    "gateway <id> at wss://...: why; at ws://...: connected"."""
    lines: list[str] = []
    last = ""
    for name, why in tried:
        identity, _, url = name.partition(" at ")
        why = why.replace(f" to {url}", "")  # the error's own copy of the URL
        if identity == last and lines:
            lines[-1] += f"; at {url}: {why}"
        else:
            lines.append(f"gateway {identity} at {url}: {why}")
        last = identity
    return lines


@dataclass(frozen=True, slots=True)
class TunnelStatus:
    state: str  # TunnelState's value: connecting, ready, shutting down, shut down, failed
    reason: str
    exit: str | None = None  # the exit IPR's Recipient text
    gateway: str | None = None  # the entry gateway's identity (base58)
    ipv4: str | None = None
    ipv6: str | None = None
    rtt_ms: float | None = None  # the IPR connect round trip of the current session
    sessions_started: int = 0
    exits_failed: tuple[str, ...] = ()
    gateways_skipped: tuple[str, ...] = ()  # "<identity> at <url>: why", in the order tried
    exits_tried: tuple[str, ...] = ()  # "<exit>: how its last attempt ended", oldest first
    gateways_tried: tuple[str, ...] = ()  # "gateway <id> at <url>: why; at <url>: connected"
    packets_up: int = 0
    packets_down: int = 0
    messages_up: int = 0
    ipr_dropped: int = 0

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["exits_failed"] = list(self.exits_failed)
        data["gateways_skipped"] = list(self.gateways_skipped)
        data["exits_tried"] = list(self.exits_tried)
        data["gateways_tried"] = list(self.gateways_tried)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TunnelStatus:
        """From a daemon's status report: unknown keys ignored, missing ones defaulted,
        values of the wrong type dropped (a peer's JSON is input, not trusted shape)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in _LISTS:
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    values[f.name] = tuple(value)
            elif f.name in ("state", "reason"):
                if isinstance(value, str):
                    values[f.name] = value
            elif f.name == "rtt_ms":
                if isinstance(value, int | float) and not isinstance(value, bool):
                    values[f.name] = float(value)
            elif f.type == "int":
                if isinstance(value, int) and not isinstance(value, bool):
                    values[f.name] = value
            elif value is None or isinstance(value, str):
                values[f.name] = value
        values.setdefault("state", "connecting")
        values.setdefault("reason", "")
        return cls(**values)
