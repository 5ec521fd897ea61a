"""Packet devices: where a stack's IP packets enter and leave.

A device moves whole IP packets. `MemoryDevice` pairs connect two stacks (or a
stack and a relay) in one process; `TunDevice` drives a Linux TUN interface
through a non-blocking fd integrated with the event loop (no threads).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Protocol

import anyio

from ..wakeup import Wakeup, new_wakeup

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65535
# write errors that mean "this packet is lost", not "the device is gone"
_DROP_ERRNOS = frozenset({errno.EINVAL, errno.EIO, errno.ENOBUFS, errno.ENOMEM})


class PacketDevice(Protocol):
    async def receive(self) -> bytes:
        """The next packet; raises anyio.EndOfStream when the device is gone."""
        ...

    def receive_nowait(self) -> bytes | None:
        """A packet if one is ready now, else None (lets the shell batch work)."""
        ...

    def send_nowait(self, packet: bytes) -> bool:
        """Send (or drop) now; False when the device would block and the packet was not taken."""
        ...

    async def send(self, packet: bytes) -> None: ...

    async def aclose(self) -> None: ...


class _Pipe:
    """One direction of an in-memory link: a bounded FIFO of packets.

    A plain deque with one waiting reader and writer at most: anyio's memory
    object streams cost several microseconds per packet in backend lookups,
    which at tens of thousands of packets a second was a fifth of a benchmark's
    CPU time.
    """

    __slots__ = (
        "_readable",
        "_writable",
        "items",
        "limit",
        "on_readable",
        "reader_closed",
        "writer_closed",
    )

    def __init__(self, limit: int) -> None:
        self.items: deque[bytes] = deque()
        self.limit = limit
        self.reader_closed = False
        self.writer_closed = False
        self._readable: Wakeup | None = None
        self._writable: Wakeup | None = None
        self.on_readable: Callable[[], None] | None = None

    def wake_reader(self) -> None:
        callback = self.on_readable
        if callback is not None:
            callback()
        ev = self._readable
        if ev is not None:
            self._readable = None
            ev.set()

    def wake_writer(self) -> None:
        ev = self._writable
        if ev is not None:
            self._writable = None
            ev.set()

    async def readable(self) -> None:
        ev = self._readable
        if ev is None:
            ev = self._readable = new_wakeup()
        await ev.wait()

    async def writable(self) -> None:
        ev = self._writable
        if ev is None:
            ev = self._writable = new_wakeup()
        await ev.wait()


class MemoryDevice:
    """One end of an in-memory point-to-point link.

    `drop_when_full` makes a full queue drop (and count) packets like a NIC
    ring; otherwise `send` waits, giving the sender back-pressure.
    """

    def __init__(self, tx: _Pipe, rx: _Pipe, drop_when_full: bool = False) -> None:
        self._tx = tx
        self._rx = rx
        self.drop_when_full = drop_when_full
        self.dropped = 0

    async def receive(self) -> bytes:
        rx = self._rx
        while not rx.items:  # waiting is the checkpoint; a ready packet returns at once
            if rx.reader_closed:
                raise anyio.ClosedResourceError
            if rx.writer_closed:
                raise anyio.EndOfStream
            await rx.readable()
        if len(rx.items) >= rx.limit:
            rx.wake_writer()
        return rx.items.popleft()

    def receive_nowait(self) -> bytes | None:
        items = self._rx.items
        if not items:
            return None
        if len(items) >= self._rx.limit:
            self._rx.wake_writer()
        return items.popleft()

    def set_reader_callback(self, callback: Callable[[], None] | None) -> None:
        """Have `callback` called (synchronously, so it must only schedule work)
        whenever a packet arrives or the far end closes; None removes it.

        Lets an asyncio shell drain the link from a loop callback instead of a
        task blocked in `receive`: a task wake-up per received batch was about
        a seventh of a 5 % loss transfer's time.
        """
        self._rx.on_readable = callback

    @property
    def at_eof(self) -> bool:
        """Nothing queued and nothing more can come (either end closed)."""
        rx = self._rx
        return not rx.items and (rx.writer_closed or rx.reader_closed)

    def send_nowait(self, packet: bytes) -> bool:
        tx = self._tx
        if tx.reader_closed or tx.writer_closed:
            self.dropped += 1  # the far end is gone: a cable pulled, not our error
            return True
        if len(tx.items) >= tx.limit:
            if not self.drop_when_full:
                return False
            self.dropped += 1
            return True
        tx.items.append(packet)
        tx.wake_reader()
        return True

    async def send(self, packet: bytes) -> None:
        while not self.send_nowait(packet):
            await self._tx.writable()

    async def aclose(self) -> None:
        for pipe, side in ((self._tx, "writer_closed"), (self._rx, "reader_closed")):
            setattr(pipe, side, True)
            pipe.wake_reader()
            pipe.wake_writer()
        self._rx.items.clear()
        await anyio.lowlevel.checkpoint()


def memory_link(
    max_packets: int = 1024, drop_when_full: bool = False
) -> tuple[MemoryDevice, MemoryDevice]:
    """Two devices wired back to back: what one sends, the other receives."""
    ab, ba = _Pipe(max_packets), _Pipe(max_packets)
    return MemoryDevice(ab, ba, drop_when_full), MemoryDevice(ba, ab, drop_when_full)


def open_tun(name: str = "tun0") -> int:
    """Create (or attach to) a TUN interface without packet-info headers; returns the fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except BaseException:
        os.close(fd)
        raise
    return fd


