"""A gateway of the local network: client WebSocket side plus final-hop mix side.

Clients talk the gateway protocol (spec 3) over WebSocket; each connection runs the
sans-io `GatewayConnection` with one `GatewayRegistry` shared by all connections, so
keys and bandwidth outlive a connection (register, reconnect, authenticateV2) and,
with `state_path`, a restart. Their MixPackets go to the next hop (layer 1) over the
node's links with the packet's key-rotation label. On the mix port the gateway is the
final Sphinx hop (spec 2.9): SURB-ACKs go on to their first hop at once, messages are
pushed to the connected client or stored briefly and pushed on its next login.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.accept import serve_contained
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.gateway import session_events as ev
from smolmix_cli.mixnet.gateway.frames import RequestKind
from smolmix_cli.mixnet.gateway.gateway_connection import (
    FREE_TESTNET_BANDWIDTH,
    GatewayConnection,
    GatewayRegistry,
)
from smolmix_cli.mixnet.gateway.messages import SupportedProtocolRequest, parse_client_message
from smolmix_cli.mixnet.packet.framing import Frame
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.mixnet.packet.size import FrameVersion, PacketSize, SphinxKeyRotation
from smolmix_cli.testnet.nodes.message_store import (
    DEFAULT_PER_CLIENT,
    DEFAULT_TOTAL,
    DEFAULT_TTL_S,
    MessageStore,
)
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from smolmix_cli.testnet.nodes.packet_node import PacketNode, PacketOptions, listen_tcp
from smolmix_cli.testnet.nodes.processing import Deliver
from smolmix_cli.testnet.nodes.registry_state import load_registry, save_registry
from smolmix_cli.websocket import (
    WebSocketClosed,
    WebSocketConnection,
    WebSocketError,
    WebSocketTimeout,
    serve_websocket_connection,
)

# A regular ForwardSphinxV2 frame is 2452 bytes and extended32 about 33 kB; control
# messages are small. Anything bigger is not the gateway protocol.
MAX_WS_MESSAGE = 64 * 1024
WS_HANDSHAKE_TIMEOUT_S = 10.0
OUTBOUND_QUEUE = 4096
PING_INTERVAL_S = 30.0  # gateways ping their clients (spec 3.1); a late pong ends the connection
MAX_CLIENTS = 1024  # concurrent WebSocket connections; more are closed at once
POLL_S = 1.0  # how often an idle connection checks its registration-handshake deadline
GATEWAY_COUNTERS = (
    "ws_connections",
    "ws_handshake_failures",
    "ws_refused",
    "ws_closed_by_protocol",
    "ws_dropped",
    "ws_slow_client",
    "ws_keepalive_timeouts",
    "clients_registered",
    "clients_authenticated",
    "client_packets",
    "client_packets_forwarded",
    "dropped_bad_mix_packet",
    "final_hop",
    "acks_forwarded",
    "pushed",
    "stored",
    "pushed_from_store",
    "state_save_failures",
)


@dataclass(eq=False)
class _Client:
    """An authenticated WebSocket: its protocol state and outbound queue."""

    connection: GatewayConnection
    outbound: MemoryObjectSendStream[str | bytes]
    scope: anyio.CancelScope | None = None

    def abort(self) -> None:
        """End the connection now (e.g. the client does not read what we push)."""
        if self.scope is not None:
            self.scope.cancel()


class GatewayNode(PacketNode):
    """Entry/exit gateway: `GatewayNode(spec, *, ssl_context=None, ...)`; `tg.start(node.serve)`.

    `enforce_zk_nyms=True` makes it refuse free bandwidth as such a nym-node does;
    `close_after_hello=True` makes it close every connection right after answering
    `supportedProtocol` (a gateway that breaks mid-handshake, for failover tests);
    `max_clients=0` makes it full (nym-node drops connections over its limit).
    """

    accept_final = True

    def __init__(
        self,
        spec: NodeSpec,
        *,
        ssl_context: ssl.SSLContext | None = None,
        free_bandwidth: int = FREE_TESTNET_BANDWIDTH,
        enforce_zk_nyms: bool = False,
        registry: GatewayRegistry | None = None,
        state_path: Path | str | None = None,
        store_ttl_s: float = DEFAULT_TTL_S,
        store_per_client: int = DEFAULT_PER_CLIENT,
        store_total: int = DEFAULT_TOTAL,
        max_clients: int = MAX_CLIENTS,
        ping_interval_s: float | None = PING_INTERVAL_S,
        wall_clock: Callable[[], float] = time.time,
        close_after_hello: bool = False,
        **packet_options: Unpack[PacketOptions],
    ) -> None:
        if not spec.is_gateway:
            raise ValueError("GatewayNode needs an entry or exit gateway spec")
        super().__init__(spec, **packet_options)
        self.counters.update(dict.fromkeys(GATEWAY_COUNTERS, 0))
        self.ssl_context = ssl_context
        self.state_path = Path(state_path) if state_path is not None else None
        if registry is None:
            registry = GatewayRegistry(
                Ed25519PrivateKey.from_private_bytes(spec.identity.private_bytes),
                free_bandwidth=free_bandwidth,
                # As nym-node's `enforce_zk_nyms`: free claims are refused (a mainnet
                # gateway whose operator wants paid tickets), for clients' failover tests.
                enforce_credentials=enforce_zk_nyms,
            )
            if self.state_path is not None:
                load_registry(registry, self.state_path)
        elif registry.identity_public != spec.identity.public_bytes:
            raise ValueError("registry belongs to another gateway identity")
        self.registry = registry
        self.store = MessageStore(ttl_s=store_ttl_s, per_client=store_per_client, total=store_total)
        self._clients: dict[bytes, _Client] = {}
        self._wall_clock = wall_clock
        self.max_clients = max_clients
        self.ping_interval_s = ping_interval_s
        self.close_after_hello = close_after_hello
        self._ws_active = 0

    # -- lifecycle

    async def _open_listeners(self) -> Any:
        listeners: list[
            tuple[anyio.abc.Listener[anyio.abc.SocketStream], ssl.SSLContext | None]
        ] = []
        try:
            ws_port = self.spec.ws_port if self.spec.ws_port is not None else 0
            ws = await listen_tcp(self.spec.host, ws_port)
            listeners.append((ws, None))
            self.spec = self.spec.with_ports(ws_port=ws.extra(SocketAttribute.local_port))
            if self.ssl_context is not None:
                wss_port = self.spec.wss_port if self.spec.wss_port is not None else 0
                wss = await listen_tcp(self.spec.host, wss_port)
                listeners.append((wss, self.ssl_context))
                self.spec = self.spec.with_ports(wss_port=wss.extra(SocketAttribute.local_port))
        except BaseException:
            for listener, _ in listeners:
                await listener.aclose()
            raise
        return listeners

    async def _close_listeners(self, extra: Any) -> None:
        for listener, _ in extra:
            await listener.aclose()

    def _start_extra(self, tg: anyio.abc.TaskGroup, extra: Any) -> None:
        for listener, context in extra:
            tg.start_soon(self._serve_ws, listener, context)

    async def _serve_ws(
        self,
        listener: anyio.abc.Listener[anyio.abc.SocketStream],
        context: ssl.SSLContext | None,
    ) -> None:
        async def handle(stream: anyio.abc.SocketStream) -> None:
            await self._handle_ws(stream, context)

        async with listener:
            await serve_contained(listener, handle, self._failed)

    def save_state(self) -> None:
        """Write the registry (keys, bandwidth, last auth time) to `state_path`, if set.

        A failed write is counted, not raised: clients keep being served from memory.
        """
        if self.state_path is None:
            return
        try:
            save_registry(self.registry, self.state_path)
        except OSError:
            self.counters["state_save_failures"] += 1

    @property
    def connected_clients(self) -> frozenset[bytes]:
        return frozenset(self._clients)

    # -- client WebSocket

    async def _handle_ws(
        self, stream: anyio.abc.SocketStream, context: ssl.SSLContext | None
    ) -> None:
        self.counters["ws_connections"] += 1
        if self._ws_active >= self.max_clients:
            self.counters["ws_refused"] += 1
            await anyio.aclose_forcefully(stream)
            return
        self._ws_active += 1
        try:
            await self._serve_client(stream, context)
        finally:
            self._ws_active -= 1

    async def _serve_client(
        self, stream: anyio.abc.SocketStream, context: ssl.SSLContext | None
    ) -> None:
        try:
            ws = await serve_websocket_connection(
                stream,
                ssl_context=context,
                timeout=WS_HANDSHAKE_TIMEOUT_S,
                max_message_size=MAX_WS_MESSAGE,
            )
        except WebSocketError:
            self.counters["ws_handshake_failures"] += 1
            return
        connection = GatewayConnection(self.registry)
        send, receive = anyio.create_memory_object_stream[str | bytes](OUTBOUND_QUEUE)
        client = _Client(connection, send)
        try:
            async with anyio.create_task_group() as tg:
                client.scope = tg.cancel_scope
                tg.start_soon(self._write_ws, ws, receive, tg.cancel_scope)
                tg.start_soon(self._handshake_deadline, client)
                if self.ping_interval_s is not None:
                    tg.start_soon(self._keepalive, ws, self.ping_interval_s, tg.cancel_scope)
                try:
                    await self._read_ws(ws, client)
                finally:
                    send.close()  # the writer drains what is queued (e.g. an error) and ends
        finally:
            identity = connection.client
            if identity is not None and self._clients.get(identity) is client:
                del self._clients[identity]
            connection.connection_lost()
            if self.killed:  # a crash: no close frame, no state written
                await anyio.aclose_forcefully(stream)
            else:
                with anyio.CancelScope(shield=True):
                    self.save_state()
                    await ws.aclose(timeout=1.0)

    async def _read_ws(self, ws: WebSocketConnection, client: _Client) -> None:
        connection = client.connection
        while True:
            try:
                message = await ws.receive()
            except WebSocketError:
                return
            now = self._wall_clock()
            if isinstance(message, str):
                events = connection.receive_text(message, now=now)
            else:
                events = connection.receive_binary(message, now=now)
            if not self._apply(client, events):
                return
            if self.close_after_hello and _is_hello(message):
                self.counters["ws_closed_after_hello"] += 1
                return  # the writer flushes the answer, then the connection ends
            await anyio.lowlevel.checkpoint()

    async def _handshake_deadline(self, client: _Client) -> None:
        # A timer beside the reader rather than a receive timeout: cancelling a receive
        # could cut a pong or close frame it is writing in half.
        while True:
            await anyio.sleep(POLL_S)
            events = client.connection.handle_timeout(self._wall_clock())
            if not self._apply(client, events):
                client.outbound.close()  # the writer flushes the error, then ends it all
                return

    async def _keepalive(
        self, ws: WebSocketConnection, interval: float, scope: anyio.CancelScope
    ) -> None:
        try:
            await ws.keepalive(interval, timeout=interval)
        except WebSocketTimeout:
            self.counters["ws_keepalive_timeouts"] += 1
            scope.cancel()
        except WebSocketError:
            scope.cancel()

    @staticmethod
    async def _write_ws(
        ws: WebSocketConnection,
        outbound: MemoryObjectReceiveStream[str | bytes],
        scope: anyio.CancelScope,
    ) -> None:
        """Send queued messages until the reader closes the queue; then end the connection's
        other tasks (keepalive) too, so it is torn down once everything is flushed."""
        try:
            async with outbound:
                async for item in outbound:
                    if isinstance(item, str):
                        await ws.send_text(item)
                    else:
                        await ws.send_binary(item)
        except (WebSocketError, WebSocketClosed):
            pass
        scope.cancel()

    def _apply(self, client: _Client, events: list[ev.GatewayEvent]) -> bool:
        """Carry out a connection's events; False when the connection must close."""
        keep_open = True
        for event in events:
            if isinstance(event, ev.SendText):
                keep_open &= self._queue(client, event.text)
            elif isinstance(event, ev.SendBinary):
                keep_open &= self._queue(client, event.data)
            elif isinstance(event, ev.ForwardPacket):
                self._forward_client_packet(event)
            elif isinstance(event, (ev.ClientRegistered, ev.ClientAuthenticated)):
                name = (
                    "clients_registered"
                    if isinstance(event, ev.ClientRegistered)
                    else "clients_authenticated"
                )
                self.counters[name] += 1
                keep_open &= self._client_ready(client, event.identity)
            elif isinstance(event, ev.Dropped):
                self.counters["ws_dropped"] += 1
            elif isinstance(event, ev.Failed):
                self.counters["ws_closed_by_protocol"] += 1
                keep_open = False
        return keep_open

    def _queue(self, client: _Client, item: str | bytes) -> bool:
        try:
            client.outbound.send_nowait(item)
        except anyio.WouldBlock:
            self.counters["ws_slow_client"] += 1
            return False
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True

    def _client_ready(self, client: _Client, identity: bytes) -> bool:
        self._clients[identity] = client
        self.save_state()
        ok = True
        for message in self.store.take(identity, anyio.current_time()):
            self.counters["pushed_from_store"] += 1
            ok &= self._apply(client, client.connection.push(message))
        return ok

    def _forward_client_packet(self, event: ev.ForwardPacket) -> None:
        self.counters["client_packets"] += 1
        try:
            if event.kind is RequestKind.FORWARD_SPHINX_V2:
                mix_packet = MixPacket.from_v2_bytes(event.mix_packet)
            else:
                mix_packet = MixPacket.from_v1_bytes(event.mix_packet)
            size = PacketSize.from_length(len(mix_packet.packet))
            version = (
                FrameVersion.INITIAL
                if mix_packet.key_rotation is SphinxKeyRotation.UNKNOWN
                else FrameVersion.KEY_ROTATION
            )
            frame = Frame(
                mix_packet.packet, size, mix_packet.packet_type, mix_packet.key_rotation, version
            )
        except MixnetError:
            self.counters["dropped_bad_mix_packet"] += 1
            return
        if self.links.send(mix_packet.next_hop, frame.to_bytes()):
            self.counters["client_packets_forwarded"] += 1

    # -- final hop (mix side)

    def _deliver(self, decision: Deliver) -> None:
        self.counters["final_hop"] += 1
        if decision.ack is not None:
            self.counters["acks_forwarded"] += 1
            self._schedule(decision.ack)
        client = self._clients.get(decision.destination)
        if client is not None:
            try:
                events = client.connection.push(decision.message)
            except MixnetError:  # the connection is no longer authenticated
                events = []
            if events and self._apply(client, events):
                self.counters["pushed"] += 1
                return
            client.abort()  # its queue is full or it is closing: keep the message
        self.store.put(decision.destination, decision.message, anyio.current_time())
        self.counters["stored"] += 1


def _is_hello(message: str | bytes) -> bool:
    """A client's `supportedProtocol` request (the first message of every handshake)."""
    if not isinstance(message, str):
        return False
    try:
        return isinstance(parse_client_message(message), SupportedProtocolRequest)
    except MixnetError:
        return False
