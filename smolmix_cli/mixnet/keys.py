"""x25519 and ed25519 keys as Nym uses them: raw 32-byte forms, base58 text.

x25519 keys do Sphinx (node keys) and fragment encryption (client keys); ed25519 keys are
identities (clients, gateways). Every bad key raises `InvalidKey`, never ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base
from nacl.exceptions import CryptoError

from smolmix_cli.mixnet.base58 import b58decode, b58encode
from smolmix_cli.mixnet.errors import IntegrityError, InvalidKey, MalformedData

KEY_LENGTH = 32
SIGNATURE_LENGTH = 64
_MAX_KEY_BASE58_LENGTH = 44  # 32 bytes never need more (a zero byte alone is one '1')

_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P


def _require_len(data: bytes, length: int, what: str) -> bytes:
    if len(data) != length:
        raise InvalidKey(f"{what} must be {length} bytes, got {len(data)}")
    return bytes(data)


def x25519(scalar: bytes, point: bytes) -> bytes:
    """X25519(scalar, point): clamps the scalar; InvalidKey when the result is all zero.

    libsodium's `crypto_scalarmult` (PyNaCl) gives the bytes `cryptography`'s exchange
    gives, without loading a private key first: `cryptography` derives the public key on
    every load, a second scalar multiplication Sphinx never uses (bench/sphinx.py).
    """
    _require_len(scalar, KEY_LENGTH, "x25519 scalar")
    _require_len(point, KEY_LENGTH, "x25519 public key")
    try:
        return crypto_scalarmult(bytes(scalar), bytes(point))
    except CryptoError:  # low-order point: all-zero shared secret
        raise InvalidKey("x25519 exchange with a low-order point (all-zero result)") from None


def x25519_public(scalar: bytes) -> bytes:
    """The public key (u-coordinate) of a 32-byte x25519 private key."""
    _require_len(scalar, KEY_LENGTH, "x25519 private key")
    return crypto_scalarmult_base(bytes(scalar))


def is_ed25519_point(data: bytes) -> bool:
    """Whether 32 bytes decompress to an Edwards point.

    Mirrors curve25519-dalek's `decompress` (which ed25519-dalek's `from_bytes` uses): y is
    taken mod p (non-canonical encodings accepted), a point exists iff x^2 has a square root;
    the sign bit on x = 0 is accepted. Not cross-checked against Rust output (unverified).
    """
    if len(data) != KEY_LENGTH:
        return False
    y = (int.from_bytes(data, "little") & ((1 << 255) - 1)) % _P
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x2 = u * pow(v, _P - 2, _P) % _P
    return x2 == 0 or pow(x2, (_P - 1) // 2, _P) == 1


def validate_ed25519_public(data: bytes) -> bytes:
    """`data` itself if it is a usable ed25519 public key, else InvalidKey."""
    _require_len(data, KEY_LENGTH, "ed25519 public key")
    if not is_ed25519_point(data):
        raise InvalidKey("ed25519 public key is not a point on the curve")
    return bytes(data)


def decode_key_base58(text: str, what: str) -> bytes:
    """32 key bytes from base58 text; InvalidKey on a bad character or length."""
    if len(text) > _MAX_KEY_BASE58_LENGTH:  # refuse before the quadratic big-int decode
        raise InvalidKey(f"{what}: {len(text)} characters is too long for a 32-byte key")
    try:
        raw = b58decode(text)
    except MalformedData as exc:
        raise InvalidKey(f"{what}: {exc}") from None
    return _require_len(raw, KEY_LENGTH, what)


@dataclass(frozen=True, slots=True)
class X25519KeyPair:
    """An x25519 key pair (Sphinx node key, client encryption key, ephemeral key)."""

    private_bytes: bytes = field(repr=False)
    public_bytes: bytes

    @classmethod
    def generate(cls) -> X25519KeyPair:
        key = X25519PrivateKey.generate()
        return cls(key.private_bytes_raw(), key.public_key().public_bytes_raw())

    @classmethod
    def from_private_bytes(cls, data: bytes) -> X25519KeyPair:
        return cls(_require_len(data, KEY_LENGTH, "x25519 private key"), x25519_public(data))

    def exchange(self, peer_public: bytes) -> bytes:
        return x25519(self.private_bytes, peer_public)

    def public_base58(self) -> str:
        return b58encode(self.public_bytes)


@dataclass(frozen=True, slots=True)
class Ed25519KeyPair:
    """An ed25519 identity key pair (client or gateway identity)."""

    private_bytes: bytes = field(repr=False)
    public_bytes: bytes

    @classmethod
    def generate(cls) -> Ed25519KeyPair:
        key = Ed25519PrivateKey.generate()
        return cls(key.private_bytes_raw(), key.public_key().public_bytes_raw())

    @classmethod
    def from_private_bytes(cls, data: bytes) -> Ed25519KeyPair:
        _require_len(data, KEY_LENGTH, "ed25519 private key")
        key = Ed25519PrivateKey.from_private_bytes(data)
        return cls(bytes(data), key.public_key().public_bytes_raw())

    def sign(self, message: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.private_bytes).sign(message)

    def public_base58(self) -> str:
        return b58encode(self.public_bytes)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> None:
    """Return if `signature` is valid for `message` under `public`, else IntegrityError."""
    _require_len(public, KEY_LENGTH, "ed25519 public key")
    if len(signature) != SIGNATURE_LENGTH:
        raise IntegrityError(f"ed25519 signature must be 64 bytes, got {len(signature)}")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise IntegrityError("ed25519 signature does not verify") from None
