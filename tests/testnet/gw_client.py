"""A minimal gateway client for the node tests: GatewayClientSession over a WebSocket."""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.gateway.session import (
    BandwidthChanged,
    ClientEvent,
    Failed,
    GatewayClientSession,
    GatewayErrorReported,
    MessageReceived,
    Ready,
    Registered,
    SendBinary,
    SendText,
)
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from smolmix_cli.websocket import WebSocketConnection, WebSocketError, connect_websocket


class ClientFailed(Exception):
    pass


@dataclass
class GwClient:
    """Keys that survive reconnects; `connect` yields a live connection."""

    gateway_identity: bytes
    identity: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    shared_key: SharedKey | None = None
    _last_now: float = 0.0

    @property
    def identity_public(self) -> bytes:
        return self.identity.public_key().public_bytes_raw()

    def now(self) -> float:
        # authenticateV2 timestamps are whole seconds and must strictly increase per
        # client; quick test reconnects would reuse one, so step it forward.
        self._last_now = max(time.time(), self._last_now + 1.0)
        return self._last_now

    @asynccontextmanager
    async def connect(
        self, url: str, ssl_context: ssl.SSLContext | None = None
    ) -> AsyncIterator[LiveConnection]:
        ws = await connect_websocket(url, ssl_context=ssl_context, timeout=5)
        session = GatewayClientSession(
            self.identity, self.gateway_identity, shared_key=self.shared_key
        )
        live = LiveConnection(self, ws, session)
        usable = False
        try:
            async with anyio.create_task_group() as tg:
                await live.apply(session.start())
                tg.start_soon(live.read_loop)
                with anyio.fail_after(5):
                    await live.ready.wait()
                usable = live.failure is None and not live.closed.is_set()
                if usable:
                    yield live
                tg.cancel_scope.cancel()
        finally:
            await ws.aclose(timeout=1)
        if not usable:
            raise ClientFailed(str(live.failure or "connection closed before ready"))


@dataclass
class LiveConnection:
    client: GwClient
    ws: WebSocketConnection
    session: GatewayClientSession
    pushes: list[bytes] = field(default_factory=list)
    errors: list[GatewayErrorReported] = field(default_factory=list)
    failure: object | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)
    closed: anyio.Event = field(default_factory=anyio.Event)
    bandwidth_updates: int = 0
    sent_texts: list[str] = field(default_factory=list)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    async def apply(self, events: list[ClientEvent]) -> None:
        for event in events:
            if isinstance(event, SendText):
                self.sent_texts.append(event.text)
                await self.ws.send_text(event.text)
            elif isinstance(event, SendBinary):
                await self.ws.send_binary(event.data)
            elif isinstance(event, Registered):
                self.client.shared_key = event.shared_key
            elif isinstance(event, Ready):
                self.ready.set()
            elif isinstance(event, MessageReceived):
                self.pushes.append(event.message)
            elif isinstance(event, GatewayErrorReported):
                self.errors.append(event)
            elif isinstance(event, BandwidthChanged):
                self.bandwidth_updates += 1
            elif isinstance(event, Failed):
                self.failure = event.error
                self.ready.set()
        self._changed.set()
        self._changed = anyio.Event()

    async def read_loop(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if isinstance(message, str):
                    await self.apply(self.session.receive_text(message, now=self.client.now()))
                else:
                    await self.apply(self.session.receive_binary(message))
        except WebSocketError:
            self.closed.set()
            self.ready.set()
            self._changed.set()

    async def send(self, mix_packet: bytes) -> None:
        await self.apply(self.session.send_mix_packet(mix_packet))

    async def wait_pushes(self, count: int, timeout: float = 5.0) -> list[bytes]:
        with anyio.fail_after(timeout):
            while len(self.pushes) < count:
                await self._changed.wait()
        return self.pushes

    async def wait_errors(self, count: int, timeout: float = 5.0) -> list[GatewayErrorReported]:
        with anyio.fail_after(timeout):
            while len(self.errors) < count:
                await self._changed.wait()
        return self.errors

    async def wait_bandwidth_updates(self, count: int, timeout: float = 5.0) -> None:
        with anyio.fail_after(timeout):
            while self.bandwidth_updates < count:
                await self._changed.wait()
