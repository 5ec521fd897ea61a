"""Sans-io gateway end of the gateway WebSocket, as nym-node serves it.

Keys and bandwidth persist per client across connections in a `GatewayRegistry`
(spec §9: register on connection 1, authenticateV2 on connection 2); each connection
answers every forwarded packet with one `send` reply and reports
`typedError/out_of_bandwidth` when the allowance runs out. Inputs and
`handle_timeout(now)` return events, as on the client side.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.gateway.frames import RequestKind, decrypt_request, encrypt_push
from smolmix_cli.mixnet.gateway.handshake import (
    CURRENT_PROTOCOL_VERSION,
    MAX_REQUEST_TIMESTAMP_SKEW_S,
    GatewayHandshake,
    KeyAgreement,
    X25519Ephemeral,
    ed25519_public_bytes,
    verify_authenticate_v2,
)
from smolmix_cli.mixnet.gateway.messages import (
    Authenticate,
    AuthenticateV2,
    Bandwidth,
    ClaimFreeTestnetBandwidth,
    ErrorResponse,
    HandshakeError,
    HandshakePayload,
    LegacyAuthenticate,
    OutOfBandwidth,
    Register,
    Send,
    SupportedProtocol,
    SupportedProtocolRequest,
    TypedError,
    parse_client_message,
)
from smolmix_cli.mixnet.gateway.session_events import (
    HANDSHAKE_STEP_TIMEOUT_S,
    ClientAuthenticated,
    ClientRegistered,
    Dropped,
    Failed,
    ForwardPacket,
    GatewayEvent,
    GatewayRejected,
    SendBinary,
    SendText,
    SessionNotReady,
    UnexpectedResponse,
    expire_handshake,
)
from smolmix_cli.mixnet.gateway.shared_key import Rng, SharedKey
from smolmix_cli.mixnet.packet.mix_packet import MixPacket

ONLY_CREDENTIALS_MESSAGE = "This gateway is only accepting coconut credentials for bandwidth"
"""nym-node's answer to a free claim with `enforce_zk_nyms` set (upstream
common/credential-verification/src/error.rs, `OnlyCoconutCredentials`)."""
FREE_TESTNET_BANDWIDTH = 64 * 1024**3  # 68,719,476,736 bytes (spec §3.7)
I64_MAX = 2**63 - 1


def mix_packet_cost(kind: RequestKind, mix_packet: bytes) -> int:
    """Bandwidth a forwarded packet costs: the Sphinx packet's length (spec §3.6).

    The MixPacket is parsed in full, so a packet of no known size is refused
    (MixPacketError) before it costs anything or gets forwarded.
    """
    if kind is RequestKind.FORWARD_SPHINX_V2:
        return len(MixPacket.from_v2_bytes(mix_packet).packet)
    return len(MixPacket.from_v1_bytes(mix_packet).packet)


@dataclass
class ClientRecord:
    """What a gateway keeps per registered client (keyed by identity = address)."""

    shared_key: SharedKey
    bandwidth: int = 0
    last_auth_timestamp: int | None = None
    stored_messages: list[bytes] = field(default_factory=list)
    last_seen: float | None = None  # unix time of the last registration or authentication


MAX_REGISTERED = 10_000
REGISTRATION_MAX_AGE_S = 30 * 86400.0


class GatewayRegistry:
    """State shared by all connections of one gateway."""

    def __init__(
        self,
        identity: Ed25519PrivateKey,
        *,
        free_bandwidth: int = FREE_TESTNET_BANDWIDTH,
        enforce_credentials: bool = False,
        max_skew_s: float = MAX_REQUEST_TIMESTAMP_SKEW_S,
        protocol_version: int = CURRENT_PROTOCOL_VERSION,
        max_registered: int = MAX_REGISTERED,
        registration_max_age_s: float = REGISTRATION_MAX_AGE_S,
    ) -> None:
        self.identity = identity
        self.identity_public = ed25519_public_bytes(identity)
        self.free_bandwidth = free_bandwidth
        self.enforce_credentials = enforce_credentials
        self.max_skew_s = max_skew_s
        self.protocol_version = protocol_version
        # Registrations, least recently used first. Bounded in count and age (a client
        # whose key was forgotten registers again), never dropping a connected client.
        self.clients: dict[bytes, ClientRecord] = {}
        self.connected: set[bytes] = set()
        self.max_registered = max_registered
        self.registration_max_age_s = registration_max_age_s
        self.forgotten = 0

    def touch(self, client: bytes, now: float) -> None:
        """`client` registered or authenticated at unix time `now`: the most recently used."""
        record = self.clients.pop(client)
        record.last_seen = now
        self.prune(now, room=1)  # never `client` itself, which is about to be used
        self.clients[client] = record

    def prune(self, now: float, *, room: int = 0) -> None:
        """Forget the least recently used registrations beyond the count, and stale ones."""
        cutoff = now - self.registration_max_age_s
        for client, record in list(self.clients.items()):
            stale = record.last_seen is not None and record.last_seen < cutoff
            if not stale and len(self.clients) + room <= self.max_registered:
                if record.last_seen is None:
                    continue  # loaded from the state file and not used since: ages from its use
                return  # this and every later record were used more recently
            if client in self.connected:
                continue
            del self.clients[client]
            self.forgotten += 1

    def store_message(self, client: bytes, message: bytes) -> None:
        """Keep a message for a registered client that is not connected."""
        record = self.clients.get(client)
        if record is not None:
            record.stored_messages.append(message)


class GatewayConnState(Enum):
    FRESH = "fresh"
    HANDSHAKE = "handshake"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


class GatewayConnection:
    """One client's WebSocket as the gateway sees it."""

    def __init__(
        self,
        registry: GatewayRegistry,
        *,
        rng: Rng = os.urandom,
        ephemeral_factory: Callable[[], KeyAgreement] = X25519Ephemeral,
        packet_cost: Callable[[RequestKind, bytes], int] = mix_packet_cost,
    ) -> None:
        self._registry = registry
        self._rng = rng
        self._ephemeral_factory = ephemeral_factory
        self._packet_cost = packet_cost
        self.state = GatewayConnState.FRESH
        self.client: bytes | None = None
        self.protocol_version = 0
        self._handshake: GatewayHandshake | None = None
        self._deadline: float | None = None

    # -- inputs

    def receive_text(self, text: str, *, now: float) -> list[GatewayEvent]:
        if self.state is GatewayConnState.CLOSED:
            return [Dropped(UnexpectedResponse("text frame on a closed connection"))]
        if self.state is GatewayConnState.AUTHENTICATED:
            return self._authenticated_text(text)
        try:
            msg = parse_client_message(text)
        except MixnetError as exc:
            return self._close_with_error(exc)
        if self.state is GatewayConnState.HANDSHAKE:
            return self._handshake_text(msg, now)
        return self._fresh_text(msg, now)

    def receive_binary(self, data: bytes, *, now: float) -> list[GatewayEvent]:
        del now  # bandwidth does not expire in this gateway
        if self.state is not GatewayConnState.AUTHENTICATED:
            return [Dropped(UnexpectedResponse("binary frame before authentication"))]
        record = self._record()
        try:
            kind, mix_packet = decrypt_request(data, record.shared_key)
            cost = self._packet_cost(kind, mix_packet)
        except MixnetError as exc:
            return [SendText(ErrorResponse(str(exc)).to_json()), Dropped(exc)]
        if record.bandwidth < cost:
            error = TypedError(OutOfBandwidth(required=cost, available=record.bandwidth))
            return [SendText(error.to_json())]
        record.bandwidth -= cost
        assert self.client is not None
        return [
            ForwardPacket(kind, mix_packet, self.client),
            SendText(Send(record.bandwidth).to_json()),
        ]

    def push(self, message: bytes) -> list[GatewayEvent]:
        """A received message for this connection's client, as a binary frame."""
        if self.state is not GatewayConnState.AUTHENTICATED:
            raise SessionNotReady("no authenticated client on this connection")
        return [SendBinary(encrypt_push(message, self._record().shared_key, rng=self._rng))]

    def poll_deadline(self) -> float | None:
        """When `handle_timeout` next has something to do: the end of a registration step."""
        return self._deadline if self.state is GatewayConnState.HANDSHAKE else None

    def handle_timeout(self, now: float) -> list[GatewayEvent]:
        """Aborts a registration step that took 5 s or more."""
        return expire_handshake(self.poll_deadline(), now, self._close_with_error)

    def connection_lost(self) -> None:
        """The socket is gone: the client may register or authenticate again."""
        if self.state is GatewayConnState.AUTHENTICATED and self.client is not None:
            self._registry.connected.discard(self.client)
        self.state = GatewayConnState.CLOSED
        self._handshake = None

    # -- internals

    def _record(self) -> ClientRecord:
        assert self.client is not None
        return self._registry.clients[self.client]

    def _close_with_error(
        self, error: MixnetError, message: str | None = None
    ) -> list[GatewayEvent]:
        self.connection_lost()
        text = ErrorResponse(message if message is not None else str(error)).to_json()
        return [SendText(text), Failed(error)]

    def _fresh_text(self, msg: object, now: float) -> list[GatewayEvent]:
        if isinstance(msg, SupportedProtocolRequest):
            return [SendText(SupportedProtocol(self._registry.protocol_version).to_json())]
        if isinstance(msg, HandshakePayload):
            return self._begin_registration(msg, now)
        if isinstance(msg, AuthenticateV2):
            return self._authenticate(msg, now)
        if isinstance(msg, LegacyAuthenticate):
            return self._close_with_error(
                GatewayRejected(
                    "the legacy authentication method is no longer supported. please update your client"
                )
            )
        return self._close_with_error(
            GatewayRejected("Only 'Register' or 'Authenticate' requests are allowed")
        )

    def _begin_registration(self, msg: HandshakePayload, now: float) -> list[GatewayEvent]:
        identity = msg.data[:32]
        if len(msg.data) >= 32 and identity in self._registry.connected:
            return self._close_with_error(
                GatewayRejected("There is already an open connection to this client")
            )
        self._handshake = GatewayHandshake(
            self._registry.identity,
            ephemeral=self._ephemeral_factory(),
            rng=self._rng,
            current_version=self._registry.protocol_version,
        )
        self.state = GatewayConnState.HANDSHAKE
        return self._handshake_text(msg, now)

    def _handshake_text(self, msg: object, now: float) -> list[GatewayEvent]:
        handshake = self._handshake
        assert handshake is not None
        if not isinstance(msg, (HandshakePayload, HandshakeError)):
            error: MixnetError = UnexpectedResponse(
                f"{getattr(msg, 'TYPE', '?')} during the registration handshake"
            )
            return [SendText(HandshakeError(str(error)).to_json()), *self._close_with_error(error)]
        try:
            reply = handshake.receive(msg)
        except MixnetError as exc:
            prefix: list[GatewayEvent] = []
            if not isinstance(msg, HandshakeError):
                prefix.append(SendText(HandshakeError(str(exc)).to_json()))
            return prefix + self._close_with_error(
                exc, f"Failed to perform registration handshake: {exc}"
            )
        if handshake.result is None:
            self._deadline = now + HANDSHAKE_STEP_TIMEOUT_S
            return [SendText(reply.to_json())]
        return [SendText(reply.to_json()), *self._finish_registration(handshake, now)]

    def _finish_registration(self, handshake: GatewayHandshake, now: float) -> list[GatewayEvent]:
        result = handshake.result
        assert result is not None
        client = result.remote_identity
        if client in self._registry.connected:  # raced with another connection
            return self._close_with_error(
                GatewayRejected("There is already an open connection to this client")
            )
        record = self._registry.clients.get(client)
        if record is None:
            record = ClientRecord(result.shared_key)
            self._registry.clients[client] = record
        else:  # re-registration: new key, bandwidth kept, replay window restarts with the key
            record.shared_key = result.shared_key
            record.last_auth_timestamp = None
        self._registry.touch(client, now)
        self._handshake = None
        self._deadline = None
        events: list[GatewayEvent] = self._become_authenticated(client, result.protocol_version)
        events.append(SendText(Register(result.protocol_version, True).to_json()))
        events.append(ClientRegistered(client))
        return events

    def _authenticate(self, msg: AuthenticateV2, now: float) -> list[GatewayEvent]:
        client = msg.client_identity
        record = self._registry.clients.get(client)
        try:
            version = verify_authenticate_v2(
                msg,
                record.shared_key if record is not None else None,
                now,
                record.last_auth_timestamp if record is not None else None,
                max_skew_s=self._registry.max_skew_s,
                current_version=self._registry.protocol_version,
            )
        except MixnetError as exc:
            return self._close_with_error(exc)
        assert record is not None
        if client in self._registry.connected:
            return self._close_with_error(
                GatewayRejected("There is already an open connection to this client")
            )
        record.last_auth_timestamp = msg.request_unix_timestamp
        self._registry.touch(client, now)
        events = self._become_authenticated(client, version)
        events.append(SendText(Authenticate(version, True, record.bandwidth).to_json()))
        events.append(ClientAuthenticated(client))
        return events

    def _become_authenticated(self, client: bytes, version: int) -> list[GatewayEvent]:
        """Mark the client connected and push what was stored (before the text reply)."""
        self.client = client
        self.protocol_version = version
        self.state = GatewayConnState.AUTHENTICATED
        self._registry.connected.add(client)
        record = self._registry.clients[client]
        stored, record.stored_messages = record.stored_messages, []
        return [SendBinary(encrypt_push(m, record.shared_key, rng=self._rng)) for m in stored]

    def _authenticated_text(self, text: str) -> list[GatewayEvent]:
        try:
            msg = parse_client_message(text)
        except MixnetError as exc:
            return [
                SendText(ErrorResponse(f"Provided text request was malformed - {exc}").to_json()),
                Dropped(exc),
            ]
        if isinstance(msg, SupportedProtocolRequest):
            return [SendText(SupportedProtocol(self._registry.protocol_version).to_json())]
        if isinstance(msg, ClaimFreeTestnetBandwidth):
            if self._registry.enforce_credentials:
                reply = ErrorResponse(ONLY_CREDENTIALS_MESSAGE)
                return [SendText(reply.to_json())]
            record = self._record()
            record.bandwidth = min(I64_MAX, record.bandwidth + self._registry.free_bandwidth)
            return [SendText(Bandwidth(record.bandwidth).to_json())]
        if isinstance(msg, (HandshakePayload, AuthenticateV2, LegacyAuthenticate)):
            error = f"received illegal message of type {msg.TYPE} in an authenticated client"
            return [SendText(ErrorResponse(error).to_json())]
        return [SendText(ErrorResponse(f"unsupported request {msg.TYPE}").to_json())]
