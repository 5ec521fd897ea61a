"""Sans-io client end of the gateway WebSocket (the shell is `gateway/client.py`).

Text and binary frames go in (with explicit time), events come out: every input, and
`handle_timeout(now)` once `poll_deadline()` has passed, returns the events it caused.
It follows the Rust gateway client: supportedProtocol, then register or authenticateV2,
then claimFreeTestnetBandwidth when low, then forwarding, accepting pushed binary frames
at any time and taking the next non-`send` text frame as the reply to its pending
control request (spec §3.8).
"""

from __future__ import annotations

import os
from enum import Enum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.gateway.frames import RequestKind, decrypt_push, encrypt_request
from smolmix_cli.mixnet.gateway.handshake import (
    CURRENT_PROTOCOL_VERSION,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_KEY_ROTATION_PACKET,
    ClientHandshake,
    HandshakeFailed,
    IncompatibleProtocol,
    KeyAgreement,
    build_authenticate_v2,
)
from smolmix_cli.mixnet.gateway.messages import (
    Authenticate,
    Bandwidth,
    ClaimFreeTestnetBandwidth,
    ErrorResponse,
    HandshakeError,
    HandshakePayload,
    OutOfBandwidth,
    Register,
    Send,
    ServerMessage,
    SupportedProtocol,
    SupportedProtocolRequest,
    TypedError,
    parse_server_message,
)
from smolmix_cli.mixnet.gateway.session_events import (
    HANDSHAKE_STEP_TIMEOUT_S,
    ONLY_CREDENTIALS_TEXT,
    Authenticated,
    BandwidthChanged,
    ClientEvent,
    CredentialsRequired,
    Dropped,
    Failed,
    GatewayErrorReported,
    GatewayRejected,
    GatewaySessionError,
    MessageReceived,
    Ready,
    Registered,
    SendBinary,
    SendText,
    SessionNotReady,
    UnexpectedResponse,
    expire_handshake,
)
from smolmix_cli.mixnet.gateway.shared_key import Rng, SharedKey

CLAIM_THRESHOLD = 40_000_000  # client claims below this (spec §3.7)


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
        return expire_handshake(self.poll_deadline(), now, self._fail)

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
        if state is ClientState.CLAIMING and isinstance(msg, ErrorResponse | TypedError):
            return self._on_initial_claim(msg)
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
        if isinstance(msg, ErrorResponse):
            if ONLY_CREDENTIALS_TEXT in msg.message.lower():
                raise CredentialsRequired(f"gateway wants zk-nym credentials: {msg.message}")
            raise GatewayRejected(f"gateway error: {msg.message}")
        if isinstance(msg, TypedError):
            # out_of_bandwidth (or a ticket replay) in answer to the free claim: no free
            # bandwidth here either way.
            raise CredentialsRequired(f"bandwidth claim refused: {msg.to_json()}")
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
