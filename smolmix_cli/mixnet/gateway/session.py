"""Sans-io connection state machines for both ends of the gateway WebSocket.

Text and binary frames go in (with explicit time), events come out: every input, and
`handle_timeout(now)` once `poll_deadline()` has passed, returns the events it caused. The
WebSocket itself belongs to a thin shell. The client side follows the Rust gateway client:
supportedProtocol, then register or authenticateV2, then claimFreeTestnetBandwidth
when low, then forwarding, accepting pushed binary frames at any time and taking the
next non-`send` text frame as the reply to its pending control request (spec §3.8).
The gateway side mirrors nym-node: keys and bandwidth persist per client across
connections in a `GatewayRegistry` (spec §9: register on connection 1, authenticateV2
on connection 2), one `send` reply per forwarded packet, `typedError/out_of_bandwidth`
when the allowance runs out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.gateway.frames import (
    RequestKind,
    decrypt_push,
    decrypt_request,
    encrypt_push,
    encrypt_request,
)
from smolmix_cli.mixnet.gateway.handshake import (
    CURRENT_PROTOCOL_VERSION,
    MAX_REQUEST_TIMESTAMP_SKEW_S,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_KEY_ROTATION_PACKET,
    ClientHandshake,
    GatewayHandshake,
    HandshakeFailed,
    IncompatibleProtocol,
    KeyAgreement,
    X25519Ephemeral,
    build_authenticate_v2,
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
    ServerMessage,
    SupportedProtocol,
    SupportedProtocolRequest,
    TypedError,
    parse_client_message,
    parse_server_message,
)
from smolmix_cli.mixnet.gateway.shared_key import Rng, SharedKey
from smolmix_cli.mixnet.packet.mix_packet import MixPacket

FREE_TESTNET_BANDWIDTH = 64 * 1024**3  # 68,719,476,736 bytes (spec §3.7)
CLAIM_THRESHOLD = 40_000_000  # client claims below this (spec §3.7)
HANDSHAKE_STEP_TIMEOUT_S = 5.0
I64_MAX = 2**63 - 1
TIMEOUT_MESSAGE = "timed out waiting for a handshake message"


class GatewaySessionError(MixnetError):
    """A connection-level failure (the shell should close the socket)."""


class GatewayRejected(GatewaySessionError):
    """The gateway answered a control request with an error or a refusal."""


class UnexpectedResponse(GatewaySessionError, MalformedData):
    """A well-formed message that makes no sense in the current state."""


class HandshakeTimeout(GatewaySessionError):
    """A registration handshake step did not arrive within 5 s."""


class SessionNotReady(GatewaySessionError):
    """Packets offered before the session could forward them."""


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class SendText:
    text: str


@dataclass(frozen=True)
class SendBinary:
    data: bytes


@dataclass(frozen=True)
class Dropped:
    """Bad input that was discarded without ending the connection."""

    error: MixnetError


@dataclass(frozen=True)
class Failed:
    """The connection is finished; the shell closes the socket."""

    error: MixnetError


@dataclass(frozen=True)
class Registered:
    shared_key: SharedKey
    protocol_version: int


@dataclass(frozen=True)
class Authenticated:
    protocol_version: int
    bandwidth_remaining: int


@dataclass(frozen=True)
class BandwidthChanged:
    remaining: int


@dataclass(frozen=True)
class Ready:
    """The client may now hand over packets."""


@dataclass(frozen=True)
class MessageReceived:
    """One message the gateway pushed (an ack or a packet's payload)."""

    message: bytes


@dataclass(frozen=True)
class GatewayErrorReported:
    """A non-fatal error reply (`error` or `typedError`) while forwarding."""

    message: str
    out_of_bandwidth: OutOfBandwidth | None = None


@dataclass(frozen=True)
class ClientRegistered:
    identity: bytes


@dataclass(frozen=True)
class ClientAuthenticated:
    identity: bytes


@dataclass(frozen=True)
class ForwardPacket:
    """A MixPacket the gateway must hand to its next hop (spec §2.8)."""

    kind: RequestKind
    mix_packet: bytes
    client: bytes


ClientEvent = (
    SendText
    | SendBinary
    | Dropped
    | Failed
    | Registered
    | Authenticated
    | BandwidthChanged
    | Ready
    | MessageReceived
    | GatewayErrorReported
)
GatewayEvent = (
    SendText
    | SendBinary
    | Dropped
    | Failed
    | ClientRegistered
    | ClientAuthenticated
    | ForwardPacket
)


# --------------------------------------------------------------------------- client


class ClientState(Enum):
    IDLE = "idle"
    AWAIT_VERSION = "await-version"
    HANDSHAKE = "handshake"
    AWAIT_REGISTER = "await-register"
    AWAIT_AUTHENTICATE = "await-authenticate"
    CLAIMING = "claiming"
    READY = "ready"
    FAILED = "failed"


class GatewayClientSession:
    """One client connection to its gateway."""

    def __init__(
        self,
        identity: Ed25519PrivateKey,
        gateway_identity: bytes,
        *,
        shared_key: SharedKey | None = None,
        rng: Rng = os.urandom,
        ephemeral: KeyAgreement | None = None,
        claim_threshold: int = CLAIM_THRESHOLD,
        claim_free_bandwidth: bool = True,
    ) -> None:
        self._identity = identity
        self._gateway_identity = bytes(gateway_identity)
        self.shared_key = shared_key
        self._rng = rng
        self._ephemeral = ephemeral
        self._claim_threshold = claim_threshold
        self._claim_free = claim_free_bandwidth
        self.state = ClientState.IDLE
        self.protocol_version = 0
        self.bandwidth_remaining = 0
        self._handshake: ClientHandshake | None = None
        self._pending_key: SharedKey | None = None
        self._deadline: float | None = None
        self._claim_pending = False

    # -- inputs

    def start(self) -> list[ClientEvent]:
        if self.state is not ClientState.IDLE:
            raise GatewaySessionError("session already started")
        self.state = ClientState.AWAIT_VERSION
        return [SendText(SupportedProtocolRequest().to_json())]

    def receive_text(self, text: str, *, now: float) -> list[ClientEvent]:
        if self.state in (ClientState.IDLE, ClientState.FAILED):
            return [Dropped(UnexpectedResponse(f"text frame in state {self.state.value}"))]
        try:
            msg = parse_server_message(text)
        except MixnetError as exc:
            # Rust drops stray text during the handshake and while forwarding;
            # an unparseable reply to a control request is fatal.
            if self.state in (ClientState.READY, ClientState.HANDSHAKE):
                return [Dropped(exc)]
            return self._fail(exc)
        try:
            return self._on_message(msg, now)
        except MixnetError as exc:
            return self._fail(exc)

    def receive_binary(self, data: bytes) -> list[ClientEvent]:
        """Pushed messages may arrive in any state once a key exists (even before replies)."""
        if self.shared_key is None:
            return [Dropped(UnexpectedResponse("binary frame before a shared key exists"))]
        try:
            return [MessageReceived(decrypt_push(data, self.shared_key))]
        except MixnetError as exc:
            return [Dropped(exc)]

    def poll_deadline(self) -> float | None:
        """When `handle_timeout` next has something to do: the end of a registration step."""
        return self._deadline if self.state is ClientState.HANDSHAKE else None

    def handle_timeout(self, now: float) -> list[ClientEvent]:
        """Aborts a registration step that took 5 s or more."""
        deadline = self.poll_deadline()
        if deadline is not None and now >= deadline:
            events: list[ClientEvent] = [SendText(HandshakeError(TIMEOUT_MESSAGE).to_json())]
            return events + self._fail(HandshakeTimeout(TIMEOUT_MESSAGE))
        return []

    def send_mix_packet(self, mix_packet: bytes) -> list[ClientEvent]:
        """One binary frame (ForwardSphinxV2 from protocol 5 on), preceded by a claim when low."""
        if self.state is not ClientState.READY or self.shared_key is None:
            raise SessionNotReady(f"cannot forward packets in state {self.state.value}")
        events: list[ClientEvent] = []
        if (
            self._claim_free
            and not self._claim_pending
            and self.bandwidth_remaining < self._claim_threshold
        ):
            self._claim_pending = True
            events.append(SendText(ClaimFreeTestnetBandwidth().to_json()))
        kind = (
            RequestKind.FORWARD_SPHINX_V2
            if self.protocol_version >= PROTOCOL_KEY_ROTATION_PACKET
            else RequestKind.FORWARD_SPHINX
        )
        events.append(SendBinary(encrypt_request(kind, mix_packet, self.shared_key, rng=self._rng)))
        return events

    # -- state machine

    def _fail(self, error: MixnetError) -> list[ClientEvent]:
        self.state = ClientState.FAILED
        self._handshake = None
        return [Failed(error)]

    def _on_message(self, msg: ServerMessage, now: float) -> list[ClientEvent]:
        state = self.state
        if isinstance(msg, Send):  # never the reply to a control request
            self.bandwidth_remaining = msg.remaining_bandwidth
            return [BandwidthChanged(msg.remaining_bandwidth)]
        if state is ClientState.AWAIT_VERSION:
            return self._on_version(msg, now)
        if state is ClientState.HANDSHAKE:
            return self._on_handshake(msg, now)
        if isinstance(msg, ErrorResponse) and state is not ClientState.READY:
            raise GatewayRejected(f"gateway error: {msg.message}")
        if state is ClientState.AWAIT_REGISTER:
            return self._on_register(msg)
        if state is ClientState.AWAIT_AUTHENTICATE:
            return self._on_authenticate(msg)
        if state is ClientState.CLAIMING:
            return self._on_initial_claim(msg)
        return self._on_ready(msg)

    def _on_version(self, msg: ServerMessage, now: float) -> list[ClientEvent]:
        if isinstance(msg, ErrorResponse):
            raise GatewayRejected(f"gateway error: {msg.message}")
        if not isinstance(msg, SupportedProtocol):
            raise UnexpectedResponse(f"expected supportedProtocol, got {msg.TYPE}")
        if msg.version < MIN_PROTOCOL_VERSION:
            raise IncompatibleProtocol(
                f"gateway speaks protocol v{msg.version}; this client needs at least v{MIN_PROTOCOL_VERSION}"
            )
        self.protocol_version = min(msg.version, CURRENT_PROTOCOL_VERSION)
        if self.shared_key is not None:
            request = build_authenticate_v2(
                self._identity, self.shared_key, self.protocol_version, now, rng=self._rng
            )
            self.state = ClientState.AWAIT_AUTHENTICATE
            return [SendText(request.to_json())]
        self._handshake = ClientHandshake(
            self._identity,
            self._gateway_identity,
            self.protocol_version,
            ephemeral=self._ephemeral,
            rng=self._rng,
        )
        self.state = ClientState.HANDSHAKE
        self._deadline = now + HANDSHAKE_STEP_TIMEOUT_S
        return [SendText(self._handshake.start().to_json())]

    def _on_handshake(self, msg: ServerMessage, now: float) -> list[ClientEvent]:
        assert self._handshake is not None
        if isinstance(msg, ErrorResponse):
            raise GatewayRejected(f"gateway error: {msg.message}")
        if not isinstance(msg, (HandshakePayload, HandshakeError)):
            return [Dropped(UnexpectedResponse(f"{msg.TYPE} during the registration handshake"))]
        try:
            reply = self._handshake.receive(msg)
        except HandshakeFailed as exc:
            if isinstance(msg, HandshakeError):
                raise
            return [SendText(HandshakeError(str(exc)).to_json()), *self._fail(exc)]
        except MixnetError as exc:
            return [SendText(HandshakeError(str(exc)).to_json()), *self._fail(exc)]
        if reply is not None:
            self._deadline = now + HANDSHAKE_STEP_TIMEOUT_S
            return [SendText(reply.to_json())]
        result = self._handshake.result
        assert result is not None
        self.protocol_version = result.protocol_version
        self._pending_key = result.shared_key
        self._handshake = None
        self._deadline = None
        self.state = ClientState.AWAIT_REGISTER
        return []

    def _on_register(self, msg: ServerMessage) -> list[ClientEvent]:
        if not isinstance(msg, Register):
            raise UnexpectedResponse(f"expected register, got {msg.TYPE}")
        if not msg.status:
            raise GatewayRejected("gateway refused the registration")
        assert self._pending_key is not None
        self.shared_key = self._pending_key
        self.bandwidth_remaining = 0
        return [Registered(self._pending_key, self.protocol_version), *self._after_auth()]

    def _on_authenticate(self, msg: ServerMessage) -> list[ClientEvent]:
        if not isinstance(msg, Authenticate):
            raise UnexpectedResponse(f"expected authenticate, got {msg.TYPE}")
        if msg.protocol_version > CURRENT_PROTOCOL_VERSION:
            raise IncompatibleProtocol(f"gateway insists on protocol v{msg.protocol_version}")
        if not msg.status:
            raise GatewayRejected("gateway refused the authentication")
        self.protocol_version = msg.protocol_version
        self.bandwidth_remaining = msg.bandwidth_remaining
        return [Authenticated(msg.protocol_version, msg.bandwidth_remaining), *self._after_auth()]

    def _after_auth(self) -> list[ClientEvent]:
        if self._claim_free and self.bandwidth_remaining < self._claim_threshold:
            self.state = ClientState.CLAIMING
            return [SendText(ClaimFreeTestnetBandwidth().to_json())]
        self.state = ClientState.READY
        return [Ready()]

    def _on_initial_claim(self, msg: ServerMessage) -> list[ClientEvent]:
        if isinstance(msg, TypedError):
            raise GatewayRejected(f"bandwidth claim refused: {msg.to_json()}")
        if not isinstance(msg, Bandwidth):
            raise UnexpectedResponse(f"expected bandwidth, got {msg.TYPE}")
        self.bandwidth_remaining = msg.available_total
        self.state = ClientState.READY
        return [BandwidthChanged(msg.available_total), Ready()]

    def _on_ready(self, msg: ServerMessage) -> list[ClientEvent]:
        if isinstance(msg, Bandwidth):
            self._claim_pending = False
            self.bandwidth_remaining = msg.available_total
            return [BandwidthChanged(msg.available_total)]
        if isinstance(msg, TypedError):
            self._claim_pending = False
            oob = msg.error if isinstance(msg.error, OutOfBandwidth) else None
            if oob is not None:
                self.bandwidth_remaining = oob.available
            return [GatewayErrorReported(msg.to_json(), oob)]
        if isinstance(msg, ErrorResponse):
            self._claim_pending = False
            return [GatewayErrorReported(msg.message)]
        return [Dropped(UnexpectedResponse(f"unexpected {msg.TYPE} while forwarding"))]


# --------------------------------------------------------------------------- gateway


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
    ) -> None:
        self.identity = identity
        self.identity_public = ed25519_public_bytes(identity)
        self.free_bandwidth = free_bandwidth
        self.enforce_credentials = enforce_credentials
        self.max_skew_s = max_skew_s
        self.protocol_version = protocol_version
        self.clients: dict[bytes, ClientRecord] = {}
        self.connected: set[bytes] = set()

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
        deadline = self.poll_deadline()
        if deadline is not None and now >= deadline:
            events: list[GatewayEvent] = [SendText(HandshakeError(TIMEOUT_MESSAGE).to_json())]
            return events + self._close_with_error(HandshakeTimeout(TIMEOUT_MESSAGE))
        return []

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
        return [SendText(reply.to_json()), *self._finish_registration(handshake)]

    def _finish_registration(self, handshake: GatewayHandshake) -> list[GatewayEvent]:
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
                reply = ErrorResponse("this gateway only accepts zk-nym credentials")
                return [SendText(reply.to_json())]
            record = self._record()
            record.bandwidth = min(I64_MAX, record.bandwidth + self._registry.free_bandwidth)
            return [SendText(Bandwidth(record.bandwidth).to_json())]
        if isinstance(msg, (HandshakePayload, AuthenticateV2, LegacyAuthenticate)):
            error = f"received illegal message of type {msg.TYPE} in an authenticated client"
            return [SendText(ErrorResponse(error).to_json())]
        return [SendText(ErrorResponse(f"unsupported request {msg.TYPE}").to_json())]
