"""A Linux TUN interface through a non-blocking fd integrated with the event loop (no threads)."""

from __future__ import annotations

import errno
import fcntl
import os
import struct

import anyio

from smolmix_cli.netstack.phy.device import MAX_PACKET

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
# write errors that mean "this packet is lost", not "the device is gone"
_DROP_ERRNOS = frozenset({errno.EINVAL, errno.EIO, errno.ENOBUFS, errno.ENOMEM})


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
