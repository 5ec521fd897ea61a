"""Registration handshake and authenticateV2 of the gateway protocol (spec §3.2, §3.4, §3.5).

Both sides live here because a faithful local gateway must derive exactly the key a
real client derives, and the recorded transcript pins every byte of every step. The
state machines take and return `HandshakePayload` messages (never sockets) and draw all
randomness (ephemeral key, salt, nonces) from injectable sources so a recorded run can
be replayed byte for byte.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, replace
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from smolmix_cli.mixnet import keys
from smolmix_cli.mixnet.errors import (
    IntegrityError,
    InvalidKey,
    MalformedData,
    MixnetError,
    ReplayDetected,
)
from smolmix_cli.mixnet.gateway.messages import AuthenticateV2, HandshakeError, HandshakePayload
from smolmix_cli.mixnet.gateway.shared_key import NONCE_LEN, TAG_LEN, Rng, SharedKey, take_random
from smolmix_cli.mixnet.kdf import hkdf_blake3

# Protocol versions (nym common/gateway-requests/src/lib.rs)
PROTOCOL_AES_GCM_SIV = 3
PROTOCOL_AUTHENTICATE_V2 = 4
PROTOCOL_KEY_ROTATION_PACKET = 5
PROTOCOL_UPGRADE_MODE = 6
CURRENT_PROTOCOL_VERSION = PROTOCOL_UPGRADE_MODE
MIN_PROTOCOL_VERSION = PROTOCOL_AUTHENTICATE_V2
"""Older versions mean legacy keys or v1 authentication, which no gateway accepts any more."""

X25519_LEN = 32
ED25519_PUBLIC_LEN = 32
ED25519_SIGNATURE_LEN = 64
SALT_LEN = 16
SHARED_KEY_LEN = 32
SIGNATURE_CIPHERTEXT_LEN = ED25519_SIGNATURE_LEN + TAG_LEN
INIT_LEN = ED25519_PUBLIC_LEN + X25519_LEN + SALT_LEN  # 80
GATEWAY_MATERIAL_LEN = X25519_LEN + SIGNATURE_CIPHERTEXT_LEN + NONCE_LEN  # 124
CLIENT_MATERIAL_LEN = SIGNATURE_CIPHERTEXT_LEN + NONCE_LEN  # 92
MAX_REQUEST_TIMESTAMP_SKEW_S = 120


# --------------------------------------------------------------------------- errors


class HandshakeFailed(MixnetError):
    """The registration handshake cannot continue."""


class RemoteHandshakeError(HandshakeFailed):
    """The peer aborted with a handshakeError message."""


class IncompatibleProtocol(HandshakeFailed):
    """The peer's protocol version is outside what both sides can speak."""


class UnexpectedHandshakeMessage(HandshakeFailed, MalformedData):
    """A handshake message arrived in a state that does not expect one."""


class BadSignature(IntegrityError):
    """An ed25519 signature did not verify under the expected identity."""


class AuthenticationFailed(MixnetError):
    """An authenticateV2 request was refused."""


class NotRegistered(AuthenticationFailed):
    """No shared key is stored for this client."""


class ExcessiveTimestampSkew(AuthenticationFailed):
    """The request timestamp is more than the allowed skew away from the gateway clock."""


class CiphertextMismatch(AuthenticationFailed, IntegrityError):
    """The address ciphertext is not the stored key's encryption of the identity."""


class RequestReuse(AuthenticationFailed, ReplayDetected):
    """The request timestamp is not newer than the last one used (a replay)."""


class AuthenticationSignatureInvalid(AuthenticationFailed, BadSignature):
    """The authenticateV2 request signature did not verify."""


# --------------------------------------------------------------------------- keys


class KeyAgreement(Protocol):
    """An ephemeral X25519 secret; a protocol so a recorded run can stand in for one."""

    def public_bytes(self) -> bytes: ...

    def exchange(self, peer_public: bytes) -> bytes: ...


