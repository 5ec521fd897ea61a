"""Binary WebSocket frames between client and gateway (spec §3.6).

    kind (u8) ‖ encrypted flag (u8, 1) ‖ nonce (12) ‖ AES-256-GCM-SIV(K, nonce, plaintext)

The plaintext is a MixPacket (client to gateway) or one received message (gateway to
client); this module treats both as opaque bytes. Nym still defines flag 0 (plaintext)
but no current peer sends it, and accepting it would let anyone on the path inject
packets into an authenticated session, so it is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import IntEnum

from smolmix_cli.mixnet.errors import MalformedData
from smolmix_cli.mixnet.gateway.shared_key import NONCE_LEN, TAG_LEN, Rng, SharedKey

HEADER_LEN = 2 + NONCE_LEN
MIN_FRAME_LEN = HEADER_LEN + TAG_LEN
ENCRYPTED = 1


class RequestKind(IntEnum):
    """Client -> gateway."""

    FORWARD_SPHINX = 1  # MixPacket v1
    FORWARD_SPHINX_V2 = 2  # MixPacket v2 (key rotation byte), protocol >= 5


class ResponseKind(IntEnum):
    """Gateway -> client."""

    PUSHED_MIX_MESSAGE = 1


class MalformedFrame(MalformedData):
    """A binary frame too short, or with an unknown kind or encryption flag."""


@dataclass(frozen=True)
class Frame:
    kind: int
    nonce: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        return bytes((self.kind, ENCRYPTED)) + self.nonce + self.ciphertext


def split_frame(raw: bytes) -> Frame:
    """The frame's parts, without decrypting."""
    if len(raw) < 2:
        raise MalformedFrame(f"binary frame of {len(raw)} bytes has no header")
    if raw[1] != ENCRYPTED:
        raise MalformedFrame(f"encryption flag {raw[1]} (only encrypted frames are accepted)")
    if len(raw) < MIN_FRAME_LEN:
        raise MalformedFrame(f"binary frame of {len(raw)} bytes is shorter than nonce and tag")
    return Frame(raw[0], bytes(raw[2:HEADER_LEN]), bytes(raw[HEADER_LEN:]))


def encrypt_frame(
    kind: int,
    plaintext: bytes,
    key: SharedKey,
    *,
    nonce: bytes | None = None,
    rng: Rng = os.urandom,
) -> bytes:
    """A frame with a fresh random nonce (or the given one, to reproduce a recording)."""
    if not 0 <= kind <= 255:
        raise ValueError(f"frame kind {kind} is not a byte")
    nonce = SharedKey.random_nonce(rng) if nonce is None else nonce
    return Frame(kind, nonce, key.encrypt(plaintext, nonce)).to_bytes()


def encrypt_request(
    kind: RequestKind,
    mix_packet: bytes,
    key: SharedKey,
    *,
    nonce: bytes | None = None,
    rng: Rng = os.urandom,
) -> bytes:
    return encrypt_frame(RequestKind(kind), mix_packet, key, nonce=nonce, rng=rng)


def encrypt_push(
    message: bytes, key: SharedKey, *, nonce: bytes | None = None, rng: Rng = os.urandom
) -> bytes:
    return encrypt_frame(ResponseKind.PUSHED_MIX_MESSAGE, message, key, nonce=nonce, rng=rng)


def decrypt_request(raw: bytes, key: SharedKey) -> tuple[RequestKind, bytes]:
    """What a gateway reads: the request kind and the MixPacket bytes."""
    frame = split_frame(raw)
    try:
        kind = RequestKind(frame.kind)
    except ValueError:
        raise MalformedFrame(f"unknown binary request kind {frame.kind}") from None
    return kind, key.decrypt(frame.ciphertext, frame.nonce)


def decrypt_push(raw: bytes, key: SharedKey) -> bytes:
    """What a client reads: one message the gateway pushed."""
    frame = split_frame(raw)
    if frame.kind != ResponseKind.PUSHED_MIX_MESSAGE:
        raise MalformedFrame(f"unknown binary response kind {frame.kind}")
    return key.decrypt(frame.ciphertext, frame.nonce)
