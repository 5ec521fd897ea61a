"""Warm origin connections: TCP and TLS the session keeps per origin between commands.

Over the mixnet a new HTTPS connection costs a TCP and a TLS round trip before the
request's own. A command that attaches with `open_http` gets a connection the session
already holds to that origin, or a new one that the session keeps when the command is
done with it at a clean HTTP boundary, for `IDLE_TIMEOUT` seconds. The command still
speaks HTTP/1.1 itself; the session terminates TLS (that is what lets a connection
outlive the command) and watches the bytes pass by, h11 as a parser with nothing
rewritten, to know where each request and response ends.

What a connection is keyed on is what it must never cross: the dial target, the TLS
server name, verification and the CA bundle's bytes, and the tunnel generation. The
session itself is per user, per network and per set of tunnel options, so those never
mix either. A command that asks `reuse: false` (`--fresh-connections`) neither takes a
warm connection nor leaves its own behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import h11

from smolmix_cli.apps.failure_text import stream_failure
from smolmix_cli.session import protocol as proto
from smolmix_cli.session.cork import HOLD_FOR_REQUEST, Cork

if TYPE_CHECKING:
    import ssl

IDLE_TIMEOUT = 30.0
"""Seconds a warm connection waits for the next command. Servers close idle keep-alive
connections after 5-75 s; past that a kept one would only cost a failed try."""
MAX_PER_ORIGIN = 4
CHUNK = 65536
TLS_CONTEXTS_KEPT = 8


@dataclass(frozen=True, slots=True)
class OriginKey:
    host: str
    port: int
    server_name: str | None
    verify: bool
    ca_digest: str
    generation: int


def ca_digest(cafile: str | None) -> str:
    """The CA bundle by content: a command's bundle is a temp file with a new path each time."""
    if cafile is None:
        return ""
    try:
        with open(cafile, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return f"unreadable:{cafile}"


class TlsContexts:
    """Client TLS contexts by (verify, CA bundle content), built once per session.

    `apps.tls.client_context` caches by path, but a command's bundle is a new temp file
    each time, and a context loads certifi's roots: 30-50 ms of CPU on an idle machine
    (more under load), spent between the TCP handshake and the ClientHello, where it
    adds to every new origin's round trips."""

    def __init__(self, kept: int = TLS_CONTEXTS_KEPT) -> None:
        self.kept = kept
        self._contexts: OrderedDict[tuple[bool, str], ssl.SSLContext] = OrderedDict()
        self.built = 0

    def __len__(self) -> int:
        return len(self._contexts)

    def get(self, verify: bool, cafile: str | None, digest: str) -> ssl.SSLContext:
        from smolmix_cli.apps import tls

        key = (verify, digest if verify else "")
        context = self._contexts.get(key)
        if context is None:
            context = tls.client_context(verify=verify, cafile=cafile if verify else None)
            self.built += 1
            self._contexts[key] = context
            while len(self._contexts) > self.kept:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(key)
        return context


@dataclass(eq=False)
class Warm:
    stream: anyio.abc.ByteStream
    remote: tuple[str, int] | None
    tls_version: str
    idle_since: float = field(default_factory=time.monotonic)
    cork: Cork | None = None
    """Holds the TLS Finished for the first request (session/cork.py) until released."""

    async def release(self) -> None:
        """Send a held flight now: the connection goes idle, or its command wrote nothing."""
        if self.cork is not None:
            await self.cork.release()
            self.cork = None


class WarmPool:
    """Idle connections per origin; the newest first, expired ones closed."""

    def __init__(self, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.idle_timeout = idle_timeout
        self._idle: dict[OriginKey, list[Warm]] = {}
        self.opened = 0
        """Connections (TCP, and TLS on https) the session opened for commands."""
        self.reused = 0

    def __len__(self) -> int:
        return sum(len(v) for v in self._idle.values())

    async def take(self, key: OriginKey) -> Warm | None:
        await self.expire()
        idle = self._idle.get(key)
        while idle:
            warm = idle.pop()
            if await _alive(warm.stream):
                self.reused += 1
                return warm
            await anyio.aclose_forcefully(warm.stream)
        return None

    async def put(self, key: OriginKey, warm: Warm) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) >= MAX_PER_ORIGIN:
            await anyio.aclose_forcefully(warm.stream)
            return
        try:
            await warm.release()
        except Exception:
            await anyio.aclose_forcefully(warm.stream)
            return
        except BaseException:  # cancelled while sending: the connection is not kept
            await anyio.aclose_forcefully(warm.stream)
            raise
        warm.idle_since = time.monotonic()
        idle.append(warm)

    async def expire(self, generation: int | None = None) -> None:
        """Close what idled too long (or belongs to another tunnel generation than `generation`)."""
        now = time.monotonic()
        for key in list(self._idle):
            keep = []
            for warm in self._idle[key]:
                stale = now - warm.idle_since >= self.idle_timeout
                if stale or (generation is not None and key.generation != generation):
                    await anyio.aclose_forcefully(warm.stream)
                else:
                    keep.append(warm)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for warm in conns:
                await anyio.aclose_forcefully(warm.stream)


async def _alive(stream: anyio.abc.ByteStream) -> bool:
    """An idle connection has nothing to say: a byte or an end now means the server left."""
    try:
        with anyio.move_on_after(0):
            await stream.receive(1)
            return False
    except Exception:
        return False
    return True


class ExchangeWatch:
    """Where each request and response ends, from the bytes one connection carries.

    `reusable` once the last response ended and neither side asked to close. Anything it
    cannot follow (an upgrade, a pipelined request, bad framing) makes the connection
    single-use: the bytes still pass unchanged, the session just does not keep it.
    """

    def __init__(self) -> None:
        self._request: h11.Connection | None = h11.Connection(h11.SERVER)
        self._response: h11.Connection | None = None
        self.broken = False
        self.exchanges = 0

    @property
    def reusable(self) -> bool:
        request = self._request
        return (
            not self.broken
            and self._response is None
            and request is not None
            and request.their_state is h11.IDLE
            and not request.trailing_data[0]
        )

    def up(self, data: bytes) -> None:
        if self.broken or not data:
            return
        if self._request is None:
            self.broken = True  # a request before the last answer ended: pipelined
            return
        try:
            self._request.receive_data(data)
            while True:
                event = self._request.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                if isinstance(event, h11.Request):
                    self._expect_response(event)
                elif isinstance(event, h11.EndOfMessage):
                    rest, _ = self._request.trailing_data
                    self._request = None  # the next request is parsed once this answer ended
                    if rest:
                        self.broken = True  # pipelined: not followed
                    return
        except (h11.ProtocolError, ValueError):
            self.broken = True

    def _expect_response(self, request: h11.Request) -> None:
        if self._response is not None or request.method == b"CONNECT":
            self.broken = True
            return
        keep = [(k, v) for k, v in request.headers if k in (b"host", b"connection")]
        response = h11.Connection(h11.CLIENT)
        response.send(h11.Request(method=request.method, target=request.target, headers=keep))
        response.send(h11.EndOfMessage())
        self._response = response

    def down(self, data: bytes) -> None:
        if self.broken:
            return
        response = self._response
        if response is None:
            self.broken = True  # bytes nobody asked for
            return
        try:
            response.receive_data(data)
            while True:
                event = response.next_event()
                if event is h11.NEED_DATA:
                    return
                if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                    self.broken = True  # 101 or a close-delimited body
                    return
                if isinstance(event, h11.EndOfMessage):
                    self._finish(response)
                    return
        except (h11.ProtocolError, ValueError):
            self.broken = True

    def _finish(self, response: h11.Connection) -> None:
        try:
            response.start_next_cycle()  # raises unless both sides allow keep-alive
        except h11.LocalProtocolError:
            self.broken = True
            return
        if response.trailing_data[0]:
            self.broken = True  # bytes after the response
            return
        self.exchanges += 1
        self._response = None
        self._request = h11.Connection(h11.SERVER)


async def serve_exchanges(
    local: anyio.abc.ByteStream,
    warm: Warm,
    first: bytes,
    watch: ExchangeWatch,
) -> tuple[int, int]:
    """Carry a command's HTTP exchanges until it closes its end; (bytes up, bytes down).

    The way back is framed as an `end_mark` stream. Unlike a plain splice the command's
    close is not passed on: the connection may stay warm (`watch.reusable`). A held TLS
    Finished leaves with the command's first bytes, or alone after `HOLD_FOR_REQUEST`.
    """
    moved = [0, 0]
    remote = warm.stream

    async def first_bytes() -> bytes:
        if first or warm.cork is None:
            return first
        with anyio.move_on_after(HOLD_FOR_REQUEST):
            return await local.receive(CHUNK)
        await warm.release()  # no request yet: the server gets its Finished alone
        return await local.receive(CHUNK)

    async def upward() -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            try:
                data = await first_bytes()
                while True:
                    if data:
                        watch.up(data)
                        await remote.send(data)
                        moved[0] += len(data)
                        warm.cork = None  # what it held left with these bytes
                    data = await local.receive(CHUNK)
            except anyio.EndOfStream:
                pass
        tg.cancel_scope.cancel()  # the command is done (or gone): so is this attachment

    async def downward() -> None:
        try:
            while True:
                try:
                    data = await remote.receive(CHUNK)
                except anyio.EndOfStream:
                    watch.broken = True
                    await local.send(proto.end_frame())
                    with contextlib.suppress(Exception):
                        await local.send_eof()
                    return
                except Exception as exc:  # the origin reset, the tunnel broke
                    watch.broken = True
                    with contextlib.suppress(Exception):
                        await local.send(proto.end_frame(stream_failure(exc)))
                    tg.cancel_scope.cancel()
                    return
                watch.down(data)
                await local.send(proto.data_frame(data))
                moved[1] += len(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            watch.broken = True
            tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(upward)
        tg.start_soon(downward)
    return moved[0], moved[1]
