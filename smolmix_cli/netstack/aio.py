"""anyio shell around `NetStack`: one driver per stack, byte streams for TCP.

Errors: a connect that fails raises the stack's own `NetstackError` subclass
(`ConnectionRefused`, `ConnectionTimedOut`) so callers can tell them apart.
Once a stream exists it behaves as an `anyio.abc.ByteStream`: a connection
that breaks (reset, timeout) raises `anyio.BrokenResourceError` whose
`__cause__` is the `NetstackError`; the end of the peer's data raises
`anyio.EndOfStream`; use after `aclose` raises `anyio.ClosedResourceError`.
That is what `anyio.streams.tls.TLSStream` and other stream layers expect.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import ByteStream, SocketAttribute, TaskStatus

from smolmix_cli.netstack.errors import ConnectionReset, ConnectionTimedOut, NetstackError
from smolmix_cli.netstack.iface.handles import TcpListener, TcpSocket
from smolmix_cli.netstack.iface.stack import ECHO_REPLIES, NetStack
from smolmix_cli.netstack.phy.device import PacketDevice
from smolmix_cli.netstack.socket.udp import Datagram
from smolmix_cli.netstack.socket.udp import UdpSocket as _UdpState
from smolmix_cli.netstack.wire.ip import Endpoint, IPAddress
from smolmix_cli.wakeup import Wakeup, new_wakeup

RX_BATCH = 64  # packets handled per wake-up before the output is flushed


class StackClosed(NetstackError):
    """The stack's driver has stopped (device gone or the runner left its context)."""


class StackStopped(anyio.BrokenResourceError):
    """A stream or socket whose stack stopped under it.

    Still a `BrokenResourceError` for stream layers (TLS, HTTP), but its own type so
    the one classification can say "the tunnel closed" instead of blaming the peer.
    """


def _words(exc: BaseException) -> str:
    """Why the driver stopped, in its own first line (never a repr)."""
    text = next((line for line in str(exc).splitlines() if line.strip()), "")
    return f"stack stopped: {text}" if text else "stack stopped"


