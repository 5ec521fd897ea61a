"""Impairment relays between two stacks: loss, duplication and exponential delay.

`Impairment` decides each packet's fate; `SimLink` runs two sans-io stacks on
a virtual clock (an event queue; time jumps to the next arrival or timer), so
long transfers run at CPU speed; `relay` does the same in real time between
two packet devices (memory links or TUN fds), for the anyio adapters and the
kernel-to-kernel baseline in `bench/netstack.py`.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from smolmix_cli.netstack.iface.handles import TcpSocket
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.phy.device import PacketDevice
from smolmix_cli.netstack.wire.ip import IPAddress


@dataclass
class Impairment:
    loss: float = 0.0  # probability a packet is dropped
    duplicate: float = 0.0  # probability a packet is delivered twice
    delay_mean: float = 0.0  # mean of an exponential per-packet delay (reorders), seconds
    base_delay: float = 0.0  # fixed one-way latency, seconds
    seed: int = 1
    rng: random.Random = field(init=False)
    passed: int = 0
    dropped: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def fates(self) -> list[float]:
        """Delays for each copy of the next packet ([] = dropped)."""
        rng = self.rng
        if self.loss and rng.random() < self.loss:
            self.dropped += 1
            return []
        self.passed += 1
        copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
        out = []
        for _ in range(copies):
            d = self.base_delay
            if self.delay_mean:
                d += rng.expovariate(1.0 / self.delay_mean)
            out.append(d)
        return out


class SimLink:
    """Two stacks wired back to back on a virtual clock."""

    def __init__(self, a: NetStack, b: NetStack, ab: Impairment, ba: Impairment) -> None:
        self.stacks = (a, b)
        self.imp = (ab, ba)
        self.now = 0.0
        self._events: list[tuple[float, int, int, bytes]] = []
        self._seq = itertools.count()
        self.packets = 0
        self.tap: Callable[[int, bytes], None] | None = None  # sees (side, packet) for each send

    def _collect(self) -> bool:
        moved = False
        for i, stack in enumerate(self.stacks):
            out = stack.poll_transmit(self.now)
            if not out:
                continue
            moved = True
            imp = self.imp[i]
            if self.tap is not None:
                for packet in out:
                    self.tap(i, packet)
            for packet in out:
                self.packets += 1
                for delay in imp.fates():
                    heapq.heappush(self._events, (self.now + delay, next(self._seq), 1 - i, packet))
        return moved

    def open_tcp(
        self, dst: IPAddress, port: int, time_limit: float = 5.0
    ) -> tuple[TcpSocket, TcpSocket]:
        """Connect the first stack to a new listener on the second: (client, server) sockets."""
        listener = self.stacks[1].tcp_listen(port)
        client = self.stacks[0].tcp_connect((dst, port), self.now)
        self.run(lambda now: client.conn.is_established and bool(listener.ready), time_limit)
        server = listener.accept()
        assert server is not None
        return client, server

    def run(self, app: Callable[[float], bool], time_limit: float, step_limit: int = 10**7) -> None:
        """Advance until `app(now)` returns True; `app` is called after every step.

        Raises AssertionError when the virtual time or step budget runs out or
        nothing is left to happen (a deadlock).
        """
        events = self._events
        for _ in range(step_limit):
            if app(self.now):
                return
            while self._collect():
                if app(self.now):
                    return
            deadlines = [d for d in (s.poll_deadline() for s in self.stacks) if d is not None]
            nxt = min(deadlines, default=math.inf)
            if events and events[0][0] < nxt:
                nxt = events[0][0]
            if nxt == math.inf:
                raise AssertionError(f"deadlock at t={self.now:.3f}")
            if nxt > time_limit:
                raise AssertionError(f"virtual time limit {time_limit}s exceeded")
            self.now = max(self.now, nxt)
            while events and events[0][0] <= self.now:
                _, _, dst, packet = heapq.heappop(events)
                self.stacks[dst].receive_packet(packet, self.now)
            for stack in self.stacks:
                d = stack.poll_deadline()
                if d is not None and d <= self.now:
                    stack.handle_timeout(self.now)
        raise AssertionError("step limit exceeded")


class StreamCheck:
    """Running sha256 and byte count of one direction of a transfer."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.count = 0

    def feed(self, data: bytes) -> None:
        self.hash.update(data)
        self.count += len(data)


async def relay(a: PacketDevice, b: PacketDevice, ab: Impairment, ba: Impairment) -> None:
    """Move packets between two devices in real time until cancelled."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(_pump, a, b, ab)
        tg.start_soon(_pump, b, a, ba)


async def _pump(src: PacketDevice, dst: PacketDevice, imp: Impairment) -> None:
    try:
        await _pump_until_eof(src, dst, imp)
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        return  # that side is gone: nothing more to carry


async def _pump_until_eof(src: PacketDevice, dst: PacketDevice, imp: Impairment) -> None:
    if not imp.delay_mean and not imp.base_delay:
        while True:
            packet = await src.receive()
            fates = imp.fates()
            for _ in fates:
                await dst.send(packet)
            # drain what is already queued without another wake-up
            for _ in range(64):
                more = src.receive_nowait()
                if more is None:
                    break
                for _ in imp.fates():
                    await dst.send(more)
    heap: list[tuple[float, int, bytes]] = []
    seq = itertools.count()
    wake = anyio.Event()

    async def deliver() -> None:
        nonlocal wake
        while True:
            if not heap:
                await wake.wait()
                wake = anyio.Event()
                continue
            delay = heap[0][0] - anyio.current_time()
            if delay > 0:
                with anyio.move_on_after(delay):
                    await wake.wait()
                if wake.is_set():
                    wake = anyio.Event()
                continue
            _, _, packet = heapq.heappop(heap)
            await dst.send(packet)

    async with anyio.create_task_group() as tg:
        tg.start_soon(deliver)
        while True:
            try:
                packet = await src.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                tg.cancel_scope.cancel()
                return
            now = anyio.current_time()
            for delay in imp.fates():
                heapq.heappush(heap, (now + delay, next(seq), packet))
            wake.set()
