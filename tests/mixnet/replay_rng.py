"""A `random.Random` that replays recorded set ids, so vector tests can re-split messages."""

from __future__ import annotations

import random


class RecordedSetIds(random.Random):
    """Returns the given set ids from `getrandbits(32)` (how fragment.generate_set_id draws)."""

    def __init__(self, set_ids: list[int], seed: int = 0) -> None:
        super().__init__(seed)
        self._set_ids = list(set_ids)

    def getrandbits(self, k: int) -> int:
        if k == 32 and self._set_ids:
            return self._set_ids.pop(0)
        return super().getrandbits(k)
