"""HTTP/1.1 client engine for `smolmix fetch`: h11 over a Connector, curl's rules.

One `HttpClient` per invocation holds a per-origin pool, so several URLs to
the same origin ride one connection (over the mixnet a new connection costs
TCP and TLS round trips of a second or more each). Bodies stream from their
source and to the caller's sink in pieces; nothing large is buffered.

Timing follows curl's -w names; all times are seconds since the start of the
(last) attempt. Every failure is an `AppError` with curl's exit number and the
`Transfer` record attached as `.transfer`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import anyio

from smolmix_cli.apps import http_rules as rules
from smolmix_cli.apps.connector import Connector
from smolmix_cli.apps.errors import (
    AppError,
    EmptyReply,
    MalformedUrl,
    OperationTimeout,
    RecvError,
    SendError,
    UsageError,
)
from smolmix_cli.apps.http_connection import HttpConnection
from smolmix_cli.apps.http_exchange import body_data, write_failure
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_pool import ConnectionPool
from smolmix_cli.apps.http_request import OutgoingRequest, first_request
from smolmix_cli.apps.http_transfer import RequestHead, ResponseHead, Transfer
from smolmix_cli.apps.http_url import Url, parse_url

MAX_RETRY_DELAY = 600.0

BodySink = Callable[[bytes], Awaitable[None]]


class HttpClient:
    """Fetches URLs over a Connector with a shared keep-alive pool; use as async context.

    `on_request` sees every request head as sent (redirect hops and retries too),
    so `-v` shows what reached the server, not what the caller asked for.
    """

    def __init__(
        self, connector: Connector, *, on_request: Callable[[RequestHead], None] | None = None
    ) -> None:
        self._pool = ConnectionPool(connector)
        self._on_request = on_request

    @property
    def connections_opened(self) -> int:
        """New TCP connections made (keep-alive reuse shows as a small number)."""
        return self._pool.opened

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._pool.aclose()

    # -- public entry ------------------------------------------------------------

    async def fetch(
        self,
        url: str,
        sink: BodySink,
        options: FetchOptions | None = None,
        *,
        on_head: Callable[[ResponseHead], Awaitable[None]] | None = None,
        transfer: Transfer | None = None,
    ) -> Transfer:
        """Fetch one URL, writing the final body to `sink`; returns the Transfer record.

        `on_head` sees every response head (redirect hops and retried attempts too),
        for -i / -D / -v. Raises an AppError subclass (with `.transfer`) on failure.
        A caller that passes its own `transfer` still has the record when an outer
        deadline cancels the fetch (curl's -w reports timed-out transfers too).
        """
        opts = options or FetchOptions()
        transfer = transfer if transfer is not None else Transfer(url=url)
        start = time.monotonic()
        try:
            parsed = parse_url(url)
            attempt = 0
            while True:
                transfer._t0 = time.monotonic()
                written = [False]

                async def guarded_sink(data: bytes, _w: list[bool] = written) -> None:
                    _w[0] = True
                    await sink(data)

                def may_retry(retry_after: float | None, _attempt: int = attempt) -> bool:
                    if _attempt >= opts.retry:
                        return False
                    delay = _retry_delay(opts, _attempt, retry_after)
                    spent = time.monotonic() - start
                    return opts.retry_max_time is None or spent + delay <= opts.retry_max_time

                try:
                    with _attempt_deadline(opts, transfer):
                        await self._chain(parsed, guarded_sink, opts, transfer, on_head, may_retry)
                    break
                except _RetryableStatus as exc:
                    delay = _retry_delay(opts, attempt, exc.retry_after)
                except AppError as exc:
                    transient = isinstance(exc, OperationTimeout) or (
                        opts.retry_all_errors and not isinstance(exc, UsageError | MalformedUrl)
                    )
                    if not transient or written[0] or not may_retry(None):
                        raise
                    delay = _retry_delay(opts, attempt, None)
                attempt += 1
                transfer.num_retries = attempt
                await anyio.sleep(delay)
        except AppError as exc:
            transfer.time_total = transfer.elapsed()
            transfer.errormsg = str(exc)  # exitcode: the CLI's classification fills it in
            exc.transfer = transfer
            raise
        transfer.time_total = transfer.elapsed()
        return transfer

    # -- one attempt: the redirect chain -------------------------------------------

    async def _chain(
        self,
        url: Url,
        sink: BodySink,
        opts: FetchOptions,
        transfer: Transfer,
        on_head: Callable[[ResponseHead], Awaitable[None]] | None,
        may_retry: Callable[[float | None], bool],
    ) -> None:
        request = first_request(url, opts)
        while True:
            conn, head = await self.exchange(request, opts, transfer)
            rules.record_head(request, head, opts, transfer)
            if on_head is not None:
                try:
                    await on_head(head)
                except BaseException as exc:
                    await conn.aclose()
                    if isinstance(exc, OSError):
                        raise write_failure(exc) from None
                    raise
            if rules.follows(head, opts):
                await self._discard(conn)
                request = rules.next_hop(request, head, opts, transfer)
                continue
            if head.status in rules.RETRYABLE_STATUS:
                retry_after = _parse_retry_after(head.header("retry-after"))
                if may_retry(retry_after):
                    await self._discard(conn)
                    raise _RetryableStatus(retry_after)
            await self._deliver(conn, head, sink, opts, transfer)
            return

    # -- one request/response ------------------------------------------------------

    async def exchange(
        self, request: OutgoingRequest, opts: FetchOptions, transfer: Transfer
    ) -> tuple[HttpConnection, ResponseHead]:
        """One request on a pooled connection, up to its final head; the body is the caller's
        to read (`HttpConnection.next_event`) and the connection its to `release`.

        The httpx transport (api/httpx_transport.py) sends its own requests through here.
        """
        conn, reused = await self._pool.acquire(request.url, opts, transfer)
        try:
            return conn, await conn.send_request(request, transfer, self._on_request)
        except (EmptyReply, SendError, RecvError):
            await conn.aclose()
            if not reused or (request.body is not None and not request.body.replayable):
                raise
        # A kept-alive connection the server had already closed: one fresh try (seed rule).
        conn, _ = await self._pool.acquire(request.url, opts, transfer, fresh=True)
        try:
            return conn, await conn.send_request(request, transfer, self._on_request)
        except BaseException:
            await conn.aclose()
            raise

    async def release(self, conn: HttpConnection) -> None:
        """A response read to its end: its connection back to the pool (or closed)."""
        await self._pool.finish(conn)

    async def _discard(self, conn: HttpConnection) -> None:
        """Drop a redirect/retry body: read small ones to keep the connection, else close."""
        if await conn.drain():
            await self._pool.finish(conn)

    async def _deliver(
        self,
        conn: HttpConnection,
        head: ResponseHead,
        sink: BodySink,
        opts: FetchOptions,
        transfer: Transfer,
    ) -> None:
        verdict = rules.verdict(head, opts, transfer)
        if verdict.action == "close":
            await conn.aclose()
        elif verdict.action == "discard":
            await self._discard(conn)
        if verdict.error is not None:
            raise verdict.error
        if verdict.action != "deliver":
            return
        decoder = rules.body_decoder(head, opts)
        try:
            while True:
                data = body_data(await conn.next_event(head=False))
                if data is None:
                    break
                if data:
                    transfer.size_download += len(data)
                    if decoder is not None:
                        data = decoder.feed(data)
                    if data:
                        await _write(sink, data)
            if decoder is not None:
                tail = decoder.flush()
                if tail:
                    await _write(sink, tail)
        except BaseException:
            await conn.aclose()
            raise
        await self._pool.finish(conn)
        if rules.fails_after_body(head, opts):
            raise rules.status_error(head)


@contextmanager
def _attempt_deadline(opts: FetchOptions, transfer: Transfer) -> Iterator[None]:
    """One attempt's counters start over, and -m bounds it as a whole (redirects too)."""
    rules.start_attempt(transfer)
    try:
        with anyio.fail_after(opts.max_time):
            yield
    except TimeoutError:
        raise OperationTimeout(
            f"Operation timed out after {transfer.elapsed() * 1000:.0f} milliseconds "
            f"with {transfer.size_download} bytes received"
        ) from None


async def _write(sink: BodySink, data: bytes) -> None:
    try:
        await sink(data)
    except AppError:
        raise
    except OSError as exc:
        raise write_failure(exc) from None


class _RetryableStatus(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("retryable HTTP status")
        self.retry_after = retry_after


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # here: an attached fetch without Retry-After never needs it

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _retry_delay(opts: FetchOptions, attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_DELAY)
    if opts.retry_delay is not None:
        return opts.retry_delay
    return float(min(MAX_RETRY_DELAY, math.pow(2, attempt)))
