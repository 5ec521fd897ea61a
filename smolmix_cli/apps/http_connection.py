"""One HTTP/1.1 connection: its stream, its h11 state, and the wire errors curl names.

Every stream failure becomes the AppError curl would report (empty reply, send, receive,
weird reply, partial file), whatever carried the bytes: OS socket, TLS or the tunnel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import h11

from smolmix_cli.apps.errors import (
    AppError,
    BadResponse,
    EmptyReply,
    PartialFile,
    ReadError,
    RecvError,
    SendError,
    UsageError,
)
from smolmix_cli.apps.failure_text import stream_failure
from smolmix_cli.apps.http_headers import has_header
from smolmix_cli.apps.http_request import OutgoingRequest
from smolmix_cli.apps.http_transfer import RequestHead, ResponseHead, Transfer

_READ_SIZE = 65536
_CHUNK_SIZE_MAX = (1 << 63) - 1
"""curl's limit: a chunk size past this is refused at its line, not awaited."""
_DISCARD_LIMIT = 1 << 20
"""Redirect/retry bodies up to this size are read and dropped to keep the connection."""


class HttpConnection:
    """One pooled HTTP/1.1 connection: stream plus its h11 state."""

    def __init__(self, stream: anyio.abc.ByteStream, key: tuple[Any, ...], tls_version: str):
        self.stream = stream
        self.key = key
        self.h11 = h11.Connection(h11.CLIENT)
        self.requests = 0
        self.received = 0
        """Bytes received since the current request was sent (0 at EOF = empty reply)."""
        self.tls_version = tls_version
        self.remote_ip = ""
        self.local_ip = ""
        self.local_port = 0
        self.eof = False
        """The stream ended: h11 errors from now on are a short body, not bad framing."""

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)

    async def send_request(
        self,
        request: OutgoingRequest,
        transfer: Transfer,
        on_request: Callable[[RequestHead], None] | None,
    ) -> ResponseHead:
        """Send head and body, then read up to the final response head."""
        headers = list(request.headers)
        body = request.body
        if body is not None and not has_header(headers, "content-length"):
            if body.length is not None:
                headers.append(("Content-Length", str(body.length)))
            elif not has_header(headers, "transfer-encoding"):
                headers.append(("Transfer-Encoding", "chunked"))
        try:
            data = self.h11.send(
                h11.Request(method=request.method, target=request.url.target, headers=headers)
            )
        except h11.LocalProtocolError as exc:
            raise UsageError(f"cannot send this request: {exc}") from None
        self.requests += 1
        self.received = 0
        transfer.size_request = len(data or b"")
        if on_request is not None:
            on_request(RequestHead.parse(data or b""))
        transfer.size_upload = 0
        await self.send(data or b"")
        if body is not None:
            async for chunk in body.chunks():
                try:
                    out = self.h11.send(h11.Data(data=chunk))
                except h11.LocalProtocolError:
                    raise ReadError("upload source changed size while sending") from None
                await self.send(out or b"")
                transfer.size_upload += len(chunk)
        try:
            end = self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            raise ReadError("upload source is shorter than its announced size") from None
        await self.send(end or b"")
        transfer.time_pretransfer = transfer.elapsed()
        while True:
            event = await self.next_event(head=True)
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                transfer.time_starttransfer = transfer.elapsed()
                return ResponseHead(
                    status=event.status_code,
                    reason=event.reason.decode("latin-1"),
                    http_version=event.http_version.decode(),
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1"))
                        for k, v in event.headers.raw_items()
                    ],
                    url=request.url,
                )
            raise BadResponse(f"unexpected event before the response: {type(event).__name__}")

    async def send(self, data: bytes) -> None:
        if not data:
            return
        try:
            await self.stream.send(data)
        except AppError:
            raise
        except Exception as exc:  # anyio, OS, TLS or tunnel errors alike
            raise SendError(f"Send failure: {stream_failure(exc)}") from None

    async def next_event(self, *, head: bool) -> Any:
        """The next h11 event, reading as needed; `head`: still before the response head.

        As curl: a clean close before any byte is an empty reply (52), a close inside the
        body a partial file (18), a failing stream (reset, broken tunnel) a receive error
        (56) whenever it happens, and a chunk line that is not a size a receive error too.
        """
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if not head and not self.eof:
                    raise RecvError(_chunk_error(exc)) from None
                if not head:
                    raise PartialFile(_partial_text(exc)) from None
                if self.received == 0:
                    raise EmptyReply("Empty reply from server") from None
                raise BadResponse(f"Weird server reply: {_h11_text(exc)}") from None
            if not head:
                _check_chunk_size(self.h11)
            if event is h11.NEED_DATA:
                try:
                    data = await self.stream.receive(_READ_SIZE)
                except anyio.EndOfStream:
                    data = b""
                except AppError:
                    raise
                except Exception as exc:  # anyio, OS, TLS or tunnel errors alike
                    raise RecvError(f"Recv failure: {stream_failure(exc)}") from None
                self.eof = not data
                self.received += len(data)
                try:
                    self.h11.receive_data(data)
                except h11.RemoteProtocolError as exc:
                    raise BadResponse(f"Weird server reply: {_h11_text(exc)}") from None
                continue
            if isinstance(event, h11.ConnectionClosed):
                if head and self.received == 0:
                    raise EmptyReply("Empty reply from server")
                if head:
                    raise BadResponse("connection closed in the middle of the response head")
                return event
            return event

    async def drain(self) -> bool:
        """Read and drop a redirect/retry body; False once it closed itself instead.

        Small bodies are read so the connection can carry the next request; a large
        one, or a failure while reading, costs the connection.
        """
        total = 0
        try:
            while self.h11.their_state is not h11.DONE:
                event = await self.next_event(head=False)
                if isinstance(event, h11.Data):
                    total += len(event.data)
                    if total > _DISCARD_LIMIT:
                        await self.aclose()
                        return False
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        except AppError:
            await self.aclose()
            return False
        return True


