"""Packets held for their Sphinx delay, sans-io: explicit times in, due items out.

A node must not release a packet before the delay its sender encoded (that delay is
the mixing). One heap for all packets instead of a sleeping task per packet keeps
the cost per packet at O(log n) and the number of held packets bounded.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

T = TypeVar("T")


class DelayQueue(Generic[T]):
    """Items released at or after their due time, in due order (FIFO among equals)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("delay queue capacity must be positive")
        self.capacity = capacity
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, item: T) -> bool:
        """Hold `item` until `due`; False (item not taken) when the queue is full."""
        if len(self._heap) >= self.capacity:
            return False
        heapq.heappush(self._heap, (due, next(self._seq), item))
        return True

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[T]:
        """Every item whose time has come, earliest first."""
        out: list[T] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            out.append(heapq.heappop(heap)[2])
        return out
