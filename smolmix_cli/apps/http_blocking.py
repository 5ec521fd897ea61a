"""The blocking fetch shell: curl's HTTP/1.1 over origin streams someone else opened.

An attached `smolmix fetch` asks the background session for warm origin connections (the
session does TCP and TLS) and only speaks HTTP over them: blocking reads and writes, no
event loop, so the command never imports asyncio or anyio. The protocol and curl's rules
are the sans-io cores the async engine (http_client.py) calls too: http_exchange.py (h11
and the failure words), http_rules.py (what a head means), http_request.py (the request
and its redirect hops). What it cannot honour (-m, --connect-timeout, --retry, streamed
uploads) is for the caller to route to the async engine (`handles`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from smolmix_cli.apps import http_rules as rules
from smolmix_cli.apps.errors import AppError, EmptyReply, RecvError, SendError
from smolmix_cli.apps.failure_text import stream_failure
from smolmix_cli.apps.http_exchange import (
    DISCARD_LIMIT,
    NEED_DATA,
    READ_SIZE,
    HttpExchange,
    body_data,
    write_failure,
)
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_origin import describe, origin_key, record_idle, record_session_origin
from smolmix_cli.apps.http_request import OutgoingRequest, first_request
from smolmix_cli.apps.http_route import route
from smolmix_cli.apps.http_transfer import RequestHead, ResponseHead, Transfer
from smolmix_cli.apps.http_url import Url, parse_url

_MAX_IDLE_PER_ORIGIN = 4


class OriginStream(Protocol):
    def send(self, data: bytes) -> None: ...

    def receive(self, max_bytes: int) -> bytes:
        """b"" at the end of the stream."""
        ...

    def close(self) -> None: ...


class Origin(Protocol):
    @property
    def stream(self) -> OriginStream: ...
    @property
    def reused(self) -> bool: ...
    @property
    def tls_version(self) -> str: ...
    @property
    def tls_seconds(self) -> float: ...
    @property
    def remote(self) -> tuple[str, int] | None: ...


class Origins(Protocol):
    """Who opens origin connections (session/attach.BlockingSession): TCP and TLS are theirs."""

    def open_origin(
        self,
        host: str,
        port: int,
        *,
        server_name: str | None,
        verify: bool,
        cafile: str | None,
        fresh: bool,
    ) -> Origin: ...


def handles(opts: FetchOptions) -> bool:
    """Whether this shell can run a fetch with these options exactly as the async engine."""
    return (
        opts.max_time is None
        and opts.connect_timeout is None
        and opts.retry == 0
        and (opts.body is None or opts.body.pieces() is not None)
    )


class Connection:
    """One origin stream and its exchange state."""

    def __init__(self, origin: Origin, key: tuple[Any, ...]) -> None:
        self.stream = origin.stream
        self.key = key
        self.exchange = HttpExchange()
        self.tls_version = origin.tls_version
        self.remote_ip = origin.remote[0] if origin.remote else ""
        self.local_ip = ""
        self.local_port = 0

    def close(self) -> None:
        self.stream.close()

    def send(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.stream.send(data)
        except Exception as exc:
            raise SendError(f"Send failure: {stream_failure(exc)}") from None

    def next_event(self, *, head: bool) -> Any:
        while True:
            event = self.exchange.next_event(head=head)
            if event is not NEED_DATA:
                return event
            try:
                data = self.stream.receive(READ_SIZE)
            except Exception as exc:  # OS errors, or the session's word that it broke
                raise RecvError(f"Recv failure: {stream_failure(exc)}") from None
            self.exchange.receive(data)

    def send_request(
        self,
        request: OutgoingRequest,
        transfer: Transfer,
        on_request: Callable[[RequestHead], None] | None,
    ) -> ResponseHead:
        exchange = self.exchange
        self.send(exchange.request_head(request, transfer, on_request))
        if request.body is not None:
            for piece in request.body.pieces() or ():
                self.send(exchange.body_piece(piece, transfer))
        self.send(exchange.request_end(transfer))
        while True:
            head = exchange.response_head(self.next_event(head=True), request, transfer)
            if head is not None:
                return head

    def drain(self) -> bool:
        """Read and drop a redirect body; False once it closed itself instead."""
        total = 0
        try:
            while not self.exchange.body_done():
                data = body_data(self.next_event(head=False))
                if data is None:
                    break
                total += len(data)
                if total > DISCARD_LIMIT:
                    self.close()
                    return False
        except AppError:
            self.close()
            return False
        return True


class BlockingHttpClient:
    """Fetches URLs over an Origins with a keep-alive pool, as HttpClient does."""

    def __init__(
        self, origins: Origins, *, on_request: Callable[[RequestHead], None] | None = None
    ) -> None:
        self._origins = origins
        self._on_request = on_request
        self._idle: dict[tuple[Any, ...], list[Connection]] = {}

    def close(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def fetch(
        self,
        url: str,
        sink: Callable[[bytes], None],
        opts: FetchOptions,
        *,
        on_head: Callable[[ResponseHead], None] | None,
        transfer: Transfer,
    ) -> Transfer:
        """HttpClient.fetch's contract, for options `handles` accepts."""
        try:
            parsed = parse_url(url)
            transfer._t0 = time.monotonic()
            rules.start_attempt(transfer)
            self._chain(parsed, sink, opts, transfer, on_head)
        except AppError as exc:
            transfer.time_total = transfer.elapsed()
            transfer.errormsg = str(exc)
            exc.transfer = transfer
            raise
        transfer.time_total = transfer.elapsed()
        return transfer

    def _chain(
        self,
        url: Url,
        sink: Callable[[bytes], None],
        opts: FetchOptions,
        transfer: Transfer,
        on_head: Callable[[ResponseHead], None] | None,
    ) -> None:
        request = first_request(url, opts)
        while True:
            conn, head = self._exchange(request, opts, transfer)
            rules.record_head(request, head, opts, transfer)
            if on_head is not None:
                try:
                    on_head(head)
                except BaseException as exc:
                    conn.close()
                    if isinstance(exc, OSError):
                        raise write_failure(exc) from None
                    raise
            if rules.follows(head, opts):
                if conn.drain():
                    self._finish(conn)
                request = rules.next_hop(request, head, opts, transfer)
                continue
            self._deliver(conn, head, sink, opts, transfer)
            return

    def _exchange(
        self, request: OutgoingRequest, opts: FetchOptions, transfer: Transfer
    ) -> tuple[Connection, ResponseHead]:
        conn, reused = self._acquire(request.url, opts, transfer, fresh=False)
        try:
            return conn, conn.send_request(request, transfer, self._on_request)
        except (EmptyReply, SendError, RecvError):
            conn.close()
            if not reused or (request.body is not None and not request.body.replayable):
                raise
        # A kept-alive connection the server had already closed: one fresh try (seed rule).
        conn, _ = self._acquire(request.url, opts, transfer, fresh=True)
        try:
            return conn, conn.send_request(request, transfer, self._on_request)
        except BaseException:
            conn.close()
            raise

    def _acquire(
        self, url: Url, opts: FetchOptions, transfer: Transfer, *, fresh: bool
    ) -> tuple[Connection, bool]:
        """An idle connection of this command, else the session's (warm or new); -w as
        http_pool.ConnectionPool reports them."""
        key = origin_key(url, opts)
        idle = self._idle.get(key)
        https = url.scheme == "https"
        if idle and not fresh:
            conn = idle.pop()
            record_idle(transfer, url)
            describe(transfer, url, conn)
            return conn, True
        host, port = route(url.host, url.port, opts.connect_to, opts.resolve)
        origin = self._origins.open_origin(
            host,
            port,
            server_name=url.host if https else None,
            verify=opts.verify,
            cafile=opts.cafile,
            fresh=fresh,
        )
        record_session_origin(transfer, url, reused=origin.reused, tls_seconds=origin.tls_seconds)
        conn = Connection(origin, key)
        describe(transfer, url, conn)
        return conn, origin.reused

    def _finish(self, conn: Connection) -> None:
        """Keep `conn` for the next URL if h11 says it can carry another request."""
        if conn.exchange.next_cycle():
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < _MAX_IDLE_PER_ORIGIN:
                idle.append(conn)
                return
        conn.close()

    def _deliver(
        self,
        conn: Connection,
        head: ResponseHead,
        sink: Callable[[bytes], None],
        opts: FetchOptions,
        transfer: Transfer,
    ) -> None:
        verdict = rules.verdict(head, opts, transfer)
        if verdict.action == "close":
            conn.close()
        elif verdict.action == "discard" and conn.drain():
            self._finish(conn)
        if verdict.error is not None:
            raise verdict.error
        if verdict.action != "deliver":
            return
        decoder = rules.body_decoder(head, opts)
        try:
            while (data := body_data(conn.next_event(head=False))) is not None:
                if data:
                    transfer.size_download += len(data)
                    if decoder is not None:
                        data = decoder.feed(data)
                    if data:
                        _write(sink, data)
            if decoder is not None and (tail := decoder.flush()):
                _write(sink, tail)
        except BaseException:
            conn.close()
            raise
        self._finish(conn)
        if rules.fails_after_body(head, opts):
            raise rules.status_error(head)


def _write(sink: Callable[[bytes], None], data: bytes) -> None:
    try:
        sink(data)
    except AppError:
        raise
    except OSError as exc:
        raise write_failure(exc) from None