_CHUNK_LINE_BAD = "Illegal or missing hexadecimal sequence in chunked-encoding"
_CHUNK_LINE_LONG = "Too long hexadecimal number in chunked-encoding"
_CHUNK_MALFORMED = "Malformed encoding found in chunked-encoding"


def _chunk_error(exc: h11.RemoteProtocolError) -> str:
    """curl's words for a chunked body whose framing broke (h11 says which part, in text)."""
    return _CHUNK_MALFORMED if "chunk footer" in str(exc) else _CHUNK_LINE_BAD


def _check_chunk_size(conn: h11.Connection) -> None:
    """Refuse a chunk size curl refuses, at its line: h11 accepts 20 hex digits and waits.

    h11 keeps the size of the chunk being read in its reader (no public accessor); without
    that attribute the check finds nothing and a lying size ends as a partial file (18).
    """
    remaining = getattr(getattr(conn, "_reader", None), "_bytes_in_chunk", 0)
    if not isinstance(remaining, int) or remaining <= _CHUNK_SIZE_MAX:
        return
    raise RecvError(_CHUNK_LINE_LONG if remaining >> 64 else _CHUNK_LINE_BAD)


def _h11_text(exc: h11.RemoteProtocolError) -> str:
    """h11's message without the reprs of raw bytes it likes to include."""
    text = str(exc)
    cut = text.find(": b'"), text.find(": bytearray(")
    ends = [i for i in cut if i >= 0]
    return text[: min(ends)] if ends else text


def _partial_text(exc: h11.RemoteProtocolError) -> str:
    """curl's words for a body cut short: the bytes missing when a length was announced."""
    m = re.search(r"received (\d+) bytes, expected (\d+)", str(exc))
    if m and int(m.group(2)) > int(m.group(1)):
        return f"transfer closed with {int(m.group(2)) - int(m.group(1))} bytes remaining to read"
    return "transfer closed with outstanding read data remaining"
