"""Outbound node-to-node connections: one framed TCP stream per next hop (spec 2.7).

A node hands ready frame bytes to `LinkPool.send`, which never blocks: each next hop
has a bounded queue drained by its own task, so a slow or dead peer costs that peer's
packets (counted) and nothing else. Lost connections are re-established with
exponential backoff; frames are written unchanged, so the frame version and key
rotation label the caller chose travel on. Raw TCP: nym-node falls back to it when a
peer announces no Noise key, and the local network announces none.
"""

from __future__ import annotations

from collections import Counter

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from smolmix_cli.mixnet.address import NodeAddress

DEFAULT_QUEUE_SIZE = 2048
CONNECT_TIMEOUT_S = 3.0
BACKOFF_INITIAL_S = 0.05
BACKOFF_MAX_S = 2.0
MAX_BATCH = 64
IDLE_TIMEOUT_S = 300.0  # a link with nothing to send for this long is closed
MAX_LINKS = 1024  # distinct next hops; clients choose a MixPacket's, so bound them

_NETWORK_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)


class _Link:
    def __init__(self, pool: LinkPool, address: NodeAddress) -> None:
        self.pool = pool
        self.address = address
        send, receive = anyio.create_memory_object_stream[bytes](pool.queue_size)
        self.send_stream: MemoryObjectSendStream[bytes] = send
        self.receive_stream: MemoryObjectReceiveStream[bytes] = receive
        self.connected = False
        self.last_used = anyio.current_time()

    def _idle(self) -> bool:
        stats = self.send_stream.statistics()
        return (
            stats.current_buffer_used == 0
            and anyio.current_time() - self.last_used >= self.pool.idle_timeout
        )

    def _retire(self) -> None:
        # No await between the idle check and here, so nothing can be queued meanwhile.
        if self.pool._links.get(self.address) is self:
            del self.pool._links[self.address]
        self.send_stream.close()
        self.pool.counters["link_idle_closed"] += 1

    async def run(self) -> None:
        counters = self.pool.counters
        backoff = self.pool.backoff_initial
        with self.receive_stream:
            while True:
                try:
                    with anyio.fail_after(self.pool.connect_timeout):
                        stream = await anyio.connect_tcp(str(self.address.ip), self.address.port)
                except (OSError, TimeoutError):
                    counters["link_connect_failures"] += 1
                    if self._idle():
                        self._retire()
                        return
                    await anyio.sleep(backoff)
                    backoff = min(backoff * 2, self.pool.backoff_max)
                    continue
                backoff = self.pool.backoff_initial
                counters["link_connects"] += 1
                async with stream:
                    retired = await self._pump(stream)
                self.connected = False
                if retired:
                    return

    async def _pump(self, stream: anyio.abc.SocketStream) -> bool:
        """Write queued frames until the connection breaks, the peer closes it (False)
        or the link has been idle long enough to retire (True)."""
        self.connected = True
        retired = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_peer, stream, tg.cancel_scope)
            counters = self.pool.counters
            batch: list[bytes] = []
            try:
                while True:
                    with anyio.move_on_after(self.pool.idle_timeout):
                        batch = [await self.receive_stream.receive()]
                    if not batch:
                        if self._idle():
                            retired = True
                            self._retire()
                            tg.cancel_scope.cancel()
                            break
                        continue
                    while len(batch) < MAX_BATCH:
                        try:
                            batch.append(self.receive_stream.receive_nowait())
                        except anyio.WouldBlock:
                            break
                    await stream.send(b"".join(batch))
                    counters["link_sent"] += len(batch)
                    batch = []
            except _NETWORK_ERRORS:
                counters["link_errors"] += 1
                tg.cancel_scope.cancel()
            finally:
                # frames taken from the queue but not written: lost with the connection
                counters["dropped_link_error"] += len(batch)
        return retired

    @staticmethod
    async def _watch_peer(stream: anyio.abc.SocketStream, scope: anyio.CancelScope) -> None:
        # Peers never write on a mix link; EOF or an error means the link is gone, so
        # notice it now rather than losing the next batch into a reset connection.
        try:
            while await stream.receive():
                pass
        except _NETWORK_ERRORS:
            pass
        scope.cancel()


class LinkPool:
    """Framed TCP connections to next hops, created on first use."""

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        backoff_initial: float = BACKOFF_INITIAL_S,
        backoff_max: float = BACKOFF_MAX_S,
        idle_timeout: float = IDLE_TIMEOUT_S,
        max_links: int = MAX_LINKS,
        counters: Counter[str] | None = None,
    ) -> None:
        self.queue_size = queue_size
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.idle_timeout = idle_timeout
        self.max_links = max_links
        self.counters: Counter[str] = counters if counters is not None else Counter()
        self._links: dict[NodeAddress, _Link] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the link tasks until cancelled; `send` works once this has started."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            for link in self._links.values():
                link.send_stream.close()
            self._links.clear()

    def send(self, address: NodeAddress, data: bytes) -> bool:
        """Queue one frame for `address`; False (and counted) when its queue is full."""
        link = self._links.get(address)
        if link is None:
            if self._tg is None:
                raise RuntimeError("LinkPool.send before run() started")
            if len(self._links) >= self.max_links:
                self.counters["dropped_too_many_links"] += 1
                return False
            link = self._links[address] = _Link(self, address)
            self._tg.start_soon(link.run, name=f"link to {address}")
        link.last_used = anyio.current_time()
        try:
            link.send_stream.send_nowait(data)
        except anyio.WouldBlock:
            self.counters["dropped_queue_full"] += 1
            return False
        return True

    def is_connected(self, address: NodeAddress) -> bool:
        link = self._links.get(address)
        return link is not None and link.connected

    def queued(self, address: NodeAddress) -> int:
        link = self._links.get(address)
        return 0 if link is None else link.send_stream.statistics().current_buffer_used
