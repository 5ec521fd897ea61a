"""A running background session over blocking sockets: `status` and `open_http`, no event loop.

The blocking shell of the attach path (the async one is remote.py): an attached `fetch`
that only speaks HTTP over warm connections the session holds needs neither asyncio nor
anyio, a fifth of its start-up. Frames are session/protocol.py's (sans-io) and errors
come back as remote_errors.py rebuilds them, so a command fails with the same line and
exit code through either shell. Anything unexpected here answers None (`attach`), and
the command takes the async path, which also clears a stale socket or starts a session.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smolmix_cli.options import GlobalOptions, tunnel_args
from smolmix_cli.session import protocol as proto
from smolmix_cli.session.remote_errors import SessionUnavailable, rebuild_error

CONNECT_TIMEOUT = 5.0
CONNECT_RETRY = 0.01
CHUNK = 65536


class StreamBroken(Exception):
    """The session said the origin stream broke (reset, tunnel gone); the text says how."""


class OriginSocket:
    """The spliced origin connection: bytes out as they are, the way back end-framed
    (protocol.end_frame), so a FIN reads as b"" and a broken stream raises StreamBroken."""

    def __init__(self, sock: socket.socket, marks: proto.FrameDecoder) -> None:
        self._sock = sock
        self._marks = marks
        self._pending = b""
        self._ended: str | None = None

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def receive(self, max_bytes: int = CHUNK) -> bytes:
        """Up to `max_bytes`; b"" at the stream's end (the origin's FIN)."""
        while True:
            if self._pending:
                data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
                return data
            if self._ended is not None:
                if self._ended == "fin":
                    return b""
                raise StreamBroken(self._ended)
            try:
                frame = self._marks.next_frame()
            except proto.ProtocolError as exc:
                self._ended = f"the session sent a malformed stream ({exc})"
                continue
            if frame is None:
                data = self._sock.recv(CHUNK)
                if not data:
                    self._ended = "the session ended the stream without its end (it stopped?)"
                self._marks.feed(data)
                continue
            end = frame.header.get("end")
            if end is None:
                self._pending = frame.data
                continue
            message = frame.header.get("message")
            broken = message if isinstance(message, str) and message else "the stream broke"
            self._ended = "fin" if end == "fin" else broken

    def close(self) -> None:
        self._sock.close()


@dataclass(frozen=True, slots=True)
class Origin:
    """An `open_http` answer: the stream and what -w reports about its connection."""

    stream: OriginSocket
    reused: bool
    tls_version: str
    tls_seconds: float
    remote: tuple[str, int] | None


class BlockingSession:
    """The session on `path`; each call is one connection to its socket."""

    def __init__(self, path: Path, status: dict[str, Any], *, reuse: bool) -> None:
        self.path = path
        self.status = status
        self.reuse = reuse

    def open_origin(
        self,
        host: str,
        port: int,
        *,
        server_name: str | None,
        verify: bool,
        cafile: str | None,
        fresh: bool,
    ) -> Origin:
        request = proto.open_http(
            host,
            port,
            server_name=server_name,
            verify=verify,
            cafile=cafile,
            reuse=self.reuse,
            fresh=fresh,
        )
        sock, frame, decoder = call(self.path, request)
        h = frame.header
        return Origin(
            OriginSocket(sock, decoder),
            reused=h.get("reused") is True,
            tls_version=str(h.get("tls_version") or ""),
            tls_seconds=proto.answer_seconds(h.get("tls_s")),
            remote=proto.answer_address(h.get("remote")),
        )


def attach(options: GlobalOptions) -> BlockingSession | None:
    """This network's session if it is ready, serves `open_http` and runs the tunnel these
    options ask for; None: let the async path decide (it boots, starts or clears)."""
    from smolmix_cli.session.paths import SessionPathError, SessionPaths

    try:
        paths = SessionPaths.for_network(options.network)
        sock, frame, _ = call(paths.socket, proto.Request("status", timeout=0.0))
    except (SessionPathError, SessionUnavailable):
        return None
    sock.close()
    status = frame.header.get("status")
    if (
        not isinstance(status, dict)
        or status.get("state") != "ready"
        or "open_http" not in status.get("ops", ())
        or status.get("tunnel_args") != tunnel_args(options)
    ):
        return None
    return BlockingSession(paths.socket, status, reuse=not options.fresh_connections)


def call(
    path: Path, request: proto.Request
) -> tuple[socket.socket, proto.Frame, proto.FrameDecoder]:
    """Send one request; the open socket, the answer frame and the decoder's leftovers."""
    try:
        sock = _connect(path)
    except OSError as exc:
        raise SessionUnavailable(f"no session on {path}: {exc}") from None
    decoder = proto.FrameDecoder()
    try:
        sock.sendall(proto.request_frame(request))
        while (frame := decoder.next_frame()) is None:
            data = sock.recv(CHUNK)
            if not data:
                raise EOFError  # words as remote.py gives them: none
            decoder.feed(data)
    except (EOFError, OSError, proto.ProtocolError) as exc:
        sock.close()
        raise SessionUnavailable(f"the session on {path} hung up: {exc}") from None
    except BaseException:
        sock.close()
        raise
    answer = proto.parse_answer(frame)
    if isinstance(answer, proto.RemoteError):
        sock.close()
        raise rebuild_error(answer)
    return sock, frame, decoder


def _connect(path: Path) -> socket.socket:
    """Connect (retrying while the daemon's backlog is full), bounded as remote.py's is."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    deadline = time.monotonic() + CONNECT_TIMEOUT
    try:
        while True:
            code = sock.connect_ex(os.fspath(path))
            if code == 0:
                break
            if code not in (errno.EAGAIN, errno.EINPROGRESS) or time.monotonic() > deadline:
                raise OSError(code, os.strerror(code), os.fspath(path))
            time.sleep(CONNECT_RETRY)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(True)  # only the connect is bounded: an answer waits for TCP and TLS
    return sock
