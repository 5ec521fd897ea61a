"""Lioness wide-block cipher over ChaCha20 and keyed BLAKE2b, as the `lioness` 0.1.2 crate.

Sphinx payloads are one Lioness block each: any bit flip garbles the whole block, which is
what lets the final hop detect tampering by the 16 leading zero bytes. Key (192 bytes) =
k1 (ChaCha, 32) ‖ k2 (BLAKE2b, 64) ‖ k3 (ChaCha, 32) ‖ k4 (BLAKE2b, 64).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from smolmix_cli.mixnet.errors import MalformedData

KEY_SIZE = 192
HALF = 32  # the L part; ChaCha20 key and BLAKE2b output length
_NONCE = bytes(16)  # counter 0 ‖ 8-byte zero nonce, as DJB ChaCha20 with a zero nonce


def _chacha(key: int, data: bytes) -> bytes:
    """XOR `data` with the ChaCha20 keystream of `key` (zero nonce, counter 0)."""
    cipher = Cipher(algorithms.ChaCha20(key.to_bytes(HALF, "little"), _NONCE), None)
    return cipher.encryptor().update(data)


class Lioness:
    """One 192-byte Lioness key; encrypt/decrypt blocks longer than 32 bytes."""

    __slots__ = ("_h2", "_h4", "_k1", "_k3")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise MalformedData(f"Lioness key must be {KEY_SIZE} bytes, got {len(key)}")
        self._k1 = int.from_bytes(key[0:32], "little")
        self._h2 = hashlib.blake2b(key=key[32:96], digest_size=HALF)
        self._k3 = int.from_bytes(key[96:128], "little")
        self._h4 = hashlib.blake2b(key=key[128:192], digest_size=HALF)

    @staticmethod
    def _split(block: bytes) -> tuple[int, bytes]:
        if len(block) <= HALF:
            raise MalformedData(f"Lioness block must be longer than {HALF} bytes: {len(block)}")
        return int.from_bytes(block[:HALF], "little"), bytes(block[HALF:])

    def _hash(self, keyed: hashlib.blake2b, right: bytes) -> int:
        h = keyed.copy()
        h.update(right)
        return int.from_bytes(h.digest(), "little")

    def encrypt(self, block: bytes) -> bytes:
        left, right = self._split(block)
        right = _chacha(left ^ self._k1, right)
        left ^= self._hash(self._h2, right)
        right = _chacha(left ^ self._k3, right)
        left ^= self._hash(self._h4, right)
        return left.to_bytes(HALF, "little") + right

    def decrypt(self, block: bytes) -> bytes:
        left, right = self._split(block)
        left ^= self._hash(self._h4, right)
        right = _chacha(left ^ self._k3, right)
        left ^= self._hash(self._h2, right)
        right = _chacha(left ^ self._k1, right)
        return left.to_bytes(HALF, "little") + right


def lioness_encrypt(key: bytes, block: bytes) -> bytes:
    return Lioness(key).encrypt(block)


def lioness_decrypt(key: bytes, block: bytes) -> bytes:
    return Lioness(key).decrypt(block)
