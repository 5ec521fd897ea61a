"""One HTTP/1.1 connection of the async engine: its stream and its exchange state.

Every stream failure becomes the AppError curl would report (send, receive), whatever
carried the bytes: OS socket, TLS or the tunnel; the protocol's failures (empty reply,
weird reply, partial file) come from the sans-io core, http_exchange.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import h11

from smolmix_cli.apps.errors import AppError, RecvError, SendError
from smolmix_cli.apps.failure_text import stream_failure
from smolmix_cli.apps.http_exchange import DISCARD_LIMIT, NEED_DATA, READ_SIZE, HttpExchange
from smolmix_cli.apps.http_request import OutgoingRequest
from smolmix_cli.apps.http_transfer import RequestHead, ResponseHead, Transfer


class HttpConnection:
    """One pooled HTTP/1.1 connection: its stream plus its exchange state (http_exchange.py)."""

    def __init__(self, stream: anyio.abc.ByteStream, key: tuple[Any, ...], tls_version: str):
        self.stream = stream
        self.key = key
        self.exchange = HttpExchange()
        self.tls_version = tls_version
        self.remote_ip = ""
        self.local_ip = ""
        self.local_port = 0

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)

    async def send_request(
        self,
        request: OutgoingRequest,
        transfer: Transfer,
        on_request: Callable[[RequestHead], None] | None,
    ) -> ResponseHead:
        """Send head and body, then read up to the final response head."""
        exchange = self.exchange
        await self.send(exchange.request_head(request, transfer, on_request))
        if request.body is not None:
            async for chunk in request.body.chunks():
                await self.send(exchange.body_piece(chunk, transfer))
        await self.send(exchange.request_end(transfer))
        while True:
            event = await self.next_event(head=True)
            head = exchange.response_head(event, request, transfer)
            if head is not None:
                return head

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
        """The next h11 event, reading as needed (http_exchange.HttpExchange.next_event);
        a failing stream (reset, broken tunnel) is a receive error (56) whenever it happens."""
        while True:
            event = self.exchange.next_event(head=head)
            if event is not NEED_DATA:
                return event
            try:
                data = await self.stream.receive(READ_SIZE)
            except anyio.EndOfStream:
                data = b""
            except AppError:
                raise
            except Exception as exc:  # anyio, OS, TLS or tunnel errors alike
                raise RecvError(f"Recv failure: {stream_failure(exc)}") from None
            self.exchange.receive(data)

    async def drain(self) -> bool:
        """Read and drop a redirect/retry body; False once it closed itself instead.

        Small bodies are read so the connection can carry the next request; a large
        one, or a failure while reading, costs the connection.
        """
        total = 0
        try:
            while not self.exchange.body_done():
                event = await self.next_event(head=False)
                if isinstance(event, h11.Data):
                    total += len(event.data)
                    if total > DISCARD_LIMIT:
                        await self.aclose()
                        return False
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        except AppError:
            await self.aclose()
            return False
        return True
