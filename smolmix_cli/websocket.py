"""WebSocket connections (RFC 6455, client and server role) over any anyio ByteStream.

Three users share it: the gateway client (the gateway protocol rides WebSocket
messages), the local network's gateway node, and `smolmix ws` through the
tunnel. wsproto does the framing (sans-io), this class moves its bytes over a
plain TCP stream or an anyio TLSStream (wss) and turns every failure into a
`WebSocketError` subclass that carries the close code. Those errors belong to
no layer above: each user translates them into its own (the gateway client
into gateway errors, `smolmix ws` into curl-like ones).

Concurrency: one task may be inside `receive()` while others send; sends are
serialised by a lock (pongs and close frames share the stream with data).
Pings are answered automatically while someone is receiving. Every wait takes
an optional timeout and raises `WebSocketTimeout` when it expires.
"""

from __future__ import annotations

import contextlib
import re
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from smolmix_cli.error_words import failure_words
from smolmix_cli.websocket_frames import FrameLengthGuard

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
"""Largest accepted message (bytes); gateway frames are at most ~32 KiB."""

_READ_SIZE = 65536
_BLANK_LINE = re.compile(b"\n\r?\n")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_ABNORMAL = 1006
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011


class WebSocketError(Exception):
    """Base class of every WebSocket failure."""