class X25519Ephemeral:
    """The real ephemeral key: fresh by default, or from given private bytes."""

    def __init__(self, private: X25519PrivateKey | None = None) -> None:
        self._private = private if private is not None else X25519PrivateKey.generate()

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> X25519Ephemeral:
        if len(raw) != X25519_LEN:
            raise InvalidKey(f"x25519 private key must be {X25519_LEN} bytes")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    def public_bytes(self) -> bytes:
        return self._private.public_key().public_bytes_raw()

    def exchange(self, peer_public: bytes) -> bytes:
        if len(peer_public) != X25519_LEN:
            raise InvalidKey(f"x25519 public key must be {X25519_LEN} bytes")
        try:
            return self._private.exchange(X25519PublicKey.from_public_bytes(peer_public))
        except ValueError:  # a low-order point gives the all-zero secret
            raise InvalidKey("x25519 exchange with a low-order point") from None


def ed25519_public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> bool:
    """keys.ed25519_verify as a yes/no answer, for the handshake's own error types."""
    try:
        keys.ed25519_verify(public, message, signature)
    except MixnetError:
        return False
    return True


def derive_shared_key(dh_secret: bytes, salt: bytes) -> SharedKey:
    """HKDF with HMAC-BLAKE3, the client's 16-byte salt, empty info, 32 bytes out."""
    return SharedKey(hkdf_blake3(dh_secret, SHARED_KEY_LEN, salt=salt))


# --------------------------------------------------------------------------- step payloads


@dataclass(frozen=True)
class Initialisation:
    """Step 1, C->G: identity ‖ ephemeral ‖ salt."""

    identity: bytes
    ephemeral: bytes
    salt: bytes

    def to_bytes(self) -> bytes:
        return self.identity + self.ephemeral + self.salt

    @classmethod
    def from_bytes(cls, data: bytes) -> Initialisation:
        if len(data) != INIT_LEN:
            raise MalformedData(f"handshake init must be {INIT_LEN} bytes, got {len(data)}")
        a, b = ED25519_PUBLIC_LEN, ED25519_PUBLIC_LEN + X25519_LEN
        return cls(data[:a], data[a:b], data[b:])


@dataclass(frozen=True)
class MaterialExchange:
    """Step 3, C->G (and the tail of step 2): encrypted signature ‖ nonce."""

    signature_ciphertext: bytes
    nonce: bytes

    def to_bytes(self) -> bytes:
        return self.signature_ciphertext + self.nonce

    @classmethod
    def from_bytes(cls, data: bytes) -> MaterialExchange:
        if len(data) != CLIENT_MATERIAL_LEN:
            raise MalformedData(
                f"key material must be {CLIENT_MATERIAL_LEN} bytes, got {len(data)}"
            )
        return cls(data[:SIGNATURE_CIPHERTEXT_LEN], data[SIGNATURE_CIPHERTEXT_LEN:])


@dataclass(frozen=True)
class GatewayMaterialExchange:
    """Step 2, G->C: gateway ephemeral ‖ encrypted signature ‖ nonce."""

    ephemeral: bytes
    material: MaterialExchange

    def to_bytes(self) -> bytes:
        return self.ephemeral + self.material.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> GatewayMaterialExchange:
        if len(data) != GATEWAY_MATERIAL_LEN:
            raise MalformedData(
                f"gateway key material must be {GATEWAY_MATERIAL_LEN} bytes, got {len(data)}"
            )
        return cls(data[:X25519_LEN], MaterialExchange.from_bytes(data[X25519_LEN:]))


def parse_finalization(data: bytes) -> bool:
    """Step 4: one byte, 1 for success (anything else is failure, as in Rust)."""
    if len(data) != 1:
        raise MalformedData(f"handshake finalization must be 1 byte, got {len(data)}")
    return data[0] == 1


@dataclass(frozen=True)
class HandshakeResult:
    shared_key: SharedKey
    protocol_version: int
    remote_identity: bytes


def _seal_signature(
    identity: Ed25519PrivateKey, key: SharedKey, own_eph: bytes, peer_eph: bytes, rng: Rng
) -> MaterialExchange:
    signature = identity.sign(own_eph + peer_eph)
    nonce = SharedKey.random_nonce(rng)
    return MaterialExchange(key.encrypt(signature, nonce), nonce)


def _open_signature(
    key: SharedKey,
    material: MaterialExchange,
    peer_identity: bytes,
    peer_eph: bytes,
    own_eph: bytes,
) -> None:
    signature = key.decrypt(material.signature_ciphertext, material.nonce)
    if not ed25519_verify(peer_identity, signature, peer_eph + own_eph):
        raise BadSignature("handshake signature does not verify under the peer identity")


