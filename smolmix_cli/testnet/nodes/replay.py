"""Replay protection for a node: Sphinx replay tags seen per key rotation (spec 1.11).

Nym keeps a bloom filter per rotation; so do we, in two generations so it stays bounded
however long a rotation lasts: tags go into the current filter, and once it holds
`capacity` of them the older filter is dropped and a fresh one started. A tag is
therefore remembered for at least the last `capacity` tags and at most twice that, in
a fixed ~1.4 MB per key at the default capacity (an exact set of the same tags took
about 23 MB). Each filter is sized for a one-in-a-million false positive at capacity:
a packet taken for a replay by mistake is dropped, which the sender's acks recover.
Tags of a rotation are dropped with its key.
"""

from __future__ import annotations

import hashlib
import math
import struct

DEFAULT_CAPACITY = 200_000
BITS_PER_TAG = 28.8
MIN_BITS = 8192
_WORDS = struct.Struct("<16I")


class _Bloom:
    __slots__ = ("_bits", "_size", "count")

    def __init__(self, capacity: int) -> None:
        # k = 16 positions at 28.8 bits per tag gives 1.2e-6 false positives at capacity
        # (the optimum k for that size is 20, for 1e-6: one 64-byte digest serves 16).
        self._size = max(MIN_BITS, math.ceil(capacity * BITS_PER_TAG))
        self._bits = bytearray((self._size + 7) // 8)
        self.count = 0

    def positions(self, tag: bytes) -> list[int]:
        # Keyed by BLAKE2 so a chosen tag cannot aim at positions (tags are MAC-derived,
        # but a node should not rely on it); 16 32-bit words of one digest, one per hash.
        words = _WORDS.unpack(hashlib.blake2b(tag).digest())
        size = self._size
        return [w % size for w in words]

    def has(self, positions: list[int]) -> bool:
        bits = self._bits
        return all(bits[p >> 3] & (1 << (p & 7)) for p in positions)

    def add(self, positions: list[int]) -> None:
        bits = self._bits
        for p in positions:
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    @property
    def nbytes(self) -> int:
        return len(self._bits)


class ReplayCache:
    """Seen replay tags of one Sphinx key: a bloom filter in two generations."""

    __slots__ = ("_capacity", "_current", "_previous", "evicted")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("replay cache capacity must be positive")
        self._capacity = capacity
        self._current = _Bloom(capacity)
        self._previous: _Bloom | None = None
        self.evicted = 0
        """Tags forgotten with a dropped generation."""

    def __len__(self) -> int:
        """Tags remembered (inserted into a live generation)."""
        return self._current.count + (self._previous.count if self._previous else 0)

    def __contains__(self, tag: object) -> bool:
        if not isinstance(tag, bytes):
            return False
        positions = self._current.positions(tag)
        return self._current.has(positions) or (
            self._previous is not None and self._previous.has(positions)
        )

    def check_and_insert(self, tag: bytes) -> bool:
        """True if `tag` was seen before (a replay); otherwise remember it."""
        positions = self._current.positions(tag)  # the same size in both generations
        if self._current.has(positions) or (
            self._previous is not None and self._previous.has(positions)
        ):
            return True
        if self._current.count >= self._capacity:
            if self._previous is not None:
                self.evicted += self._previous.count
            self._previous, self._current = self._current, _Bloom(self._capacity)
        self._current.add(positions)
        return False

    @property
    def nbytes(self) -> int:
        return self._current.nbytes + (self._previous.nbytes if self._previous else 0)


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