class WebSocketHandshakeError(WebSocketError):
    """The HTTP upgrade failed (bad URL, refused, non-101 answer, garbage)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class WebSocketClosed(WebSocketError):
    """The connection is closed; `code` is the close code (1006: lost without a close frame)."""

    def __init__(self, code: int, reason: str = "", *, local: bool = False) -> None:
        who = "locally" if local else "by peer"
        super().__init__(f"websocket closed {who}: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason
        self.local = local


class WebSocketTimeout(WebSocketError, TimeoutError):
    """A bounded wait (handshake, receive, ping, close) expired."""


@dataclass(frozen=True)
class WebSocketURL:
    """A parsed ws:// or wss:// URL."""

    secure: bool
    host: str
    port: int
    target: str

    @property
    def host_header(self) -> str:
        default = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_websocket_url(url: str) -> WebSocketURL:
    """Split a ws/wss URL into what the TCP connect and the upgrade request need."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebSocketHandshakeError(f"bad websocket URL {url!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        raise WebSocketHandshakeError(f"websocket URL must be ws:// or wss://, got {url!r}")
    if not parts.hostname:
        raise WebSocketHandshakeError(f"websocket URL has no host: {url!r}")
    secure = parts.scheme == "wss"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return WebSocketURL(
        secure=secure,
        host=parts.hostname,
        port=port if port is not None else (443 if secure else 80),
        target=target,
    )


class _Held:
    """An anyio lock taken without anyio's yield when nobody holds it (every frame takes
    one, and the read or write inside yields anyway); `released` runs before it is let go.
    A class, not a generator context manager: it is on the path of every frame."""

    __slots__ = ("_lock", "_released")

    def __init__(self, lock: anyio.Lock, released: Callable[[], None] | None = None) -> None:
        self._lock = lock
        self._released = released

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except anyio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(self, *_exc: object) -> None:
        try:
            if self._released is not None:
                self._released()
        finally:
            self._lock.release()


class WebSocketConnection:
    """An open WebSocket connection (either role) over an anyio ByteStream."""

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        ws: WSConnection,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        path: str = "/",
        subprotocol: str | None = None,
        after_handshake: bytes = b"",
    ) -> None:
        """`after_handshake`: bytes read with the handshake (wsproto already holds them)."""
        self._stream = stream
        self._ws = ws
        self._max_message_size = max_message_size
        self.path = path
        """Request target: the client's URL path, or what a server's client asked for."""
        self.subprotocol = subprotocol
        self._send_lock = anyio.Lock()
        self._recv_lock = anyio.Lock()
        self._progress: anyio.Event | None = None
        """Set (and dropped) whenever the reader processed bytes or let go of the stream:
        a task that waits for a pong or a close reply while another reads wakes on it,
        checks, and takes over the reading when nobody else does it. Made only when
        such a task waits (`_progress_event`): the reader passes here for every frame."""
        self._ready: deque[str | bytes] = deque()
        self._unparsed = False
        """The application's reads parse frames only up to the next whole message, so a
        close behind messages it has not taken is answered after them, not before: the
        echo of those messages (a reply to each) stays possible. True while frames after
        that message may be left in wsproto's buffer."""
        self._text_parts: list[str] = []
        self._bytes_parts: list[bytes] = []
        self._partial_size = 0
        self._close: WebSocketClosed | None = None
        self._closed_event = anyio.Event()
        self._pong_waiters: dict[bytes, anyio.Event] = {}
        self._stream_closed = False
        self._ping_counter = 0
        self._guard = FrameLengthGuard(max_message_size)
        self._too_big = self._guard.feed(after_handshake)
        self._close_wait: tuple[anyio.CancelScope, float] | None = None
        """While aclose(idle=True) waits: its scope, pushed back by every read."""
        self._close_sent: WebSocketClosed | None = None  # the close aclose() sent, if any

    # -- state -----------------------------------------------------------------

    @property
    def closed(self) -> WebSocketClosed | None:
        """None while open; else the close (code, reason, who closed)."""
        return self._close

    async def __aenter__(self) -> WebSocketConnection:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- sending ---------------------------------------------------------------

    async def send_text(self, text: str, *, timeout: float | None = None) -> None:
        await self._send_event(TextMessage(data=text), timeout)

    async def send_binary(self, data: bytes, *, timeout: float | None = None) -> None:
        await self._send_event(BytesMessage(data=bytes(data)), timeout)

    async def _send_event(self, event: Event, timeout: float | None) -> None:
        if self._close is not None:
            raise self._close
        if timeout is None:  # no cancel scope per frame when nothing bounds it
            await self._write(event)
            return
        try:
            with anyio.fail_after(timeout):
                await self._write(event)
        except TimeoutError:
            raise WebSocketTimeout("websocket send timed out") from None

    async def _write(self, event: Event, *, closing: WebSocketClosed | None = None) -> None:
        async with _Held(self._send_lock):
            if self._ws.state is not ConnectionState.OPEN and not isinstance(
                event, CloseConnection
            ):
                raise self._close or WebSocketClosed(CLOSE_ABNORMAL, "not open", local=True)
            try:
                data = self._ws.send(event)
            except LocalProtocolError as exc:
                raise WebSocketClosed(CLOSE_ABNORMAL, str(exc), local=True) from None
            if closing is not None:
                # With the state change, not before: a receiver that saw our close while
                # the state was still OPEN took it for the end and dropped what followed.
                self._mark_closed_pending(closing)
            try:
                await self._stream.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                self._mark_closed(WebSocketClosed(CLOSE_ABNORMAL, f"send failed: {exc!r}"))
                raise self._close or WebSocketClosed(CLOSE_ABNORMAL) from None

    # -- receiving -------------------------------------------------------------

    async def receive(self, *, timeout: float | None = None) -> str | bytes:
        """Next whole message: str for text, bytes for binary. Raises WebSocketClosed."""
        if self._ready and not self._recv_lock.locked():
            return self._ready.popleft()  # parsed by an earlier read: nothing to wait for
        if timeout is None:  # no cancel scope per frame when nothing bounds it
            return await self._receive()
        try:
            with anyio.fail_after(timeout):
                return await self._receive()
        except TimeoutError:
            raise WebSocketTimeout("websocket receive timed out") from None

    async def _receive(self) -> str | bytes:
        async with self._reading():
            # frames that came with the handshake, or that an earlier read left unparsed
            await self._process_events(lazy=True)
            while not self._ready:
                if self._close is not None and (
                    self._stream_closed or self._ws.state is not ConnectionState.LOCAL_CLOSING
                ):
                    raise self._close
                await self._receive_step(lazy=True)
            return self._ready.popleft()

    async def _receive_step(self, *, lazy: bool = False) -> None:
        """Read once from the stream and process the events it produced: every one, or with
        `lazy` those up to the first whole message. Frames an earlier lazy read left are
        processed first, without a read: a pong or a close reply may be among them."""
        if self._unparsed and not lazy:
            await self._process_events(lazy=False)
            return
        try:
            data: bytes | None = await self._stream.receive(_READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            data = None
        if data and self._too_big is None:
            self._too_big = self._guard.feed(data)
        if data and self._close_wait is not None:  # the peer still talks: wait on for it
            scope, idle = self._close_wait
            scope.deadline = max(scope.deadline, anyio.current_time() + idle)
        try:
            self._ws.receive_data(data)
        except (LocalProtocolError, RemoteProtocolError) as exc:
            self._mark_closed(WebSocketClosed(CLOSE_ABNORMAL, str(exc)))
            await self._close_stream()
            return
        await self._process_events(lazy=lazy)

    def _reading(self) -> _Held:
        """Hold the stream's read side; whoever waits on another reader hears the release."""
        return _Held(self._recv_lock, self._kick)

    def _kick(self) -> None:
        progress, self._progress = self._progress, None
        if progress is not None:
            progress.set()

    def _progress_event(self) -> anyio.Event:
        if self._progress is None:
            self._progress = anyio.Event()
        return self._progress

    def _readable(self) -> bool:
        """Bytes may still come: the stream is open and no close has been answered."""
        state = self._ws.state
        return not self._stream_closed and (
            state is ConnectionState.OPEN or state is ConnectionState.LOCAL_CLOSING
        )

    async def _process_events(self, *, lazy: bool) -> None:
        await self._events(lazy)
        if self._too_big is not None and self._close is None and not self._unparsed:
            # the messages before the oversized one are delivered first
            await self._fail(CLOSE_MESSAGE_TOO_BIG, f"message too big ({self._too_big} bytes)")
        self._kick()  # a task waiting for a pong or a close reply checks again

    async def _events(self, lazy: bool) -> None:
        self._unparsed = False
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._text_parts.append(event.data)
                self._partial_size += len(event.data.encode())
                if await self._check_size():
                    return
                if event.message_finished:
                    self._ready.append("".join(self._text_parts))
                    self._text_parts = []
                    self._partial_size = 0
                    if lazy:
                        self._unparsed = True  # wsproto keeps the rest in its buffer
                        return
            elif isinstance(event, BytesMessage):
                self._bytes_parts.append(bytes(event.data))
                self._partial_size += len(event.data)
                if await self._check_size():
                    return
                if event.message_finished:
                    self._ready.append(b"".join(self._bytes_parts))
                    self._bytes_parts = []
                    self._partial_size = 0
                    if lazy:
                        self._unparsed = True  # wsproto keeps the rest in its buffer
                        return
            elif isinstance(event, Ping):
                if self._ws.state is ConnectionState.OPEN:
                    with contextlib.suppress(WebSocketClosed):
                        await self._write(event.response())
            elif isinstance(event, Pong):
                waiter = self._pong_waiters.pop(bytes(event.payload), None)
                if waiter is not None:
                    waiter.set()
            elif isinstance(event, CloseConnection):
                await self._on_close_frame(event)
                return

    async def _check_size(self) -> bool:
        if self._partial_size <= self._max_message_size:
            return False
        await self._fail(CLOSE_MESSAGE_TOO_BIG, "message too big")
        return True

    async def _on_close_frame(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING:
            # Peer started the close: answer it, then drop the transport.
            with anyio.move_on_after(1.0):
                with contextlib.suppress(WebSocketClosed):
                    await self._write(event.response())
            self._mark_closed(WebSocketClosed(event.code, event.reason or ""))
        elif state is ConnectionState.OPEN:
            # wsproto reports a protocol violation as a close event without closing.
            await self._fail(event.code, event.reason or "protocol error")
            return
        elif event.code == CLOSE_ABNORMAL:
            # wsproto's word for EOF (no peer may send 1006): our close got no answer.
            self._lost_while_closing("connection lost before the close reply")
        else:
            # Answer to our own close (LOCAL_CLOSING -> CLOSED).
            self._mark_closed(self._close or WebSocketClosed(event.code, event.reason or ""))
        await self._close_stream()

    def _lost_while_closing(self, reason: str) -> None:
        """RFC 6455 7.1.5: closed with no close frame received is 1006, even after we sent
        ours; a 1000 here would report a clean end when replies may have been lost. A close
        we sent for a failure of our own (1009, 1011) keeps its code: it says why."""
        if self._close is None or self._close is self._close_sent:
            self._close = WebSocketClosed(CLOSE_ABNORMAL, reason)
        self._mark_closed(self._close)

    async def _fail(self, code: int, reason: str) -> None:
        """Close after a local protocol decision; the error says who closed and why."""
        self._mark_closed(WebSocketClosed(code, reason, local=True))
        with anyio.move_on_after(1.0):
            with contextlib.suppress(WebSocketClosed):
                await self._write(CloseConnection(code=code, reason=reason))
        await self._close_stream()

    def _mark_closed(self, close: WebSocketClosed) -> None:
        if self._close is None:
            self._close = close
        self._closed_event.set()
        for waiter in self._pong_waiters.values():
            waiter.set()
        self._pong_waiters.clear()
        self._kick()

    # -- ping ------------------------------------------------------------------

    async def ping(self, payload: bytes | None = None, *, timeout: float = 5.0) -> float:
        """Send a ping and wait for its pong; returns the round trip in seconds.

        Pongs are seen by whoever is receiving; when no task is inside
        `receive()`, this call reads the stream itself (buffering any messages
        for the next `receive()`).
        """
        if payload is None:
            self._ping_counter += 1
            payload = self._ping_counter.to_bytes(8, "big")
        payload = bytes(payload)
        waiter = anyio.Event()
        self._pong_waiters[payload] = waiter
        start = time.monotonic()
        try:
            with anyio.fail_after(timeout):
                await self._write(Ping(payload=payload))
                while not waiter.is_set():
                    if self._recv_lock.locked():
                        await self._progress_event().wait()  # the reader sees the pong, or lets go
                        continue
                    async with self._reading():
                        if waiter.is_set() or not self._readable():
                            break
                        await self._receive_step()
                if self._close is not None:
                    raise self._close
        except TimeoutError:
            raise WebSocketTimeout("no pong before the timeout") from None
        finally:
            self._pong_waiters.pop(payload, None)
        return time.monotonic() - start

    async def keepalive(self, interval: float, timeout: float) -> None:
        """Ping every `interval` s; close with 1011 and raise when a pong is late.

        Run it in a task group next to a task that keeps calling `receive()`.
        """
        while True:
            await anyio.sleep(interval)
            try:
                await self.ping(timeout=timeout)
            except WebSocketTimeout:
                await self.aclose(CLOSE_INTERNAL_ERROR, "keepalive timeout", timeout=1.0)
                raise

    # -- closing ---------------------------------------------------------------

    async def aclose(
        self,
        code: int = CLOSE_NORMAL,
        reason: str = "",
        *,
        timeout: float = 5.0,
        idle: bool = False,
    ) -> None:
        """Close handshake bounded by `timeout`, then close the transport. Idempotent.

        With `idle` the timeout counts from the last bytes received: a peer may finish
        the message it is sending before it answers (RFC 6455 5.5.1), and a large one
        on a slow path takes longer than any fixed bound.
        """
        with anyio.move_on_after(timeout, shield=True) as scope:
            self._close_wait = (scope, timeout) if idle else None
            try:
                if self._close is None and self._ws.state is ConnectionState.OPEN:
                    closing = WebSocketClosed(code, reason, local=True)
                    if code in (CLOSE_NORMAL, CLOSE_GOING_AWAY):  # not a failure of our own
                        self._close_sent = closing
                    with contextlib.suppress(WebSocketClosed):
                        await self._write(
                            CloseConnection(code=code, reason=reason), closing=closing
                        )
                    # Wait for the peer's close frame (someone must read it).
                    while self._local_closing():
                        if self._recv_lock.locked():
                            await self._progress_event().wait()  # the reader sees it, or lets go
                            continue
                        async with self._reading():
                            if self._local_closing():
                                await self._receive_step()
            finally:
                self._close_wait = None
            self._mark_closed(self._close or WebSocketClosed(code, reason, local=True))
        if self._ws.state is ConnectionState.LOCAL_CLOSING:  # timed out, or EOF, unanswered
            self._lost_while_closing(f"no close reply within {timeout:g} s")
        await self._close_stream()

    def _local_closing(self) -> bool:
        # A method call, so the type checker does not narrow the state across awaits.
        return self._ws.state is ConnectionState.LOCAL_CLOSING and not self._stream_closed

    def _mark_closed_pending(self, close: WebSocketClosed) -> None:
        # Later receive() calls see our close; the event fires when the peer answers.
        if self._close is None:
            self._close = close

    async def _close_stream(self) -> None:
        if self._stream_closed:
            return
        self._stream_closed = True
        self._closed_event.set()
        with anyio.move_on_after(1.0, shield=True) as scope:
            with contextlib.suppress(
                anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, ssl.SSLError
            ):
                await self._stream.aclose()
        if scope.cancelled_caught:
            await anyio.aclose_forcefully(self._stream)


# -- handshakes ---------------------------------------------------------------


async def _handshake_read(stream: anyio.abc.ByteStream, ws: WSConnection) -> bytes:
    """Read once and hand it to wsproto; the bytes, for what follows the head."""
    try:
        data: bytes | None = await stream.receive(_READ_SIZE)
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        data = None
    if data is None:
        raise WebSocketHandshakeError("connection closed during the websocket handshake")
    try:
        ws.receive_data(data)
    except (LocalProtocolError, RemoteProtocolError) as exc:
        raise WebSocketHandshakeError(f"bad websocket handshake: {exc}") from None
    return data


def _after_head(seen: bytes) -> bytes:
    """The bytes after the handshake's HTTP head (h11 ends a head at the same blank line)."""
    end = _BLANK_LINE.search(seen)
    return seen[end.end() :] if end else b""


def _handshake_event(ws: WSConnection) -> Event | None:
    """First handshake event, leaving frames that followed it unparsed for the connection."""
    try:
        for event in ws.events():
            if isinstance(event, AcceptConnection | RejectConnection | Request):
                return event
    except (LocalProtocolError, RemoteProtocolError) as exc:
        raise WebSocketHandshakeError(f"bad websocket handshake: {exc}") from None
    return None


class _ClosedOnFailure:
    """Closes the handshake's stream on any failure; time-outs and lost transports get named.

    `stream` follows the handshake when it wraps the stream (TLS on the server side).
    """

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream

    async def __aenter__(self) -> _ClosedOnFailure:
        return self

    async def __aexit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if exc is None:
            return
        await anyio.aclose_forcefully(self.stream)
        if isinstance(exc, TimeoutError):
            raise WebSocketTimeout("websocket handshake timed out") from None
        if isinstance(exc, anyio.BrokenResourceError | anyio.ClosedResourceError | OSError):
            words = failure_words(exc, "the connection was closed")
            raise WebSocketHandshakeError(f"connection failed during handshake: {words}") from None


async def client_handshake(
    stream: anyio.abc.ByteStream,
    *,
    host: str,
    target: str = "/",
    subprotocols: Sequence[str] = (),
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
    timeout: float = 10.0,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> WebSocketConnection:
    """Upgrade an already-connected stream as a client (the stream is closed on failure)."""
    ws = WSConnection(ConnectionType.CLIENT)
    async with _ClosedOnFailure(stream):
        with anyio.fail_after(timeout):
            await stream.send(
                ws.send(
                    Request(
                        host=host,
                        target=target,
                        subprotocols=list(subprotocols),
                        extra_headers=list(extra_headers),
                    )
                )
            )
            seen = b""
            while True:
                seen += await _handshake_read(stream, ws)
                event = _handshake_event(ws)
                if event is not None:
                    if isinstance(event, AcceptConnection):
                        return WebSocketConnection(
                            stream,
                            ws,
                            max_message_size=max_message_size,
                            path=target,
                            subprotocol=event.subprotocol,
                            after_handshake=_after_head(seen),
                        )
                    if isinstance(event, RejectConnection):
                        raise WebSocketHandshakeError(
                            f"websocket upgrade refused with HTTP {event.status_code}",
                            status_code=event.status_code,
                        )


def default_ssl_context() -> ssl.SSLContext:
    """System CAs plus certifi's bundle (minimal systems and containers often lack the former)."""
    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(certifi.where())
    except (ImportError, OSError):
        pass
    return context


async def connect_websocket(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    subprotocols: Sequence[str] = (),
) -> WebSocketConnection:
    """Open ws:// (plain TCP) or wss:// (TLS; system + certifi CAs unless `ssl_context`)."""
    parsed = parse_websocket_url(url)
    try:
        with anyio.fail_after(timeout):
            if parsed.secure:
                context = ssl_context or default_ssl_context()
                stream: anyio.abc.ByteStream = await anyio.connect_tcp(
                    parsed.host,
                    parsed.port,
                    ssl_context=context,
                    tls_hostname=parsed.host,
                    tls_standard_compatible=False,
                )
            else:
                stream = await anyio.connect_tcp(parsed.host, parsed.port)
    except TimeoutError:
        raise WebSocketTimeout(f"connecting to {url} timed out") from None
    except (OSError, ssl.SSLError, anyio.BrokenResourceError) as exc:
        raise WebSocketHandshakeError(f"cannot connect to {url}: {exc}") from None
    _read_at_most(stream, _READ_SIZE)
    return await client_handshake(
        stream,
        host=parsed.host_header,
        target=parsed.target,
        subprotocols=subprotocols,
        timeout=timeout,
        max_message_size=max_message_size,
    )


def _read_at_most(stream: anyio.abc.ByteStream, size: int) -> None:
    """Have asyncio read at most `size` bytes at a time from the stream's socket.

    asyncio's socket transport reads into a fresh 256 KiB buffer and shrinks it to what
    came; that size is above malloc's mmap threshold, so every read maps, faults in and
    unmaps memory (8 us against 1 us for a 2.5 KB read here), and a gateway pushes a
    frame or two per read. 64 KiB comes from the heap. Nothing happens where the stream
    is not anyio's asyncio socket stream (trio; other anyio internals).
    """
    inner = stream.transport_stream if isinstance(stream, TLSStream) else stream
    transport = getattr(inner, "_transport", None)
    current = getattr(transport, "max_size", None)
    if isinstance(current, int) and current > size:
        transport.max_size = size  # type: ignore[union-attr]


async def serve_websocket_connection(
    stream: anyio.abc.ByteStream,
    *,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    subprotocol: str | None = None,
) -> WebSocketConnection:
    """Accept one WebSocket client on an accepted stream (TLS-wrapped first if a context is given).

    Requests that are not a WebSocket upgrade get an HTTP 400 and raise
    `WebSocketHandshakeError`; the stream is closed on any failure.
    """
    ws = WSConnection(ConnectionType.SERVER)
    async with _ClosedOnFailure(stream) as guard:
        with anyio.fail_after(timeout):
            if ssl_context is not None:
                try:
                    stream = guard.stream = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=ssl_context, standard_compatible=False
                    )
                except (ssl.SSLError, OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
                    raise WebSocketHandshakeError(f"TLS handshake failed: {exc!r}") from None
            seen = b""
            while True:
                try:
                    seen += await _handshake_read(stream, ws)
                    event = _handshake_event(ws)
                except WebSocketHandshakeError:
                    await _send_reject(stream, ws)
                    raise
                if event is not None and isinstance(event, Request):
                    chosen = subprotocol if subprotocol in event.subprotocols else None
                    await stream.send(ws.send(AcceptConnection(subprotocol=chosen)))
                    return WebSocketConnection(
                        stream,
                        ws,
                        max_message_size=max_message_size,
                        path=event.target,
                        subprotocol=chosen,
                        after_handshake=_after_head(seen),
                    )


async def _send_reject(stream: anyio.abc.ByteStream, ws: WSConnection) -> None:
    body = b"expected a websocket upgrade\n"
    try:
        data = ws.send(
            RejectConnection(
                status_code=400,
                headers=[(b"content-length", str(len(body)).encode())],
                has_body=True,
            )
        )
        data += ws.send(RejectData(data=body))
        with anyio.move_on_after(1.0):
            await stream.send(data)
    except (LocalProtocolError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