def _expect_payload(msg: HandshakePayload | HandshakeError) -> HandshakePayload:
    if isinstance(msg, HandshakeError):
        raise RemoteHandshakeError(f"peer aborted the handshake: {msg.message}")
    return msg


# --------------------------------------------------------------------------- client side


class ClientHandshake:
    """The client's side: start() then receive() twice; result once finalized."""

    def __init__(
        self,
        identity: Ed25519PrivateKey,
        gateway_identity: bytes,
        protocol_version: int,
        *,
        ephemeral: KeyAgreement | None = None,
        rng: Rng = os.urandom,
    ) -> None:
        if len(gateway_identity) != ED25519_PUBLIC_LEN:
            raise InvalidKey("gateway identity must be a 32-byte ed25519 public key")
        self._identity = identity
        self._gateway_identity = bytes(gateway_identity)
        self.protocol_version = protocol_version
        self._ephemeral: KeyAgreement = ephemeral if ephemeral is not None else X25519Ephemeral()
        self._rng = rng
        self._salt = b""
        self._key: SharedKey | None = None
        self._step = 0
        self.result: HandshakeResult | None = None

    def start(self) -> HandshakePayload:
        if self._step != 0:
            raise UnexpectedHandshakeMessage("handshake already started")
        self._salt = take_random(self._rng, SALT_LEN)
        init = Initialisation(
            ed25519_public_bytes(self._identity), self._ephemeral.public_bytes(), self._salt
        )
        self._step = 1
        return HandshakePayload(self.protocol_version, init.to_bytes())

    def receive(self, msg: HandshakePayload | HandshakeError) -> HandshakePayload | None:
        """Step 2 yields the step-3 reply; step 4 yields None and sets `result`."""
        payload = _expect_payload(msg)
        if self._step == 1:
            return self._on_gateway_material(payload)
        if self._step == 2:
            self._on_finalization(payload)
            return None
        raise UnexpectedHandshakeMessage(f"no handshake message expected in step {self._step}")

    def _on_gateway_material(self, payload: HandshakePayload) -> HandshakePayload:
        version = payload.protocol_version
        if version > CURRENT_PROTOCOL_VERSION or version < MIN_PROTOCOL_VERSION:
            raise IncompatibleProtocol(
                f"gateway wants protocol v{version}; this client speaks "
                f"v{MIN_PROTOCOL_VERSION}..v{CURRENT_PROTOCOL_VERSION}"
            )
        self.protocol_version = version
        step2 = GatewayMaterialExchange.from_bytes(payload.data)
        own_eph = self._ephemeral.public_bytes()
        key = derive_shared_key(self._ephemeral.exchange(step2.ephemeral), self._salt)
        _open_signature(key, step2.material, self._gateway_identity, step2.ephemeral, own_eph)
        self._key = key
        reply = _seal_signature(self._identity, key, own_eph, step2.ephemeral, self._rng)
        self._step = 2
        return HandshakePayload(self.protocol_version, reply.to_bytes())

    def _on_finalization(self, payload: HandshakePayload) -> None:
        if not parse_finalization(payload.data):
            raise HandshakeFailed("gateway reported handshake failure")
        assert self._key is not None
        self._step = 3
        self.result = HandshakeResult(self._key, self.protocol_version, self._gateway_identity)


# --------------------------------------------------------------------------- gateway side


