"""Mixnet ping, sans-io: probe payloads to ourselves, matching replies, ping(8) statistics.

A probe is a message from the client to its own address; its round trip is the
time from handing it to the client until it comes back out of the mixnet. The
payload carries a per-run nonce and a sequence number, so stray, duplicated or
foreign messages are recognised and never counted twice.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

MAGIC = b"smolmix-ping\x00"
_HEADER = struct.Struct(">8sI")  # nonce, sequence number
MIN_SIZE = len(MAGIC) + _HEADER.size


@dataclass(frozen=True, slots=True)
class Reply:
    seq: int
    rtt_ms: float
    size: int


@dataclass(frozen=True, slots=True)
class Summary:
    transmitted: int
    received: int
    duplicates: int
    elapsed_ms: float
    rtts_ms: tuple[float, ...]

    @property
    def loss_percent(self) -> float:
        if not self.transmitted:
            return 0.0
        return 100.0 * (self.transmitted - self.received) / self.transmitted

    @property
    def rtt_min(self) -> float | None:
        return min(self.rtts_ms) if self.rtts_ms else None

    @property
    def rtt_max(self) -> float | None:
        return max(self.rtts_ms) if self.rtts_ms else None

    @property
    def rtt_avg(self) -> float | None:
        return sum(self.rtts_ms) / len(self.rtts_ms) if self.rtts_ms else None

    @property
    def rtt_mdev(self) -> float | None:
        """Population standard deviation, as ping(8)'s mdev."""
        avg = self.rtt_avg
        if avg is None:
            return None
        return math.sqrt(sum((r - avg) ** 2 for r in self.rtts_ms) / len(self.rtts_ms))

    def to_json(self) -> dict[str, object]:
        def rnd(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "type": "summary",
            "transmitted": self.transmitted,
            "received": self.received,
            "duplicates": self.duplicates,
            "loss_percent": round(self.loss_percent, 1),
            "time_ms": round(self.elapsed_ms, 1),
            "rtt_min_ms": rnd(self.rtt_min),
            "rtt_avg_ms": rnd(self.rtt_avg),
            "rtt_max_ms": rnd(self.rtt_max),
            "rtt_mdev_ms": rnd(self.rtt_mdev),
        }

    def text(self) -> list[str]:
        lines = [
            f"{self.transmitted} messages transmitted, {self.received} received, "
            + (f"+{self.duplicates} duplicates, " if self.duplicates else "")
            + f"{self.loss_percent:.0f}% message loss, time {self.elapsed_ms:.0f}ms"
        ]
        if self.rtts_ms:
            lines.append(
                f"rtt min/avg/max/mdev = {self.rtt_min:.3f}/{self.rtt_avg:.3f}/"
                f"{self.rtt_max:.3f}/{self.rtt_mdev:.3f} ms"
            )
        return lines


@dataclass
class PingTracker:
    """Builds probes and matches what comes back; times are caller-supplied seconds."""

    nonce: bytes
    size: int = 56
    sent_at: dict[int, float] = field(default_factory=dict)
    replies: dict[int, Reply] = field(default_factory=dict)
    duplicates: int = 0
    foreign: int = 0
    first_send: float | None = None

    def __post_init__(self) -> None:
        if len(self.nonce) != 8:
            raise ValueError("nonce must be 8 bytes")
        self.size = max(self.size, MIN_SIZE)

    def probe(self, seq: int, now: float) -> bytes:
        """The payload of probe `seq`, sent at `now`."""
        if seq in self.sent_at:
            raise ValueError(f"probe {seq} already sent")
        self.sent_at[seq] = now
        if self.first_send is None:
            self.first_send = now
        body = MAGIC + _HEADER.pack(self.nonce, seq & 0xFFFFFFFF)
        return body + bytes(self.size - len(body))

    def receive(self, data: bytes, now: float) -> Reply | None:
        """A reply if `data` is one of our probes coming back for the first time."""
        if len(data) < MIN_SIZE or not data.startswith(MAGIC):
            self.foreign += 1
            return None
        nonce, seq = _HEADER.unpack_from(data, len(MAGIC))
        if nonce != self.nonce or seq not in self.sent_at:
            self.foreign += 1
            return None
        if seq in self.replies:
            self.duplicates += 1
            return None
        reply = Reply(seq, (now - self.sent_at[seq]) * 1000.0, len(data))
        self.replies[seq] = reply
        return reply

    @property
    def outstanding(self) -> int:
        return len(self.sent_at) - len(self.replies)

    def summary(self, now: float) -> Summary:
        start = self.first_send if self.first_send is not None else now
        return Summary(
            transmitted=len(self.sent_at),
            received=len(self.replies),
            duplicates=self.duplicates,
            elapsed_ms=(now - start) * 1000.0,
            rtts_ms=tuple(self.replies[s].rtt_ms for s in sorted(self.replies)),
        )
