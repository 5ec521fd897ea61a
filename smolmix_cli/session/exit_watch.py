"""Notice an exit that went silent under a ready tunnel, so the session replaces it.

A tunnel whose exit died stays "ready": its IPR client learns of a lost exit from
missed pongs (pings go out when it connects) or from a minute without uplink, and
busy traffic never gets there. Packets keep going up and nothing comes down; every
command times out and `session status` says ready (found by tests/e2e/test_chaos_suite.py).
`SilenceWatch` turns the tunnel's packet counters into a suspicion; the daemon confirms
it with an echo to the exit's own TUN address before it gives the tunnel up, so traffic
that expects no answer (UDP to a dead port) never costs a tunnel.
"""

from __future__ import annotations

from dataclasses import dataclass

SILENT_AFTER_S = 12.0  # uplink unanswered this long: ask the exit itself
PROBE_TIMEOUT_S = 6.0
PROBES = 2  # echoes, one after the other; any answer clears the suspicion


@dataclass
class SilenceWatch:
    """Packet counters in, "the exit may be gone" out (sans-io)."""

    after: float = SILENT_AFTER_S
    _up: int | None = None
    _down: int | None = None
    _unanswered_since: float | None = None

    def observe(self, up: int, down: int, now: float) -> bool:
        """True once packets have gone up for `after` seconds with none coming down."""
        if self._down is None or down != self._down:
            self._up, self._down, self._unanswered_since = up, down, None
            return False
        if up != self._up:
            self._up = up
            if self._unanswered_since is None:
                self._unanswered_since = now
        return self._unanswered_since is not None and now - self._unanswered_since >= self.after

    def answered(self, up: int, down: int) -> None:
        """The exit answered a probe: start over from these counters."""
        self._up, self._down, self._unanswered_since = up, down, None
