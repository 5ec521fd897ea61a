"""Reassembly of fragments into padded messages, bounded and driven by explicit time.

Fragments arrive in any order, possibly twice (retransmission after a lost ack),
and long messages span a chain of linked sets. Nym keeps incomplete sets for
30 minutes after their last fragment; we do the same, but with explicit `now`
values (sans-io) and hard limits on buffered sets and bytes so a peer cannot
make us hold unbounded memory. Sets of recently completed messages are
remembered so late duplicates do not start a new, never-completing buffer.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.message.fragment import Fragment

INCOMPLETE_MESSAGE_TIMEOUT = 30 * 60.0  # seconds, Nym's INCOMPLETE_MESSAGE_TIMEOUT
DEFAULT_MAX_SETS = 1024
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_RECENT_SETS = 8192


class ReassemblyError(MixnetError):
    """Base of reassembly failures; the fragment in question was not stored."""


class FragmentMismatch(ReassemblyError, MalformedData):
    """A fragment contradicts its set's buffer (different fragment count)."""


class ReassemblyFull(ReassemblyError):
    """Storing the fragment would exceed the buffered-set or buffered-byte limit."""


@dataclass(slots=True)
class _SetBuffer:
    total: int
    last_update: float
    fragments: dict[int, Fragment] = field(default_factory=dict)
    size: int = 0

    @property
    def complete(self) -> bool:
        return len(self.fragments) == self.total

    @property
    def previous(self) -> int | None:
        first = self.fragments.get(1)
        return first.previous_set_id if first else None

    @property
    def next(self) -> int | None:
        last = self.fragments.get(self.total)
        return last.next_set_id if last else None

    def data(self) -> bytes:
        return b"".join(self.fragments[i].payload for i in range(1, self.total + 1))


@dataclass(frozen=True, slots=True)
class ReassembledMessage:
    """A whole padded message and the set ids it used, in order."""

    padded: bytes
    set_ids: tuple[int, ...]


@dataclass(slots=True)
class ReassemblyStats:
    duplicates: int = 0
    late_fragments: int = 0
    stale_sets_dropped: int = 0
    messages: int = 0


class Reassembler:
    """Collects fragments per set id and yields complete messages (linked chains included)."""

    def __init__(
        self,
        *,
        max_sets: int = DEFAULT_MAX_SETS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = INCOMPLETE_MESSAGE_TIMEOUT,
        recent_sets: int = DEFAULT_RECENT_SETS,
    ) -> None:
        self._sets: dict[int, _SetBuffer] = {}
        self._recent: OrderedDict[int, None] = OrderedDict()
        self._max_sets = max_sets
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._recent_cap = recent_sets
        self._bytes = 0
        self.stats = ReassemblyStats()

    @property
    def buffered_sets(self) -> int:
        return len(self._sets)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    def insert(self, fragment: Fragment, now: float) -> ReassembledMessage | None:
        """Store a fragment; return the message if it completed one, else None.

        Duplicates and fragments of recently completed sets are ignored (counted
        in `stats`). Raises FragmentMismatch or ReassemblyFull without storing.
        """
        if fragment.set_id in self._recent:
            self.stats.late_fragments += 1
            return None
        buf = self._sets.get(fragment.set_id)
        if buf is None:
            if len(self._sets) >= self._max_sets:
                raise ReassemblyFull(f"already buffering {len(self._sets)} incomplete sets")
            buf = _SetBuffer(fragment.total, now)
        elif buf.total != fragment.total:
            raise FragmentMismatch(
                f"set {fragment.set_id} has {buf.total} fragments, this one says {fragment.total}"
            )
        if fragment.current in buf.fragments:
            self.stats.duplicates += 1
            buf.last_update = now
            return None
        if self._bytes + len(fragment.payload) > self._max_bytes:
            raise ReassemblyFull(f"buffering {self._bytes} bytes already")
        self._sets[fragment.set_id] = buf
        buf.fragments[fragment.current] = fragment
        buf.size += len(fragment.payload)
        buf.last_update = now
        self._bytes += len(fragment.payload)
        if not buf.complete:
            return None
        chain = self._complete_chain(fragment.set_id)
        if chain is None:
            return None
        padded = b"".join(self._take(set_id) for set_id in chain)
        self.stats.messages += 1
        return ReassembledMessage(padded, tuple(chain))

    def cleanup(self, now: float) -> list[int]:
        """Drop sets whose last fragment came `timeout` or more seconds before `now`."""
        stale = [sid for sid, buf in self._sets.items() if now - buf.last_update >= self._timeout]
        for set_id in stale:
            self._bytes -= self._sets.pop(set_id).size
        self.stats.stale_sets_dropped += len(stale)
        return stale

    def _complete(self, set_id: int | None) -> _SetBuffer | None:
        if set_id is None:
            return None
        buf = self._sets.get(set_id)
        return buf if buf is not None and buf.complete else None

    def _complete_chain(self, set_id: int) -> list[int] | None:
        """Set ids from the first to the last set if every linked set is complete."""
        start = set_id
        seen = {start}
        while True:
            previous = self._sets[start].previous
            if previous is None:
                break
            prev_buf = self._complete(previous)
            if prev_buf is None or prev_buf.next != start or previous in seen:
                return None
            seen.add(previous)
            start = previous
        chain = [start]
        while True:
            following = self._sets[chain[-1]].next
            if following is None:
                return chain
            next_buf = self._complete(following)
            if next_buf is None or next_buf.previous != chain[-1] or following in chain:
                return None
            chain.append(following)

    def _take(self, set_id: int) -> bytes:
        buf = self._sets.pop(set_id)
        self._bytes -= buf.size
        self._recent[set_id] = None
        while len(self._recent) > self._recent_cap:
            self._recent.popitem(last=False)
        return buf.data()