class GatewayHandshake:
    """The gateway's side: receive(init) -> step 2, receive(material) -> step 4 and result."""

    def __init__(
        self,
        identity: Ed25519PrivateKey,
        *,
        ephemeral: KeyAgreement | None = None,
        rng: Rng = os.urandom,
        current_version: int = CURRENT_PROTOCOL_VERSION,
    ) -> None:
        self._identity = identity
        self._ephemeral: KeyAgreement = ephemeral if ephemeral is not None else X25519Ephemeral()
        self._rng = rng
        self._current = current_version
        self.protocol_version = 0
        self.client_identity = b""
        self._client_eph = b""
        self._key: SharedKey | None = None
        self._step = 0
        self.result: HandshakeResult | None = None

    def negotiate(self, proposed: int) -> int:
        """The client's proposal, or ours if it is newer; refuse pre-v4 clients."""
        if proposed < MIN_PROTOCOL_VERSION:
            raise IncompatibleProtocol(
                f"client proposes protocol v{proposed}; this gateway needs at least v{MIN_PROTOCOL_VERSION}"
            )
        return min(proposed, self._current)

    def receive(self, msg: HandshakePayload | HandshakeError) -> HandshakePayload:
        payload = _expect_payload(msg)
        if self._step == 0:
            return self._on_init(payload)
        if self._step == 1:
            return self._on_material(payload)
        raise UnexpectedHandshakeMessage(f"no handshake message expected in step {self._step}")

    def _on_init(self, payload: HandshakePayload) -> HandshakePayload:
        version = self.negotiate(payload.protocol_version)
        init = Initialisation.from_bytes(payload.data)
        key = derive_shared_key(self._ephemeral.exchange(init.ephemeral), init.salt)
        own_eph = self._ephemeral.public_bytes()
        material = _seal_signature(self._identity, key, own_eph, init.ephemeral, self._rng)
        self.protocol_version = version
        self.client_identity = init.identity
        self._client_eph = init.ephemeral
        self._key = key
        self._step = 1
        return HandshakePayload(version, GatewayMaterialExchange(own_eph, material).to_bytes())

    def _on_material(self, payload: HandshakePayload) -> HandshakePayload:
        # Rust only logs a differing echoed version; so do we (by ignoring it).
        material = MaterialExchange.from_bytes(payload.data)
        assert self._key is not None
        own_eph = self._ephemeral.public_bytes()
        _open_signature(self._key, material, self.client_identity, self._client_eph, own_eph)
        self._step = 2
        self.result = HandshakeResult(self._key, self.protocol_version, self.client_identity)
        return HandshakePayload(self.protocol_version, b"\x01")


# --------------------------------------------------------------------------- authenticateV2


def build_authenticate_v2(
    identity: Ed25519PrivateKey,
    key: SharedKey,
    protocol_version: int,
    now: float,
    *,
    rng: Rng = os.urandom,
) -> AuthenticateV2:
    """The client's reconnect request at unix time `now` (whole seconds, floored)."""
    if now < 0:
        raise ValueError("clock before 1970")
    client_identity = ed25519_public_bytes(identity)
    nonce = SharedKey.random_nonce(rng)
    unsigned = AuthenticateV2(
        protocol_version=protocol_version,
        client_identity=client_identity,
        address_ciphertext=key.encrypt(client_identity, nonce),
        nonce=nonce,
        request_unix_timestamp=int(now),
        request_signature=bytes(ED25519_SIGNATURE_LEN),
    )
    return replace(unsigned, request_signature=identity.sign(unsigned.signed_bytes()))


def verify_authenticate_v2(
    request: AuthenticateV2,
    stored_key: SharedKey | None,
    now: float,
    last_used_timestamp: int | None,
    *,
    max_skew_s: float = MAX_REQUEST_TIMESTAMP_SKEW_S,
    current_version: int = CURRENT_PROTOCOL_VERSION,
) -> int:
    """The gateway's checks in Nym's order; returns the negotiated protocol version."""
    version = request.protocol_version
    if version < MIN_PROTOCOL_VERSION or version > current_version:
        raise IncompatibleProtocol(
            f"client authenticates with protocol v{version}; gateway speaks "
            f"v{MIN_PROTOCOL_VERSION}..v{current_version}"
        )
    ts = request.request_unix_timestamp
    if ts < now - max_skew_s or ts - max_skew_s > now:
        raise ExcessiveTimestampSkew(f"request timestamp {ts} vs gateway clock {now:.3f}")
    if not ed25519_verify(
        request.client_identity, request.request_signature, request.signed_bytes()
    ):
        raise AuthenticationSignatureInvalid("authenticateV2 signature does not verify")
    if stored_key is None:
        raise NotRegistered("the client is not registered")
    if len(request.nonce) != NONCE_LEN:
        raise MalformedData(f"authenticateV2 nonce must be {NONCE_LEN} bytes")
    expected = stored_key.encrypt(request.client_identity, request.nonce)
    if not hmac.compare_digest(expected, request.address_ciphertext):
        raise CiphertextMismatch("address ciphertext does not match the stored key")
    if last_used_timestamp is not None and ts <= last_used_timestamp:
        raise RequestReuse(f"request timestamp {ts} not newer than {last_used_timestamp}")
    return version
