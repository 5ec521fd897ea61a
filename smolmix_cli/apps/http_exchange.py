"""One HTTP/1.1 connection's protocol state and curl's words for its failures, without I/O.

Both fetch shells drive it: the async engine over any byte stream (http_connection.py)
and the blocking attach shell over the session's Unix socket (http_blocking.py). The
shell moves bytes; this core says what to send, what the bytes received mean, and which
AppError curl would report (empty reply, weird reply, partial file, bad chunk line).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import h11

from smolmix_cli.apps.errors import (
    BadResponse,
    EmptyReply,
    PartialFile,
    ReadError,
    RecvError,
    UsageError,
    WriteError,
)
from smolmix_cli.apps.failure_text import stream_failure
from smolmix_cli.apps.http_headers import has_header
from smolmix_cli.apps.http_request import OutgoingRequest
from smolmix_cli.apps.http_transfer import RequestHead, ResponseHead, Transfer

READ_SIZE = 65536
_CHUNK_SIZE_MAX = (1 << 63) - 1
"""curl's limit: a chunk size past this is refused at its line, not awaited."""
DISCARD_LIMIT = 1 << 20
"""Redirect/retry bodies up to this size are read and dropped to keep the connection."""
NEED_DATA = h11.NEED_DATA


class HttpExchange:
    """h11's client state plus what curl needs to name a failure: bytes since the request."""

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.CLIENT)
        self.requests = 0
        self.received = 0
        """Bytes received since the current request was sent (0 at EOF = empty reply)."""
        self.eof = False
        """The stream ended: h11 errors from now on are a short body, not bad framing."""

    def request_head(
        self,
        request: OutgoingRequest,
        transfer: Transfer,
        on_request: Callable[[RequestHead], None] | None,
    ) -> bytes:
        """The request head's bytes (framing headers added as curl adds them)."""
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
        return data or b""

    def body_piece(self, chunk: bytes, transfer: Transfer) -> bytes:
        try:
            out = self.h11.send(h11.Data(data=chunk))
        except h11.LocalProtocolError:
            raise ReadError("upload source changed size while sending") from None
        transfer.size_upload += len(chunk)
        return out or b""

    def request_end(self, transfer: Transfer) -> bytes:
        try:
            end = self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            raise ReadError("upload source is shorter than its announced size") from None
        transfer.time_pretransfer = transfer.elapsed()
        return end or b""

    def receive(self, data: bytes) -> None:
        """Bytes the shell read (b"" at the end of the stream)."""
        self.eof = not data
        self.received += len(data)
        try:
            self.h11.receive_data(data)
        except h11.RemoteProtocolError as exc:
            raise BadResponse(f"Weird server reply: {_h11_text(exc)}") from None

    def next_event(self, *, head: bool) -> Any:
        """The next h11 event, or NEED_DATA; `head`: still before the response head.

        As curl: a clean close before any byte is an empty reply (52), a close inside the
        body a partial file (18), a chunk line that is not a size a receive error (56).
        """
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
        if isinstance(event, h11.ConnectionClosed) and head:
            if self.received == 0:
                raise EmptyReply("Empty reply from server")
            raise BadResponse("connection closed in the middle of the response head")
        return event

    def response_head(
        self, event: Any, request: OutgoingRequest, transfer: Transfer
    ) -> ResponseHead | None:
        """The final head from a head-phase event; None for a 1xx (read on)."""
        if isinstance(event, h11.InformationalResponse):
            return None
        if isinstance(event, h11.Response):
            transfer.time_starttransfer = transfer.elapsed()
            return ResponseHead(
                status=event.status_code,
                reason=event.reason.decode("latin-1"),
                http_version=event.http_version.decode(),
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers.raw_items()
                ],
                url=request.url,
            )
        raise BadResponse(f"unexpected event before the response: {type(event).__name__}")

    def body_done(self) -> bool:
        return self.h11.their_state is h11.DONE

    def next_cycle(self) -> bool:
        """Ready for another request on this connection (h11 says it can carry one)?"""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            try:
                self.h11.start_next_cycle()
            except h11.LocalProtocolError:
                return False
            return True
        return False


def body_data(event: Any) -> bytes | None:
    """A body event's bytes; None once the body ended (end of message or close)."""
    if isinstance(event, h11.Data):
        return bytes(event.data)
    if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
        return None
    return b""


def write_failure(exc: OSError) -> WriteError:
    """curl's word when writing a head or body to the destination failed; both shells raise
    it `from None` after closing the connection their own way."""
    return WriteError(f"Failure writing output to destination: {stream_failure(exc)}")


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
