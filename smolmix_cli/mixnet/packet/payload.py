"""The forward Sphinx plaintext Nym builds around each fragment (spec 2.2).

Layout: SURB-ACK (405) || variant data (32) || encrypted fragment. For regular
messages the variant data is a fresh ephemeral x25519 public key and the
fragment key is HKDF-BLAKE3 of the X25519 result; for replies it is the BLAKE3
digest of the reply SURB's key, which also is the AES key. Either way the
cipher is AES-128-CTR from a zero IV. What the recipient's gateway pushes to the
recipient is everything after the SURB-ACK.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from smolmix_cli.mixnet.errors import InvalidKey, MalformedData
from smolmix_cli.mixnet.kdf import blake3_digest, hkdf_blake3
from smolmix_cli.mixnet.keys import x25519, x25519_public

SURB_ACK_SIZE = 405
VARIANT_DATA_SIZE = 32
AES_KEY_SIZE = 16
AES_BLOCK = 16
X25519_KEY_SIZE = 32
ZERO_IV = bytes(16)
COVER_MARKER = b"The cake is a lie!"


class PayloadError(MalformedData):
    """A Sphinx plaintext or pushed message too short for Nym's payload layout."""


def aes128_ctr(key: bytes, data: bytes, iv: bytes = ZERO_IV) -> bytes:
    """AES-128 in CTR mode with Nym's 64-bit big-endian counter in the IV's last 8 bytes.

    Only the low 64 bits count (RustCrypto `Ctr64BE`); standard CTR would carry
    into the upper half, so a wrap is handled by restarting with a fresh IV.
    """
    if len(key) != AES_KEY_SIZE or len(iv) != AES_BLOCK:
        raise InvalidKey("AES-128-CTR needs a 16-byte key and a 16-byte IV")
    prefix, counter = iv[:8], int.from_bytes(iv[8:], "big")
    blocks_before_wrap = (1 << 64) - counter
    out = bytearray()
    offset = 0
    while offset < len(data):
        chunk = data[offset : offset + blocks_before_wrap * AES_BLOCK]
        encryptor = Cipher(
            algorithms.AES(key), modes.CTR(prefix + counter.to_bytes(8, "big"))
        ).encryptor()
        out += encryptor.update(chunk) + encryptor.finalize()
        offset += len(chunk)
        counter, blocks_before_wrap = 0, 1 << 64
    return bytes(out)


def packet_key(shared_secret: bytes) -> bytes:
    """The fragment key of a regular packet: HKDF-BLAKE3, no salt, empty info, 16 bytes."""
    return hkdf_blake3(shared_secret, AES_KEY_SIZE)


def encrypt_regular(
    fragment: bytes, recipient_encryption_key: bytes, ephemeral_private: bytes
) -> tuple[bytes, bytes]:
    """(ephemeral public key, ciphertext) for a fragment to a recipient's x25519 key."""
    key = packet_key(x25519(ephemeral_private, recipient_encryption_key))
    return x25519_public(ephemeral_private), aes128_ctr(key, fragment)


def decrypt_regular(message: bytes, recipient_private: bytes) -> bytes:
    """Fragment bytes from a pushed regular message: ephemeral key (32) || ciphertext."""
    if len(message) < VARIANT_DATA_SIZE:
        raise PayloadError("pushed message shorter than its ephemeral key")
    key = packet_key(x25519(recipient_private, message[:VARIANT_DATA_SIZE]))
    return aes128_ctr(key, message[VARIANT_DATA_SIZE:])


def reply_key_digest(reply_key: bytes) -> bytes:
    return blake3_digest(reply_key)


def encrypt_reply(fragment: bytes, reply_key: bytes) -> tuple[bytes, bytes]:
    """(BLAKE3 digest of the reply key, ciphertext) for a fragment sent through a SURB."""
    return reply_key_digest(reply_key), aes128_ctr(reply_key, fragment)


def decrypt_reply(message: bytes, reply_key: bytes) -> bytes:
    """Fragment bytes from a pushed reply whose first 32 bytes matched the key digest."""
    if len(message) < VARIANT_DATA_SIZE:
        raise PayloadError("pushed reply shorter than its key digest")
    return aes128_ctr(reply_key, message[VARIANT_DATA_SIZE:])


@dataclass(frozen=True, slots=True)
class NymPayload:
    """A split forward Sphinx plaintext."""

    surb_ack: bytes
    variant_data: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        return self.surb_ack + self.variant_data + self.ciphertext

    @property
    def message(self) -> bytes:
        """What the gateway pushes to the recipient: variant data || ciphertext."""
        return self.variant_data + self.ciphertext

    @classmethod
    def from_bytes(cls, plaintext: bytes) -> NymPayload:
        if len(plaintext) < SURB_ACK_SIZE + VARIANT_DATA_SIZE:
            raise PayloadError(
                f"Sphinx plaintext of {len(plaintext)} bytes has no room for a fragment"
            )
        return cls(
            bytes(plaintext[:SURB_ACK_SIZE]),
            bytes(plaintext[SURB_ACK_SIZE : SURB_ACK_SIZE + VARIANT_DATA_SIZE]),
            bytes(plaintext[SURB_ACK_SIZE + VARIANT_DATA_SIZE :]),
        )


def build_payload(surb_ack: bytes, variant_data: bytes, ciphertext: bytes) -> bytes:
    if len(surb_ack) != SURB_ACK_SIZE or len(variant_data) != VARIANT_DATA_SIZE:
        raise PayloadError("SURB-ACK must be 405 bytes and variant data 32")
    return surb_ack + variant_data + ciphertext


def cover_plaintext(size: int) -> bytes:
    """Loop-cover fragment plaintext: the marker, 0x01, zeros up to `size`."""
    content = COVER_MARKER + b"\x01"
    if size < len(content):
        raise PayloadError("cover plaintext size smaller than the marker")
    return content + bytes(size - len(content))


def is_cover(fragment_plaintext: bytes) -> bool:
    return fragment_plaintext.startswith(COVER_MARKER)


def recover_fragment(
    message: bytes, recipient_private: bytes, reply_keys: Mapping[bytes, bytes]
) -> tuple[bytes, bool]:
    """Fragment bytes of a pushed message, and whether it came back through one of our SURBs.

    A reply starts with the BLAKE3 digest of a reply key we handed out (`reply_keys`
    maps digest -> key); anything else is a regular packet whose first 32 bytes are
    the sender's ephemeral key (spec 2.5, receiver-side recognition).
    """
    if len(message) < VARIANT_DATA_SIZE:
        raise PayloadError("pushed message shorter than its 32-byte prefix")
    reply_key = reply_keys.get(bytes(message[:VARIANT_DATA_SIZE]))
    if reply_key is not None:
        return decrypt_reply(message, reply_key), True
    return decrypt_regular(message, recipient_private), False
