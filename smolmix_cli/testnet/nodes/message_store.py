"""Messages held for clients that are not connected, sans-io (spec 2.9, 3.8).

A gateway keeps what arrives for an offline client and pushes it when the client
authenticates again. Storage is brief and bounded, per client and in total, and the
oldest message goes first when a bound is hit: a client that comes back most wants
what was sent last (older fragments its peer has likely retransmitted already).
"""

from __future__ import annotations

from collections import OrderedDict, deque

DEFAULT_TTL_S = 120.0
DEFAULT_PER_CLIENT = 2000
DEFAULT_TOTAL = 20000


class MessageStore:
    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        per_client: int = DEFAULT_PER_CLIENT,
        total: int = DEFAULT_TOTAL,
    ) -> None:
        if per_client < 1 or total < 1 or ttl_s <= 0:
            raise ValueError("store bounds and TTL must be positive")
        self.ttl_s = ttl_s
        self.per_client = per_client
        self.total = total
        # client -> (stored at, message); OrderedDict keeps clients by first store for eviction
        self._queues: OrderedDict[bytes, deque[tuple[float, bytes]]] = OrderedDict()
        self._count = 0
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        return self._count

    def stored_for(self, client: bytes) -> int:
        queue = self._queues.get(client)
        return 0 if queue is None else len(queue)

    def put(self, client: bytes, message: bytes, now: float) -> None:
        """Keep `message`; evicts the oldest (this client's, else anyone's) beyond a bound."""
        self.expire(now)
        queue = self._queues.get(client)
        if queue is not None and len(queue) >= self.per_client:
            queue.popleft()
            self._count -= 1
            self.evicted += 1
            if not queue:
                del self._queues[client]
        while self._count >= self.total:
            self._evict_oldest()
        queue = self._queues.get(client)  # eviction may have emptied and removed it
        if queue is None:
            queue = self._queues[client] = deque()
        queue.append((now, message))
        self._count += 1

    def take(self, client: bytes, now: float) -> list[bytes]:
        """Everything still fresh for `client`, oldest first; the store forgets it."""
        self.expire(now)
        queue = self._queues.pop(client, None)
        if queue is None:
            return []
        self._count -= len(queue)
        return [message for _, message in queue]

    def expire(self, now: float) -> None:
        cutoff = now - self.ttl_s
        for client in list(self._queues):
            queue = self._queues[client]
            while queue and queue[0][0] <= cutoff:
                queue.popleft()
                self._count -= 1
                self.expired += 1
            if not queue:
                del self._queues[client]

    def _evict_oldest(self) -> None:
        # every queue in the dict is non-empty (emptied ones are removed at once)
        oldest_client = min(self._queues, key=lambda c: self._queues[c][0][0])
        queue = self._queues[oldest_client]
        queue.popleft()
        self._count -= 1
        self.evicted += 1
        if not queue:
            del self._queues[oldest_client]
