"""Replay protection for a node: Sphinx replay tags seen per key rotation (spec 1.11).

Nym keeps a bloom filter per rotation; an exact set is simpler and has no false
positives, and a local network never sees enough packets for the memory to matter.
It is still bounded: past `capacity` tags the oldest are forgotten (FIFO), so a
flood cannot grow a node without limit. Tags of a rotation are dropped with its key.
"""

from __future__ import annotations

from collections import deque

DEFAULT_CAPACITY = 200_000  # ~23 MB of tags at most per rotation (~115 B per tag)


class ReplayCache:
    """Seen replay tags of one Sphinx key, oldest forgotten first beyond `capacity`."""

    __slots__ = ("_capacity", "_order", "_seen", "evicted")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("replay cache capacity must be positive")
        self._capacity = capacity
        self._seen: set[bytes] = set()
        self._order: deque[bytes] = deque()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, tag: object) -> bool:
        return tag in self._seen

    def check_and_insert(self, tag: bytes) -> bool:
        """True if `tag` was seen before (a replay); otherwise remember it."""
        if tag in self._seen:
            return True
        if len(self._order) >= self._capacity:
            self._seen.discard(self._order.popleft())
            self.evicted += 1
        self._seen.add(tag)
        self._order.append(tag)
        return False


class ReplayGuard:
    """One ReplayCache per Sphinx key (i.e. per key rotation) a node accepts."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._caches: dict[bytes, ReplayCache] = {}

    def cache(self, key_id: bytes) -> ReplayCache:
        cache = self._caches.get(key_id)
        if cache is None:
            cache = self._caches[key_id] = ReplayCache(self._capacity)
        return cache

    def forget(self, key_id: bytes) -> None:
        """The key's rotation ended: its tags can never verify again, drop them."""
        self._caches.pop(key_id, None)

    def __len__(self) -> int:
        return sum(len(c) for c in self._caches.values())
