"""Unix stream sockets as anyio byte streams, for the session socket (both ends).

anyio's own Unix socket stream races on the asyncio backend: a receive that is
cancelled in the same loop iteration as its socket turns readable makes the
event loop log "Exception in callback Future.set_result" (an InvalidStateError
with a traceback, on the user's terminal). This stream waits with
`anyio.wait_readable`/`wait_writable`, which tolerate that race, and moves
bytes with plain non-blocking `recv`/`send`.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import SocketAttribute

CHUNK = 65536
CONNECT_RETRY = 0.01

_T = TypeVar("_T")


class UnixStream(anyio.abc.SocketStream):
    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._closed = False

    async def receive(self, max_bytes: int = CHUNK) -> bytes:
        await anyio.lowlevel.checkpoint_if_cancelled()
        data = await self._when_ready(anyio.wait_readable, partial(self._sock.recv, max_bytes))
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        await anyio.lowlevel.checkpoint_if_cancelled()
        view = memoryview(item)
        while view:
            sent = await self._when_ready(anyio.wait_writable, partial(self._sock.send, view))
            view = view[sent:]

    async def _when_ready(
        self, wait: Callable[[socket.socket], Awaitable[None]], op: Callable[[], _T]
    ) -> _T:
        """`op` as soon as the socket lets it run; failures as anyio's stream errors."""
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            try:
                return op()
            except BlockingIOError:
                await wait(self._sock)
            except OSError as exc:
                if self._closed:
                    raise anyio.ClosedResourceError from None
                raise anyio.BrokenResourceError(str(exc)) from exc

    async def send_eof(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            anyio.notify_closing(self._sock)  # wakes a task waiting on it
            self._sock.close()
        await anyio.lowlevel.checkpoint()

    @property
    def _raw_socket(self) -> socket.socket:
        return self._sock

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        sock = self._sock
        return {
            SocketAttribute.family: lambda: sock.family,
            SocketAttribute.raw_socket: lambda: sock,
            SocketAttribute.local_address: lambda: sock.getsockname(),
            SocketAttribute.remote_address: lambda: sock.getpeername(),
        }


async def connect_unix(path: Path, timeout: float) -> UnixStream:
    """Connect to a listening Unix socket (retrying while its backlog is full)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    try:
        while True:
            code = sock.connect_ex(os.fspath(path))
            if code == 0:
                return UnixStream(sock)
            if code not in (errno.EAGAIN, errno.EINPROGRESS) or time.monotonic() > deadline:
                raise OSError(code, os.strerror(code), os.fspath(path))
            await anyio.sleep(CONNECT_RETRY)
    except BaseException:
        sock.close()
        raise


class UnixListener:
    """A bound, listening Unix socket (0600, bound under a 0177 umask)."""

    def __init__(self, path: Path, backlog: int = 128) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(os.fspath(path))
            os.chmod(path, 0o600)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        finally:
            os.umask(old)
        sock.setblocking(False)
        self._sock = sock

    async def accept(self) -> UnixStream:
        while True:
            try:
                conn, _ = self._sock.accept()
            except BlockingIOError:
                await anyio.wait_readable(self._sock)
                continue
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EINTR):
                    continue
                raise
            return UnixStream(conn)

    async def aclose(self) -> None:
        anyio.notify_closing(self._sock)
        self._sock.close()
        await anyio.lowlevel.checkpoint()