def _backend_clock() -> Callable[[], float]:
    """The running backend's own clock, looked up once.

    `anyio.current_time` finds the backend anew on every call, which the shell
    makes several times per packet batch; the bound clock reads the same time.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio): keep anyio's lookup
        return anyio.current_time
    return loop.time


class StackRunner:
    """Drives a `NetStack` with a device and the clock; hands out streams."""

    def __init__(
        self, stack: NetStack, device: PacketDevice, clock: Callable[[], float] | None = None
    ) -> None:
        self.stack = stack
        self.device = device
        self.clock = clock or anyio.current_time
        self._default_clock = clock is None
        self._waiters: dict[object, Wakeup] = {}
        self._wake_event: Wakeup | None = None
        self._wake_pending = False
        self._failure: BaseException | None = None
        self._ping_seq = 0
        self._txq: deque[bytes] = deque()
        self._sending = False  # the driver is in a blocking device send
        self._sleep_until = -math.inf  # when the sleeping driver will wake by itself
        self._loop: asyncio.AbstractEventLoop | None = None  # set when the backend is asyncio
        self._timer: asyncio.TimerHandle | None = None  # the sleeping driver's alarm (asyncio)
        self._drain_handle: asyncio.Handle | None = None  # a scheduled _drain (callback mode)
        self._drain_error: BaseException | None = None  # raised by the driver, like a task's

    # ---- driver ----

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled or the device ends."""
        if self._default_clock:
            self.clock = _backend_clock()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): the driver sleeps in a cancel scope
            self._loop = None
        # asyncio and a device that offers it: drain from a loop callback (see _drain)
        set_reader = (
            None if self._loop is None else getattr(self.device, "set_reader_callback", None)
        )
        try:
            async with anyio.create_task_group() as tg:
                if set_reader is not None:
                    set_reader(self._on_readable)
                    self._on_readable()  # whatever arrived before we started
                else:
                    tg.start_soon(self._receive_loop)
                task_status.started()
                await self._drive()
        except anyio.get_cancelled_exc_class():
            self._fail(StackClosed("stack stopped"))
            raise
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            if set_reader is not None:
                set_reader(None)
                if self._drain_handle is not None:
                    self._drain_handle.cancel()
                    self._drain_handle = None
            if self._failure is None:
                self._fail(StackClosed("stack stopped"))

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc if isinstance(exc, NetstackError) else StackClosed(_words(exc))
        for ev in self._waiters.values():
            ev.set()
        self._waiters.clear()

    def _fail_one(self, obj: object) -> None:
        ev = self._waiters.pop(obj, None)
        if ev is not None:
            ev.set()

    def wake(self) -> None:
        """Let the driver run a round (flush, timers, reschedule) soon."""
        self._wake_pending = True
        if self._wake_event is not None:
            self._wake_event.set()

    def flush(self) -> None:
        """Send what the stack queued, without blocking; wake waiters and, when needed, the driver.

        Called after every input (received batch, application call), so packets
        leave at once instead of one event-loop round later. Packets the device
        cannot take now stay queued, in order, for the driver's blocking sends;
        only the driver ever blocks on the device, so the receive path never does
        (two stacks blocked on each other's full queues would deadlock).
        """
        out = self.stack.poll_transmit(self.clock())
        txq = self._txq
        if out:
            txq.extend(out)
        self._notify()
        if txq and not self._sending:
            send = self.device.send_nowait
            while txq and send(txq[0]):
                txq.popleft()
        if txq:
            self.wake()
        else:
            deadline = self.stack.poll_deadline()
            if deadline is not None and deadline < self._sleep_until:
                self._wake_at(deadline)  # the driver sleeps past a timer that just moved earlier

    def _wake_at(self, deadline: float) -> None:
        """Bring the sleeping driver's alarm forward to `deadline`.

        On asyncio the alarm is a loop timer, moved without waking the driver:
        under loss the stack's timers move earlier on most ACKs, and a driver
        round (task switch, new wake-up, new cancel scope) per move was a tenth
        of a loss benchmark's CPU.
        """
        ev = self._wake_event
        if self._loop is None or ev is None:
            self.wake()
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(max(deadline - self.clock(), 0.0), ev.set)
        self._sleep_until = deadline

    def _notify(self) -> None:
        events = self.stack.take_events()
        if events and self._waiters:
            for obj in events:
                ev = self._waiters.pop(obj, None)
                if ev is not None:
                    ev.set()

    async def wait_for(self, obj: object) -> None:
        """Sleep until the stack reports a change on `obj` (a socket or listener)."""
        if self._failure is not None:
            raise StackClosed("stack is not running") from self._failure
        ev = self._waiters.get(obj)
        if ev is None:
            ev = self._waiters[obj] = new_wakeup()
        await ev.wait()

    def _on_readable(self) -> None:
        """The device's reader callback (asyncio): one drain per loop iteration at most."""
        if self._drain_handle is None and self._loop is not None:
            self._drain_handle = self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        """`_receive_loop`'s work as a loop callback: a batch of packets, then one flush."""
        self._drain_handle = None
        if self._drain_error is not None or self._failure is not None:
            return
        try:
            if self._take_batch(None) == RX_BATCH:
                self._on_readable()  # more may be queued: after the loop's other work
            elif getattr(self.device, "at_eof", False):
                self._fail(StackClosed("device closed"))
        except Exception as exc:  # surfaces from run(), as it would from a task
            self._drain_error = exc
            self.wake()

    async def _receive_loop(self) -> None:
        device = self.device
        while True:
            try:
                packet = await device.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self._fail(StackClosed("device closed"))
                return
            self._take_batch(packet)

    def _take_batch(self, first: bytes | None) -> int:
        """Give the stack `first` and what else is queued (RX_BATCH at most), then flush once."""
        stack, device = self.stack, self.device
        now = self.clock()
        taken = 0
        if first is not None:
            stack.receive_packet(first, now)
            taken = 1
        while taken < RX_BATCH:
            packet = device.receive_nowait()
            if packet is None:
                break
            stack.receive_packet(packet, now)
            taken += 1
        if taken:
            self.flush()
        return taken

    async def _drive(self) -> None:
        """Timers and blocking sends; everything else happens in `flush`."""
        stack, clock, txq = self.stack, self.clock, self._txq
        busy = 0
        while True:
            if self._drain_error is not None:
                raise self._drain_error
            self._wake_pending = False
            now = clock()
            deadline = stack.poll_deadline()
            if deadline is not None and deadline <= now:
                stack.handle_timeout(now)
            self.flush()
            if txq:
                self._sending = True
                try:
                    while txq:
                        await self.device.send(txq.popleft())
                finally:
                    self._sending = False
                continue
            if self._wake_pending:
                busy += 1
                if busy >= 16:  # never starve other tasks while work keeps appearing
                    busy = 0
                    await anyio.lowlevel.checkpoint()
                continue
            deadline = stack.poll_deadline()
            self._sleep_until = math.inf if deadline is None else deadline
            self._wake_event = ev = new_wakeup()
            busy = 0
            delay = max(self._sleep_until - clock(), 0.0)
            try:
                if self._loop is None:
                    with anyio.move_on_after(delay):
                        await ev.wait()
                else:
                    if delay != math.inf:
                        self._timer = self._loop.call_later(delay, ev.set)
                    await ev.wait()
            finally:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._wake_event = None
                self._sleep_until = -math.inf

    # ---- TCP ----

    async def connect_tcp(
        self, host: IPAddress, port: int, local: Endpoint | None = None
    ) -> TcpStream:
        """Open a connection; raises ConnectionRefused / ConnectionTimedOut / StackClosed."""
        sock = self.stack.tcp_connect((host, port), self.clock(), local=local)
        self.flush()
        try:
            while not sock.conn.is_established:
                if sock.conn.error is not None:
                    raise sock.conn.error
                if sock.conn.is_closed:
                    raise StackClosed("connection closed during connect")
                await self.wait_for(sock)
        except BaseException:
            sock.release(self.clock())
            self.flush()
            raise
        return TcpStream(self, sock)

    def listen_tcp(
        self, port: int, address: IPAddress | None = None, backlog: int = 128
    ) -> TcpStreamListener:
        return TcpStreamListener(self, self.stack.tcp_listen(port, address, backlog))

    def listen_tcp_any(self, backlog: int = 1024) -> TcpStreamListener:
        """Accept connections to any address and port (exit NAT mode)."""
        return TcpStreamListener(self, self.stack.tcp_listen_any(backlog))

    # ---- ICMP ----

    async def ping(
        self, host: IPAddress, payload: bytes = b"smolmix", timeout: float = 5.0
    ) -> float:
        """Round-trip time of one ICMP echo in seconds; TimeoutError when no reply comes."""
        self._ping_seq = (self._ping_seq + 1) & 0xFFFF
        ident, seq = 0x5D5D, self._ping_seq
        start = self.clock()
        self.stack.icmp_echo(host, ident, seq, payload)
        self.flush()
        with anyio.fail_after(timeout):
            while True:
                for src, rid, rseq, body in self.stack.echo_replies:
                    if (src, rid, rseq) == (host, ident, seq) and body == payload:
                        return self.clock() - start
                await self.wait_for(ECHO_REPLIES)

    # ---- UDP ----

    def bind_udp(self, port: int = 0, address: IPAddress | None = None) -> UdpSocket:
        return UdpSocket(self, self.stack.udp_bind(port, address))

    def bind_udp_any(self) -> UdpSocket:
        return UdpSocket(self, self.stack.udp_bind_any())


