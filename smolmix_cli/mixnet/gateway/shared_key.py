"""The client-gateway shared key: AES-256-GCM-SIV with 12-byte nonces, no associated data.

One key protects the handshake signatures, the authenticateV2 address ciphertext and
every binary frame, so its failure modes (wrong length, bad tag) are typed once here.
GCM-SIV is nonce-misuse resistant, which is why Nym is content with random nonces.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from smolmix_cli.mixnet.errors import IntegrityError, InvalidKey, MalformedData

KEY_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16

Rng = Callable[[int], bytes]
"""Source of random bytes (os.urandom by default); injectable so transcripts replay."""


def take_random(rng: Rng, n: int) -> bytes:
    """n bytes from rng, refusing a source that hands back the wrong amount."""
    out = rng(n)
    if len(out) != n:
        raise ValueError(f"random source returned {len(out)} bytes, wanted {n}")
    return bytes(out)


class SharedKey:
    """A derived gateway key; equality compares the key bytes."""

    __slots__ = ("_aead", "_raw")

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_LEN:
            raise InvalidKey(f"gateway shared key must be {KEY_LEN} bytes, got {len(raw)}")
        self._raw = bytes(raw)
        self._aead = AESGCMSIV(self._raw)

    @property
    def raw(self) -> bytes:
        return self._raw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SharedKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:  # never print key material
        return "SharedKey(<32 bytes>)"

    def encrypt(self, plaintext: bytes, nonce: bytes) -> bytes:
        """Ciphertext with the 16-byte tag appended."""
        _check_nonce(nonce)
        return self._aead.encrypt(nonce, plaintext, None)

    def decrypt(self, ciphertext: bytes, nonce: bytes) -> bytes:
        _check_nonce(nonce)
        if len(ciphertext) < TAG_LEN:
            raise MalformedData(f"ciphertext of {len(ciphertext)} bytes is shorter than its tag")
        try:
            return self._aead.decrypt(nonce, ciphertext, None)
        except InvalidTag:
            raise IntegrityError("AES-256-GCM-SIV tag did not verify") from None

    @staticmethod
    def random_nonce(rng: Rng = os.urandom) -> bytes:
        return take_random(rng, NONCE_LEN)


def _check_nonce(nonce: bytes) -> None:
    if len(nonce) != NONCE_LEN:
        raise MalformedData(f"AES-256-GCM-SIV nonce must be {NONCE_LEN} bytes, got {len(nonce)}")
