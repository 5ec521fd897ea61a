"""The client's connection to its gateway: the anyio shell around GatewayClientSession.

It keeps one WebSocket up: register (new client) or authenticateV2 (stored
key), claim free bandwidth through the session, forward MixPackets, hand every
pushed message to a callback. When the connection drops it reconnects with
exponential backoff and authenticates with the stored key; packets handed over
meanwhile wait in an outbox and leave after the reconnect. A packet leaves the
outbox only once its frame was written, so a drop never loses one silently
(a frame written just before a drop may go twice; the mixnet does not mind).
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import anyio
import anyio.abc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.error_words import failure_words
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.gateway import session_events as ev
from smolmix_cli.mixnet.gateway.client_session import ClientState, GatewayClientSession
from smolmix_cli.mixnet.gateway.handshake import (
    PROTOCOL_KEY_ROTATION_PACKET,
    AuthenticationFailed,
)
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.wakeup import Signal
from smolmix_cli.websocket import (
    WebSocketConnection,
    WebSocketError,
    connect_websocket,
)


def _is_transient_rejection(error: BaseException) -> bool:
    """A refusal that a later retry with the same key can overcome.

    The gateway still holds our previous connection ("There is already an open
    connection to this client"), or the request timestamp was not newer than the
    last one or outside the allowed skew. Gateways say so only in the error text,
    so this is a text match; anything else means the key is unknown to it.
    """
    text = str(error).lower()
    return any(word in text for word in ("already", "timestamp", "skew"))


@contextmanager
def unwrap_single_exception() -> Iterator[None]:
    """Re-raise a task group's lone exception as itself, so callers can catch it by type."""
    try:
        yield
    except BaseExceptionGroup as group:
        inner: BaseException = group
        while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
            inner = inner.exceptions[0]
        if inner is group:
            raise
        raise inner from inner.__cause__


log = logging.getLogger(__name__)

MAX_HELD_FRAMES = 4096
"""Pushed frames kept while registration has not yet produced the key."""

_CONNECTION_ERRORS = (MixnetError, WebSocketError, OSError)
"""What ends one connection: the gateway's answers, the WebSocket below, the socket.
They never leave this module as such: `_run` reconnects or raises GatewayUnavailable."""


class GatewayClientError(MixnetError):
    """The gateway connection failed in a way the caller should hear about."""


class GatewayUnavailable(GatewayClientError):
    """Could not (re)connect to the gateway; the client gave up or is closed."""


class GatewayHandshakeTimeout(GatewayClientError):
    """Registration or authentication did not finish in time."""


@dataclass
class GatewayClientStats:
    connects: int = 0
    registrations: int = 0
    authentications: int = 0
    connection_losses: int = 0
    packets_sent: int = 0
    pushes_received: int = 0
    frames_dropped: int = 0
    gateway_errors: int = 0
    bandwidth_remaining: int = 0
    last_error: str = ""
    protocol_version: int = 0
    """The gateway protocol version the last registration or authentication settled on."""


class _ConnectionEnded(Exception):
    """Internal: this WebSocket is finished (error kept in `error`)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class GatewayClient:
    """A reconnecting, authenticated gateway connection."""

    def __init__(
        self,
        url: str,
        identity: Ed25519PrivateKey,
        gateway_identity: bytes,
        *,
        on_push: Callable[[bytes], None],
        shared_key: SharedKey | None = None,
        on_shared_key: Callable[[SharedKey | None], None] | None = None,
        on_connection_change: Callable[[bool], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
        handshake_timeout: float = 15.0,
        reconnect_initial_delay: float = 0.5,
        reconnect_max_delay: float = 30.0,
        max_reconnect_attempts: int | None = None,
        max_queue: int = 4096,
        keepalive_interval: float | None = 30.0,
        keepalive_timeout: float = 10.0,
        reauthenticate_after_register: bool = False,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._identity = identity
        self.gateway_identity = bytes(gateway_identity)
        self._on_push = on_push
        self.shared_key = shared_key
        self._on_shared_key = on_shared_key
        self._on_connection_change = on_connection_change
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._handshake_timeout = handshake_timeout
        self._backoff_initial = reconnect_initial_delay
        self._backoff_max = reconnect_max_delay
        self._max_attempts = max_reconnect_attempts
        self._max_queue = max_queue
        self._keepalive_interval = keepalive_interval
        self._keepalive_timeout = keepalive_timeout
        self._reauthenticate = reauthenticate_after_register
        self._clock = wall_clock
        self.stats = GatewayClientStats()
        self._outbox: deque[MixPacket] = deque()
        self._outbox_changed = Signal()
        self._space = Signal()
        self._state_changed = Signal()  # see _notify_state
        self._connected = False
        self._closed = False
        self._started = False
        self._last_auth_timestamp = 0
        self._failure: GatewayUnavailable | None = None
        self._ws: WebSocketConnection | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    # -- public -----------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, url: str, identity: Ed25519PrivateKey, gateway_identity: bytes, **kwargs: object
    ) -> AsyncIterator[GatewayClient]:
        """Connect and authenticate (the first failure raises), keep reconnecting inside."""
        client = cls(url, identity, gateway_identity, **kwargs)  # type: ignore[arg-type]
        with unwrap_single_exception():
            async with anyio.create_task_group() as tg:
                client._tg = tg
                await tg.start(client._run)
                try:
                    yield client
                finally:
                    await client.aclose()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def queued(self) -> int:
        return len(self._outbox)

    async def wait_connected(self) -> None:
        """Return once connected and authenticated; GatewayUnavailable if that will not happen.

        One waiter at a time (the client's driver).
        """
        while not self._connected:
            if self._closed or self._failure is not None:
                raise self._failure or GatewayUnavailable("gateway client is closed")
            await self._state_changed.wait()

    async def send_mix_packet(self, packet: MixPacket) -> None:
        """Queue a packet for the gateway; waits while the outbox is full."""
        while True:
            if self._closed or self._failure is not None:
                raise self._failure or GatewayUnavailable("gateway client is closed")
            if len(self._outbox) < self._max_queue:
                break
            await self._space.wait()
        self._outbox.append(packet)
        self._outbox_changed.set()

    async def aclose(self) -> None:
        """Stop reconnecting and close the WebSocket; queued packets are dropped."""
        if self._closed:
            return
        self._closed = True
        self._space.set()
        self._notify_state()
        ws = self._ws
        if ws is not None:
            await ws.aclose(timeout=2.0)
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    # -- the connection loop ------------------------------------------------------------

    async def _run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        failures = 0
        while not self._is_closed():
            try:
                reconnect_now = await self._connection(None if self._started else task_status)
                failures = 0
                if reconnect_now:
                    continue
            except _ConnectionEnded as ended:
                error = ended.error
                self.stats.last_error = failure_words(error)
                if self._is_closed():
                    return
                if not self._started:
                    # The first connection must work: bad URL, refused, wrong gateway...
                    raise GatewayUnavailable(
                        f"cannot use gateway at {self.url}: {self.stats.last_error}"
                    ) from error
                failures += 1
                if self._max_attempts is not None and failures > self._max_attempts:
                    self._failure = GatewayUnavailable(
                        f"gave up on {self.url} after {failures - 1} reconnect attempts: "
                        f"{self.stats.last_error}"
                    )
                    self._space.set()
                    self._notify_state()
                    return
                delay = min(self._backoff_max, self._backoff_initial * 2 ** (failures - 1))
                log.debug("gateway %s: %s; reconnecting in %.2f s", self.url, error, delay)
                await anyio.sleep(delay)

    async def _connection(self, task_status: anyio.abc.TaskStatus[None] | None) -> bool:
        """One WebSocket from connect to its end; True to reconnect at once (no backoff)."""
        try:
            # No headers beyond the upgrade's own, as upstream's gateway client
            # (nymtech/nym common/client-libs/gateway-client/src/client/websockets.rs:
            # tokio_tungstenite::client_async_tls on the bare URL): no User-Agent.
            ws = await connect_websocket(
                self.url, ssl_context=self._ssl_context, timeout=self._connect_timeout
            )
        except WebSocketError as exc:
            raise _ConnectionEnded(exc) from None
        self._ws = ws
        self.stats.connects += 1
        session = GatewayClientSession(
            self._identity, self.gateway_identity, shared_key=self.shared_key
        )
        authenticating = self.shared_key is not None
        authentications_before = self.stats.authentications
        ready = anyio.Event()
        errors: list[BaseException] = []
        try:
            async with anyio.create_task_group() as tg:

                async def guarded(coro: Callable[[], Awaitable[None]]) -> None:
                    try:
                        await coro()
                    except (*_CONNECTION_ERRORS, _ConnectionEnded) as exc:
                        errors.append(exc.error if isinstance(exc, _ConnectionEnded) else exc)
                        tg.cancel_scope.cancel()

                tg.start_soon(guarded, lambda: self._reader(ws, session, ready))
                try:
                    await self._emit(ws, session.start())
                    with anyio.fail_after(self._handshake_timeout):
                        await ready.wait()
                except TimeoutError:
                    errors.append(GatewayHandshakeTimeout("gateway handshake timed out"))
                    tg.cancel_scope.cancel()
                except _CONNECTION_ERRORS as exc:
                    errors.append(exc)
                    tg.cancel_scope.cancel()
                if not errors and not tg.cancel_scope.cancel_called:
                    if self._reauthenticate and not authenticating:
                        # Spec 9.1: the official client registers, hangs up, authenticates.
                        tg.cancel_scope.cancel()
                    else:
                        self._connected = True
                        self._notify_state()
                        if task_status is not None:
                            task_status.started()
                            task_status = None
                            self._started = True
                        if self._keepalive_interval is not None:
                            interval, timeout = self._keepalive_interval, self._keepalive_timeout
                            tg.start_soon(guarded, lambda: ws.keepalive(interval, timeout))
                        try:
                            await self._writer(ws, session)
                        except _CONNECTION_ERRORS as exc:
                            errors.append(exc)
                            tg.cancel_scope.cancel()
        finally:
            self._ws = None
            if self._connected and not self._closed:
                self.stats.connection_losses += 1
            self._connected = False
            self._notify_state()
            with anyio.CancelScope(shield=True):
                await ws.aclose(timeout=1.0)
        if errors:
            error = errors[0]
            if (
                authenticating
                and not ready.is_set()
                # A refusal after the gateway accepted our key (e.g. of the bandwidth
                # claim, CredentialsRequired) says nothing about the key: keep it.
                and self.stats.authentications == authentications_before
                and isinstance(error, ev.GatewayRejected | AuthenticationFailed)
                and not _is_transient_rejection(error)
            ):
                # The gateway does not know our key (any more): register afresh.
                log.debug("gateway %s refused our key (%s): registering again", self.url, error)
                self._forget_key()
                return True
            raise _ConnectionEnded(error)
        if self._closed:
            return False
        if self._reauthenticate and not authenticating and ready.is_set():
            return True
        raise _ConnectionEnded(GatewayClientError("connection ended"))

    def _notify_state(self) -> None:
        self._state_changed.set()
        if self._on_connection_change is not None:
            self._on_connection_change(self._connected)

    def _is_closed(self) -> bool:
        return self._closed

    def _forget_key(self) -> None:
        self.shared_key = None
        if self._on_shared_key is not None:
            self._on_shared_key(None)

    async def _emit(self, ws: WebSocketConnection, events: list[ev.ClientEvent]) -> None:
        for event in events:
            await self._apply(ws, event)

    async def _apply(self, ws: WebSocketConnection, event: ev.ClientEvent) -> None:
        if isinstance(event, ev.SendText):
            await ws.send_text(event.text)
        elif isinstance(event, ev.SendBinary):
            await ws.send_binary(event.data)
        elif isinstance(event, ev.MessageReceived):
            self.stats.pushes_received += 1
            self._on_push(event.message)
        elif isinstance(event, ev.Registered):
            self.stats.registrations += 1
            self.stats.protocol_version = event.protocol_version
            self.shared_key = event.shared_key
            if self._on_shared_key is not None:
                self._on_shared_key(event.shared_key)
        elif isinstance(event, ev.Authenticated):
            self.stats.authentications += 1
            self.stats.protocol_version = event.protocol_version
            self.stats.bandwidth_remaining = event.bandwidth_remaining
        elif isinstance(event, ev.BandwidthChanged):
            self.stats.bandwidth_remaining = event.remaining
        elif isinstance(event, ev.GatewayErrorReported):
            # e.g. out of bandwidth: that packet was not forwarded; its ack never comes
            # and the client core retransmits it.
            self.stats.gateway_errors += 1
            self.stats.last_error = event.message
            log.debug("gateway %s reported: %s", self.url, event.message)
        elif isinstance(event, ev.Dropped):
            self.stats.frames_dropped += 1
            log.debug("gateway %s: dropped a frame: %s", self.url, event.error)
        elif isinstance(event, ev.Failed):
            raise event.error
        elif isinstance(event, ev.Ready):
            pass

    async def _reader(
        self, ws: WebSocketConnection, session: GatewayClientSession, ready: anyio.Event
    ) -> None:
        # A gateway pushes stored messages while it handles register/authenticate, before
        # its text reply (spec 3.8); during registration the session has no key yet, so
        # such frames wait here until the reply gives it one.
        held: list[bytes] = []
        while True:
            message = await ws.receive()
            if isinstance(message, str):
                now = self._clock()
                if session.state is ClientState.AWAIT_VERSION and session.shared_key is not None:
                    # This reply triggers authenticateV2, whose whole-second timestamp must
                    # be newer than the last one this gateway saw from us (spec 3.5).
                    now = max(now, self._last_auth_timestamp + 1)
                    self._last_auth_timestamp = int(now)
                events = session.receive_text(message, now=now)
            elif session.shared_key is None:
                if len(held) >= MAX_HELD_FRAMES:
                    self.stats.frames_dropped += 1
                else:
                    held.append(message)
                continue
            else:
                events = session.receive_binary(message)
            if held and session.shared_key is not None:
                for frame in held:
                    events.extend(session.receive_binary(frame))
                held.clear()
            for event in events:
                await self._apply(ws, event)
                if isinstance(event, ev.Ready):
                    ready.set()

    async def _writer(self, ws: WebSocketConnection, session: GatewayClientSession) -> None:
        v2 = session.protocol_version >= PROTOCOL_KEY_ROTATION_PACKET
        while True:
            while not self._outbox:
                await self._outbox_changed.wait()
            packet = self._outbox[0]
            data = packet.to_v2_bytes() if v2 else packet.to_v1_bytes()
            await self._emit(ws, session.send_mix_packet(data))
            # Written: only now may it leave the outbox.
            self._outbox.popleft()
            self.stats.packets_sent += 1
            self._space.set()
