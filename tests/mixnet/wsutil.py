"""Test helpers: a loopback WebSocket server."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc

from smolmix_cli.websocket import (
    WebSocketConnection,
    WebSocketError,
    serve_websocket_connection,
)


@dataclass
class ServerRecord:
    """What the server side saw; handler errors are recorded, not raised."""

    port: int = 0
    connections: list[WebSocketConnection] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    done: anyio.Event = field(default_factory=anyio.Event)


Handler = Callable[[WebSocketConnection], Awaitable[None]]


@asynccontextmanager
async def ws_server(
    handler: Handler,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = 1 << 20,
) -> AsyncIterator[ServerRecord]:
    record = ServerRecord()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    record.port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        try:
            conn = await serve_websocket_connection(
                stream, ssl_context=ssl_context, max_message_size=max_message_size, timeout=5
            )
            record.connections.append(conn)
            await handler(conn)
        except WebSocketError as exc:
            record.errors.append(exc)
        finally:
            record.done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield record
        finally:
            tg.cancel_scope.cancel()
    await listener.aclose()
