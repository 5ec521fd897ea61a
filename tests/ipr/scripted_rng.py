"""A `random.Random` that hands out recorded values first (stream ids, request ids, host numbers)."""

from __future__ import annotations

import random
from collections.abc import Iterable


class ScriptedRandom(random.Random):
    """`getrandbits(64)` returns `u64s` in order, `randint` returns `ints`; then a seeded stream."""

    def __init__(self, u64s: Iterable[int] = (), ints: Iterable[int] = (), seed: int = 0) -> None:
        super().__init__(seed)
        self._u64s = list(u64s)
        self._ints = list(ints)

    def getrandbits(self, k: int) -> int:
        if k == 64 and self._u64s:
            return self._u64s.pop(0)
        return super().getrandbits(k)

    def randint(self, a: int, b: int) -> int:
        if self._ints:
            value = self._ints.pop(0)
            return value
        return super().randint(a, b)