class TunDevice:
    """A TUN fd (IFF_TUN | IFF_NO_PI): each read or write is one bare IP packet."""

    def __init__(self, fd: int, close_fd: bool = True) -> None:
        self.fd = fd
        self.close_fd = close_fd
        self.dropped = 0
        self._closed = False
        os.set_blocking(fd, False)

    async def receive(self) -> bytes:
        # always yield once: under a packet flood the read never blocks, and the
        # stack's other tasks (the transmitter) must still get to run
        await anyio.lowlevel.checkpoint()
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                return os.read(self.fd, MAX_PACKET)
            except BlockingIOError:
                await anyio.wait_readable(self.fd)
            except OSError as exc:
                if exc.errno == errno.EBADFD:
                    raise anyio.EndOfStream from exc
                raise

    def receive_nowait(self) -> bytes | None:
        if self._closed:
            return None
        try:
            return os.read(self.fd, MAX_PACKET)
        except BlockingIOError:
            return None

    def send_nowait(self, packet: bytes) -> bool:
        try:
            os.write(self.fd, packet)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno not in _DROP_ERRNOS:
                raise
            self.dropped += 1
        return True

    async def send(self, packet: bytes) -> None:
        while True:
            try:
                os.write(self.fd, packet)
                return
            except BlockingIOError:
                await anyio.wait_writable(self.fd)
            except OSError as exc:
                # the kernel refused the packet (bad header, interface down, no buffers):
                # a lossy link drops, it does not crash the stack
                if exc.errno in _DROP_ERRNOS:
                    self.dropped += 1
                    return
                raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.close_fd:
            anyio.notify_closing(self.fd)
            os.close(self.fd)


class DatagramSocketDevice:
    """A connected packet socket (e.g. one end of an AF_UNIX SOCK_SEQPACKET socketpair).

    Lets a stack run in another process than its peer or relay: each datagram
    is one IP packet. `drop_when_full` drops (and counts) what the socket
    buffer cannot take, like a NIC queue; otherwise `send` waits.
    """

    def __init__(self, sock: socket.socket, drop_when_full: bool = False) -> None:
        self.sock = sock
        self.drop_when_full = drop_when_full
        self.dropped = 0
        sock.setblocking(False)

    async def receive(self) -> bytes:
        await anyio.lowlevel.checkpoint()
        while True:
            try:
                data = self.sock.recv(MAX_PACKET)
            except BlockingIOError:
                await anyio.wait_readable(self.sock)
                continue
            except OSError as exc:
                raise anyio.EndOfStream from exc
            if not data:
                raise anyio.EndOfStream  # a zero-length datagram marks the end
            return data

    def receive_nowait(self) -> bytes | None:
        try:
            return self.sock.recv(MAX_PACKET) or None
        except (BlockingIOError, OSError):
            return None

    def send_nowait(self, packet: bytes) -> bool:
        try:
            self.sock.send(packet)
        except BlockingIOError:
            if not self.drop_when_full:
                return False
            self.dropped += 1
        except OSError:
            self.dropped += 1  # peer gone or packet refused: lost, like on a wire
        return True

    async def send(self, packet: bytes) -> None:
        while not self.send_nowait(packet):
            await anyio.wait_writable(self.sock)

    async def aclose(self) -> None:
        anyio.notify_closing(self.sock)
        self.sock.close()


class CallbackDevice:
    """A device whose sent packets go straight to a callback and that never receives.

    For stacks fed from outside (`NetStack.receive_packet` called by whoever holds the
    far end, as the exit NAT and test clients do): only the outbound half is a device.
    """

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self._deliver = deliver
        self._closed = anyio.Event()

    async def receive(self) -> bytes:
        await self._closed.wait()
        raise anyio.EndOfStream

    def receive_nowait(self) -> bytes | None:
        return None

    def send_nowait(self, packet: bytes) -> bool:
        self._deliver(packet)
        return True

    async def send(self, packet: bytes) -> None:
        self._deliver(packet)

    async def aclose(self) -> None:
        self._closed.set()
