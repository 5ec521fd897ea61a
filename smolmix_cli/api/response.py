"""`Tunnel.fetch`'s response: the head at once, the body pulled piece by piece.

The fetch is `smolmix fetch`'s own engine (apps/http_client.py, curl's rules,
redirects, retries, the keep-alive pool), which pushes the body into a sink.
Here it runs as a task of the tunnel that pushes into a small channel the
caller pulls from: the engine waits while the caller does, so memory stays
bounded whatever the body's size. The response is ready when the first body
piece arrives (the last head seen is then the final one) or the fetch ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream

from smolmix_cli.api.errors import translated
from smolmix_cli.apps.http_body import BytesBody
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_headers import HeaderEdit
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_transfer import ResponseHead, Transfer

BUFFERED_PIECES = 4
"""Body pieces (up to 64 KiB each) waiting for the caller at most."""

Headers = Mapping[str, str | None] | Sequence[tuple[str, str | None]]
"""Request headers; None removes one of curl's defaults (User-Agent, Accept)."""
ProgressCallback = Callable[[int, int | None], None]
"""(bytes received so far, Content-Length or None)."""


@dataclass
class _Progress:
    head: ResponseHead | None = None
    final: ResponseHead | None = None
    error: Exception | None = None
    transfer: Transfer | None = None
    received: int = 0


class Response:
    """Status, headers and a body to stream (`aiter_bytes`) or `read`; close when done."""

    def __init__(
        self,
        head: ResponseHead,
        body: MemoryObjectReceiveStream[bytes],
        scope: anyio.CancelScope,
        progress: _Progress,
    ) -> None:
        self.status = head.status
        self.reason = head.reason
        self.http_version = head.http_version
        self.headers = head.headers
        """As received: (name, value) pairs in order, names' case kept."""
        self.url = str(head.url)
        """The URL that answered (after redirects)."""
        self._body = body
        self._scope = scope
        self._progress = progress
        self._closed = False

    def header(self, name: str) -> str | None:
        """The first value of a header, any case; None if absent."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    @property
    def received(self) -> int:
        """Body bytes received so far."""
        return self._progress.received

    async def receive_piece(self) -> bytes | None:
        """The next piece of the body; None at its end (a failure mid-body raises)."""
        with translated():
            try:
                return await self._body.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                if self._progress.error is not None and not self._closed:
                    raise self._progress.error from None
                return None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        while (piece := await self.receive_piece()) is not None:
            yield piece

    async def read(self) -> bytes:
        """The whole body (for small ones; stream large ones with `aiter_bytes`)."""
        return b"".join([piece async for piece in self.aiter_bytes()])

    async def aclose(self) -> None:
        """Stop the transfer if the body is still coming (its connection is closed)."""
        self._closed = True
        self._scope.cancel()
        self._body.close()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def fetch_options(
    *,
    method: str | None,
    headers: Headers,
    body: bytes | None,
    follow_redirects: bool,
    max_redirects: int,
    timeout: float | None,
    connect_timeout: float | None,
    verify: bool,
    cafile: str | None,
) -> FetchOptions:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return FetchOptions(
        method=method,
        header_edits=[HeaderEdit(name, value) for name, value in items],
        body=BytesBody(body) if body is not None else None,
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        max_time=timeout,
        connect_timeout=connect_timeout,
        verify=verify,
        cafile=cafile,
    )


async def start_fetch(
    task_group: anyio.abc.TaskGroup,
    client: HttpClient,
    url: str,
    options: FetchOptions,
    on_progress: ProgressCallback | None = None,
) -> Response:
    """Run `client.fetch` in `task_group`; the response once its final head is known."""
    send, receive = anyio.create_memory_object_stream[bytes](BUFFERED_PIECES)
    progress = _Progress()
    ready = anyio.Event()

    async def on_head(head: ResponseHead) -> None:
        progress.head = head

    async def sink(data: bytes) -> None:
        if progress.final is None:
            progress.final = progress.head
            ready.set()
        progress.received += len(data)
        if on_progress is not None:
            length = progress.final.header("content-length") if progress.final else None
            on_progress(progress.received, int(length) if length and length.isdigit() else None)
        await send.send(data)

    async def run(*, task_status: anyio.abc.TaskStatus[anyio.CancelScope]) -> None:
        with anyio.CancelScope() as scope:
            task_status.started(scope)
            try:
                progress.transfer = await client.fetch(url, sink, options, on_head=on_head)
            except Exception as exc:
                progress.error = exc
            finally:
                send.close()
                ready.set()

    scope: anyio.CancelScope = await task_group.start(run)
    try:
        await ready.wait()
    except BaseException:
        scope.cancel()
        receive.close()
        raise
    final = progress.final or progress.head
    if final is None or (progress.final is None and progress.error is not None):
        receive.close()
        assert progress.error is not None
        raise progress.error
    return Response(final, receive, scope, progress)
