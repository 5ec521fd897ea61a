"""A minimal gateway for client tests: real WebSocket server driving GatewayConnection.

Forwarded packets go to a caller-supplied callback (a list, or an in-process
Sphinx relay); `push()` sends a message to a connected client or stores it for
later (as a gateway does for offline clients, spec 3.8).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.gateway.session import (
    ClientAuthenticated,
    ClientRegistered,
    Failed,
    ForwardPacket,
    GatewayConnection,
    GatewayEvent,
    GatewayRegistry,
    SendBinary,
    SendText,
)
from smolmix_cli.websocket import (
    WebSocketConnection,
    WebSocketError,
    serve_websocket_connection,
)


@dataclass
class LoopbackGateway:
    identity: Ed25519PrivateKey
    on_forward: Callable[[ForwardPacket], None]
    ssl_context: ssl.SSLContext | None = None
    registry: GatewayRegistry = field(init=False)
    port: int = 0
    connections: dict[bytes, WebSocketConnection] = field(default_factory=dict)
    registered: list[bytes] = field(default_factory=list)
    authenticated: list[bytes] = field(default_factory=list)
    accepted: int = 0
    _conns: dict[bytes, GatewayConnection] = field(default_factory=dict)
    refuse: bool = False
    """While set, new connections are dropped right after the TCP accept."""

    def __post_init__(self) -> None:
        self.registry = GatewayRegistry(self.identity)

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        host = "localhost" if self.ssl_context is not None else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}/"

    async def push(self, client: bytes, message: bytes) -> None:
        ws = self.connections.get(client)
        if ws is None:
            self.registry.store_message(client, message)
            return
        conn = self._conns[client]
        for event in conn.push(message):
            assert isinstance(event, SendBinary)
            try:
                await ws.send_binary(event.data)
            except WebSocketError:
                self.registry.store_message(client, message)

    async def drop_client(self, client: bytes) -> None:
        """Cut the client's TCP connection without a close frame."""
        ws = self.connections.get(client)
        if ws is not None:
            await anyio.aclose_forcefully(ws._stream)

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.accepted += 1
        if self.refuse:
            await anyio.aclose_forcefully(stream)
            return
        try:
            ws = await serve_websocket_connection(stream, ssl_context=self.ssl_context, timeout=5)
        except WebSocketError:
            return
        conn = GatewayConnection(self.registry)
        try:
            while True:
                message = await ws.receive()
                now = time.time()
                if isinstance(message, str):
                    events: list[GatewayEvent] = conn.receive_text(message, now=now)
                else:
                    events = conn.receive_binary(message, now=now)
                for event in events:
                    if isinstance(event, SendText):
                        await ws.send_text(event.text)
                    elif isinstance(event, SendBinary):
                        await ws.send_binary(event.data)
                    elif isinstance(event, ClientRegistered | ClientAuthenticated):
                        target = (
                            self.registered
                            if isinstance(event, ClientRegistered)
                            else self.authenticated
                        )
                        target.append(event.identity)
                        self.connections[event.identity] = ws
                        self._conns[event.identity] = conn
                    elif isinstance(event, ForwardPacket):
                        self.on_forward(event)
                    elif isinstance(event, Failed):
                        await ws.aclose(timeout=1)
                        return
        except (WebSocketError, MixnetError):
            pass
        finally:
            if conn.client is not None and self.connections.get(conn.client) is ws:
                del self.connections[conn.client]
                del self._conns[conn.client]
            conn.connection_lost()
            await ws.aclose(timeout=1)


@asynccontextmanager
async def run_gateway(gateway: LoopbackGateway) -> AsyncIterator[LoopbackGateway]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    gateway.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, gateway.handle)
        try:
            yield gateway
        finally:
            tg.cancel_scope.cancel()
    await listener.aclose()
