"""The mix-port half every local node shares: framed TCP in, Sphinx, delay, links out.

`MixNode` is this alone; `GatewayNode` adds final-hop delivery and the client
WebSocket. Bad input is dropped and counted here and never ends the node: a frame
stream that cannot be parsed any more closes that one connection; a packet that fails
Sphinx checks is dropped and the connection stays open.
"""

from __future__ import annotations

import errno
import logging
import math
import random
from collections import Counter
from dataclasses import replace
from typing import Any, TypedDict

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener

from smolmix_cli.accept import serve_contained
from smolmix_cli.mixnet.keys import X25519KeyPair
from smolmix_cli.mixnet.packet.framing import FrameDecoder, FramingError
from smolmix_cli.mixnet.packet.size import SphinxKeyRotation
from smolmix_cli.testnet.nodes.delay_queue import DelayQueue
from smolmix_cli.testnet.nodes.links import DEFAULT_QUEUE_SIZE, LinkPool
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from smolmix_cli.testnet.nodes.processing import (
    DEFAULT_MAX_DELAY_S,
    DROPPED_MALFORMED,
    Deliver,
    Drop,
    Forward,
    PacketProcessor,
    SphinxKey,
)
from smolmix_cli.testnet.nodes.replay import DEFAULT_CAPACITY, ReplayGuard

logger = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 50_000
MAX_MIX_CONNECTIONS = 1024  # inbound mix-port connections at once; more are closed
READ_SIZE = 65536
REBIND_S = 10.0  # how long a restarted node tries to get its old port back
COUNTER_NAMES = (
    "connections",
    "received",
    "forwarded",
    "delayed",
    "dropped_malformed",
    "dropped_truncated",
    "dropped_bad_mac",
    "dropped_replay",
    "dropped_loss",
    "dropped_unsupported",
    "dropped_key_rotation",
    "dropped_unexpected_final",
    "dropped_delay_too_long",
    "dropped_queue_full",
    "dropped_link_error",
    "connections_closed_malformed",
    "connections_refused",
    "internal_errors",
)


async def listen_tcp(host: str, port: int) -> MultiListener[anyio.abc.SocketStream]:
    """A listener on `port` (0: any). A node started again asks for its old port, which sits
    in the ephemeral range: a client still reconnecting to it may hold it for a moment
    (a loopback connect to a free ephemeral port can even connect to itself), so retry."""
    deadline = anyio.current_time() + REBIND_S
    while True:
        try:
            listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or port == 0 or anyio.current_time() >= deadline:
                raise
            await anyio.sleep(0.1)
            continue
        return listener


def _secondary_rotation(primary: SphinxKeyRotation) -> SphinxKeyRotation:
    if primary is SphinxKeyRotation.ODD:
        return SphinxKeyRotation.EVEN
    if primary is SphinxKeyRotation.EVEN:
        return SphinxKeyRotation.ODD
    return SphinxKeyRotation.UNKNOWN


class PacketOptions(TypedDict, total=False):
    """The packet-path knobs every node kind takes (PacketNode's keyword arguments)."""

    loss: float
    rng: random.Random | None
    max_queue: int
    link_queue: int
    replay_capacity: int
    max_delay_s: float