@asynccontextmanager
async def run_stack(
    stack: NetStack, device: PacketDevice, clock: Callable[[], float] | None = None
) -> AsyncIterator[StackRunner]:
    """Run the stack's driver for the duration of the block."""
    runner = StackRunner(stack, device, clock)
    async with anyio.create_task_group() as tg:
        await tg.start(runner.run)
        try:
            yield runner
        finally:
            tg.cancel_scope.cancel()


class TcpStream(ByteStream):
    """A TCP connection as an anyio byte stream (see the module docstring for errors)."""

    def __init__(self, runner: StackRunner, sock: TcpSocket) -> None:
        self._runner = runner
        self._sock = sock
        self._closed = False
        self._eof_sent = False

    @property
    def socket(self) -> TcpSocket:
        return self._sock

    @property
    def local(self) -> Endpoint:
        return self._sock.local

    @property
    def remote(self) -> Endpoint:
        return self._sock.remote

    def _broken(self) -> anyio.BrokenResourceError:
        """The failure in the words an OS socket's error would use (curl prints those)."""
        err = self._sock.conn.error
        if isinstance(err, ConnectionReset):
            text = "Connection reset by peer"
        elif isinstance(err, ConnectionTimedOut):
            text = f"Connection timed out ({err})"
        else:
            text = str(err) if err else "connection closed"
        exc = anyio.BrokenResourceError(text)
        exc.__cause__ = err or self._runner._failure
        return exc

    async def receive(self, max_bytes: int = 65536) -> bytes:
        sock, runner = self._sock, self._runner
        conn = sock.conn
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            if conn.readable:
                data = sock.recv(max_bytes, runner.clock())
                runner.flush()
                return data
            if conn.at_eof:
                raise anyio.EndOfStream
            if conn.error is not None:
                raise self._broken()
            if conn.is_closed:
                raise anyio.EndOfStream
            try:
                await runner.wait_for(sock)
            except StackClosed as exc:
                raise StackStopped("the network stack stopped") from exc

    async def send(self, item: bytes) -> None:
        sock, runner = self._sock, self._runner
        view = memoryview(item)
        while view:
            if self._closed or self._eof_sent:
                raise anyio.ClosedResourceError
            try:
                n = sock.send(view, runner.clock())
            except NetstackError as exc:
                raise self._broken() from exc
            if n:
                view = view[n:]
                runner.flush()
                continue
            try:
                await runner.wait_for(sock)
            except StackClosed as exc:
                raise StackStopped("the network stack stopped") from exc

    async def send_eof(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if self._eof_sent:
            return
        self._eof_sent = True
        try:
            self._sock.close(self._runner.clock())
        except NetstackError as exc:
            raise self._broken() from exc
        self._runner.flush()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.release(self._runner.clock())
            self._runner.flush()
        await anyio.lowlevel.checkpoint()

    def abort(self) -> None:
        """Reset the connection (RST) instead of closing it gracefully."""
        if not self._closed:
            self._closed = True
            self._sock.abort(self._runner.clock())
            self._sock.release(self._runner.clock())
            self._runner.flush()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            SocketAttribute.local_address: lambda: (str(self.local[0]), self.local[1]),
            SocketAttribute.remote_address: lambda: (str(self.remote[0]), self.remote[1]),
            SocketAttribute.local_port: lambda: self.local[1],
            SocketAttribute.remote_port: lambda: self.remote[1],
        }


