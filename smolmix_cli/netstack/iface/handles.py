"""The stack's handles on TCP connections and listeners: what applications hold."""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING

from smolmix_cli.netstack.errors import NetstackError
from smolmix_cli.netstack.socket.tcp.connection import TcpConnection
from smolmix_cli.netstack.wire.ip import PROTO_TCP, Endpoint, pseudo_header_raw
from smolmix_cli.netstack.wire.tcp_ip import ipv4_tcp_base_sum

if TYPE_CHECKING:
    from smolmix_cli.netstack.iface.stack import NetStack

TcpKey = tuple[bytes, int, bytes, int]  # (local addr, local port, remote addr, remote port)


class TcpSocket:
    """The stack's handle on one TCP connection; application calls go through it.

    Calls take `now` explicitly (sans-io) and flush the connection's output
    into the stack's transmit queue.
    """

    __slots__ = (
        "_app_view",
        "_deadline",
        "_ip_base",
        "_key",
        "_orphan_deadline",
        "_pseudo0",
        "_stack",
        "conn",
        "listener",
        "owns_port",
        "released",
    )

    def __init__(self, stack: NetStack, conn: TcpConnection, key: TcpKey, owns_port: bool) -> None:
        self._stack = stack
        self.conn = conn
        self._key = key
        # pseudo header with length 0: encode_tcp's checksum is fixed up for the length
        self._pseudo0 = pseudo_header_raw(key[0], key[2], PROTO_TCP, 0)
        self._ip_base = ipv4_tcp_base_sum(key[0], key[2]) if len(key[0]) == 4 else -1
        self.owns_port = owns_port
        self.listener: TcpListener | None = None
        self.released = False
        self._deadline: float | None = None
        self._orphan_deadline: float | None = None
        self._app_view: tuple[object, ...] | None = None  # see NetStack._after_input

    @property
    def local(self) -> Endpoint:
        return self.conn.local

    @property
    def remote(self) -> Endpoint:
        return self.conn.remote

    def send(self, data: bytes | bytearray | memoryview, now: float) -> int:
        n = self.conn.send(data)
        self._stack._after_input(self, now)
        return n

    def recv(self, max_bytes: int, now: float) -> bytes:
        data = self.conn.recv(max_bytes)
        if data:
            self._stack._after_input(self, now)
        return data

    def close(self, now: float) -> None:
        """Half-close: FIN after the queued data."""
        self.conn.close()
        self._stack._after_input(self, now)

    def abort(self, now: float) -> None:
        self.conn.abort()
        self._stack._after_input(self, now)

    def release(self, now: float) -> None:
        """The application is done with this socket: close it and let it finish on its own."""
        if self.released:
            return
        self.released = True
        if not self.conn.is_closed:
            if self.conn.readable:
                self.conn.abort()  # unread data: RST, like a kernel (RFC 2525 §2.17)
            else:
                with contextlib.suppress(NetstackError):
                    self.conn.close()
            self._orphan_deadline = now + self._stack.orphan_timeout
        self._stack._after_input(self, now)


class TcpListener:
    """Passive open on one port (or, with `port` None, on every address and port)."""

    def __init__(self, address: bytes | None, port: int | None, backlog: int) -> None:
        self.address = address
        self.port = port
        self.backlog = backlog
        self.handshaking: set[TcpSocket] = set()
        self.ready: deque[TcpSocket] = deque()
        self.closed = False

    @property
    def any_destination(self) -> bool:
        return self.port is None

    def accept(self) -> TcpSocket | None:
        return self.ready.popleft() if self.ready else None