class PacketNode:
    """Mix-port listener, Sphinx processing, delay queue and outbound links."""

    accept_final = False

    def __init__(
        self,
        spec: NodeSpec,
        *,
        loss: float = 0.0,
        rng: random.Random | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        link_queue: int = DEFAULT_QUEUE_SIZE,
        replay_capacity: int = DEFAULT_CAPACITY,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
        max_connections: int = MAX_MIX_CONNECTIONS,
    ) -> None:
        self.spec = spec
        self.max_connections = max_connections
        self._mix_active = 0
        self.counters: Counter[str] = Counter(dict.fromkeys(COUNTER_NAMES, 0))
        primary = SphinxKey.from_private(spec.sphinx.private_bytes, spec.key_rotation)
        secondary = (
            None
            if spec.sphinx_secondary is None
            else SphinxKey.from_private(
                spec.sphinx_secondary.private_bytes, _secondary_rotation(spec.key_rotation)
            )
        )
        self.processor = PacketProcessor(
            primary,
            secondary,
            replay=ReplayGuard(replay_capacity),
            accept_final=self.accept_final,
            loss=loss,
            rng=rng,
            max_delay_s=max_delay_s,
        )
        self.delayed: DelayQueue[Forward] = DelayQueue(max_queue)
        self.links = LinkPool(queue_size=link_queue, counters=self.counters)
        self._wake = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._stop_requested = False
        self.killed = False
        self.started = anyio.Event()

    # -- lifecycle

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[NodeSpec] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until `stop()` or cancellation; reports the spec with bound ports on start."""
        mix_listener = await listen_tcp(self.spec.host, self.spec.mix_port)
        try:
            self.spec = self.spec.with_ports(
                mix_port=mix_listener.extra(SocketAttribute.local_port)
            )
            extra = await self._open_listeners()
        except BaseException:
            await mix_listener.aclose()
            raise
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._stop_requested:
                    scope.cancel()
                async with mix_listener, anyio.create_task_group() as tg:
                    await tg.start(self.links.run)
                    tg.start_soon(self._release_loop)
                    tg.start_soon(serve_contained, mix_listener, self._handle_mix, self._failed)
                    self._start_extra(tg, extra)
                    self.started.set()
                    task_status.started(self.spec)
        finally:
            self._scope = None
            with anyio.CancelScope(shield=True):
                await self._close_listeners(extra)

    def rotate_keys(self, new_key: X25519KeyPair, rotation_id: int) -> None:
        """Enter key rotation `rotation_id` with `new_key` (spec 1.11).

        The current key becomes the secondary, so packets built against the previous
        directory state still pass; the key before that is dropped with its replay tags.
        """
        processor = self.processor
        dropped = processor.secondary
        processor.secondary = processor.primary
        processor.primary = SphinxKey.from_private(
            new_key.private_bytes, SphinxKeyRotation.from_rotation_id(rotation_id)
        )
        if dropped is not None:
            processor.replay.forget(dropped.node.public_key)
        self.spec = replace(
            self.spec, sphinx=new_key, sphinx_secondary=self.spec.sphinx, rotation_id=rotation_id
        )

    def stop(self) -> None:
        """End `serve` (listeners closed, connections and links dropped)."""
        self._stop_requested = True
        if self._scope is not None:
            self._scope.cancel()

    def kill(self) -> None:
        """End `serve` as a crash would: no goodbyes to peers, nothing saved (chaos tests)."""
        self.killed = True
        self.stop()

    async def _open_listeners(self) -> Any:
        """Subclasses bind further listeners here (before the node reports started)."""
        return None

    def _start_extra(self, tg: anyio.abc.TaskGroup, extra: Any) -> None:
        del tg, extra

    async def _close_listeners(self, extra: Any) -> None:
        """Close what `_open_listeners` bound, even if serving never began (idempotent)."""
        del extra

    # -- mix port

    async def _handle_mix(self, stream: anyio.abc.SocketStream) -> None:
        self.counters["connections"] += 1
        if self._mix_active >= self.max_connections:
            self.counters["connections_refused"] += 1
            await anyio.aclose_forcefully(stream)
            return
        self._mix_active += 1
        try:
            await self._read_mix(stream)
        finally:
            self._mix_active -= 1

    def _failed(self, exc: BaseException) -> None:
        """A connection's handler raised, or an accept failed: that costs the one
        connection, never the node (serve_contained logs it at debug)."""
        del exc
        self.counters["internal_errors"] += 1

    async def _read_mix(self, stream: anyio.abc.SocketStream) -> None:
        decoder = FrameDecoder()
        async with stream:
            while True:
                try:
                    data = await stream.receive(READ_SIZE)
                except (
                    anyio.EndOfStream,
                    anyio.BrokenResourceError,
                    anyio.ClosedResourceError,
                    OSError,
                ):
                    if decoder.buffered:
                        self.counters["dropped_truncated"] += 1
                    return
                try:
                    frames = decoder.feed(data)
                except FramingError as exc:
                    logger.debug("node %d: closing a mix stream: %s", self.spec.node_id, exc)
                    self.counters[DROPPED_MALFORMED] += 1
                    self.counters["connections_closed_malformed"] += 1
                    return
                for frame in frames:
                    self.counters["received"] += 1
                    self._on_decision(self.processor.process(frame))
                if frames:
                    await anyio.lowlevel.checkpoint()  # let other connections in

    def _on_decision(self, decision: Forward | Deliver | Drop) -> None:
        if isinstance(decision, Drop):
            self.counters[decision.reason] += 1
            logger.debug("node %d: %s (%s)", self.spec.node_id, decision.reason, decision.error)
        elif isinstance(decision, Forward):
            self._schedule(decision)
        else:
            self._deliver(decision)

    def _deliver(self, decision: Deliver) -> None:
        self.counters["dropped_unexpected_final"] += 1

    def _schedule(self, forward: Forward) -> None:
        if forward.delay_ns <= 0:
            self._send(forward)
            return
        due = anyio.current_time() + forward.delay_ns / 1e9
        earliest = self.delayed.next_due()
        if not self.delayed.push(due, forward):
            self.counters["dropped_queue_full"] += 1
            return
        self.counters["delayed"] += 1
        if earliest is None or due < earliest:
            self._wake.set()

    def _send(self, forward: Forward) -> None:
        if self.links.send(forward.next_hop, forward.frame.to_bytes()):
            self.counters["forwarded"] += 1

    async def _release_loop(self) -> None:
        while True:
            now = anyio.current_time()
            for forward in self.delayed.pop_due(now):
                self._send(forward)
            due = self.delayed.next_due()
            timeout = math.inf if due is None else max(0.0, due - anyio.current_time())
            with anyio.move_on_after(timeout):
                await self._wake.wait()
            self._wake = anyio.Event()