class TcpStreamListener:
    """Accepts `TcpStream`s from a stack listener."""

    def __init__(self, runner: StackRunner, listener: TcpListener) -> None:
        self._runner = runner
        self.listener = listener

    async def accept(self) -> TcpStream:
        while True:
            if self.listener.closed:
                raise anyio.ClosedResourceError
            sock = self.listener.accept()
            if sock is not None:
                return TcpStream(self._runner, sock)
            await self._runner.wait_for(self.listener)

    async def aclose(self) -> None:
        self._runner.stack.close_listener(self.listener, self._runner.clock())
        self._runner._fail_one(self.listener)
        self._runner.flush()
        await anyio.lowlevel.checkpoint()


class UdpSocket:
    """A bound UDP port (or the any-destination catch-all) as an async datagram socket."""

    def __init__(self, runner: StackRunner, state: _UdpState) -> None:
        self._runner = runner
        self.state = state

    @property
    def port(self) -> int:
        return self.state.port

    async def sendto(
        self, data: bytes, host: IPAddress, port: int, src: Endpoint | None = None
    ) -> None:
        if self.state.closed:
            raise anyio.ClosedResourceError
        self._runner.stack.udp_sendto(self.state, data, (host, port), src)
        self._runner.flush()
        await anyio.lowlevel.checkpoint()

    async def receive_datagram(self) -> Datagram:
        while True:
            if self.state.closed:
                raise anyio.ClosedResourceError
            dgram = self.state.recv()
            if dgram is not None:
                return dgram
            try:
                await self._runner.wait_for(self.state)
            except StackClosed as exc:
                raise StackStopped("the network stack stopped") from exc

    async def receive(self) -> tuple[bytes, Endpoint]:
        dgram = await self.receive_datagram()
        return dgram.data, dgram.src

    async def aclose(self) -> None:
        self._runner.stack.udp_close(self.state)
        self._runner._fail_one(self.state)
        await anyio.lowlevel.checkpoint()
