"""Key derivation shared by the packet layer and the gateway protocol.

Nym uses two different KDFs: HKDF-SHA256 inside Sphinx (kept in the Sphinx
modules) and RFC 5869 HKDF whose HMAC runs over unkeyed BLAKE3 (64-byte block,
32-byte output) for packet, reply and gateway keys. Mixing them up yields keys
that look fine and never match the real network, so this one lives alone.
"""

from __future__ import annotations

import hmac
from typing import Any, cast

import blake3

_HASH_LEN = 32


def _hmac_blake3(key: bytes, data: bytes) -> bytes:
    # blake3 objects offer the hashlib interface (block_size 64) that hmac needs.
    return hmac.new(key, data, digestmod=cast(Any, blake3.blake3)).digest()


def blake3_digest(data: bytes) -> bytes:
    """Plain 32-byte BLAKE3 hash (reply-key digests)."""
    return blake3.blake3(data).digest()


def hkdf_blake3(ikm: bytes, length: int, *, salt: bytes | None = None, info: bytes = b"") -> bytes:
    """HKDF (extract then expand) with HMAC-BLAKE3; a missing salt is 32 zero bytes."""
    if not 0 < length <= 255 * _HASH_LEN:
        raise ValueError(f"HKDF output length {length} out of range")
    prk = _hmac_blake3(salt if salt is not None else bytes(_HASH_LEN), ikm)
    out = bytearray()
    block = b""
    counter = 1
    while len(out) < length:
        block = _hmac_blake3(prk, block + info + bytes([counter]))
        out += block
        counter += 1
    return bytes(out[:length])
