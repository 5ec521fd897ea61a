"""NymMessage: the message types, padding, repliable and reply envelopes (spec 2.4, 2.5).

A NymMessage is `type (u8) || body`. Before splitting, the serialized message
gets 0x01 and then zeros so that every fragment comes out exactly full; the
receiver strips at the LAST 0x01. Repliable messages carry reply SURBs for the
receiver to answer through, filed under the sender's anonymous tag.
"""

from __future__ import annotations

import enum
import random
import struct
from dataclasses import dataclass

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.base58 import b58decode, b58encode
from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.message.fragment import (
    Fragment,
    number_of_required_fragments,
    split_into_sets,
)
from smolmix_cli.mixnet.message.reply_surb import (
    REPLY_KEY_SIZE,
    ReplySurb,
    v1_reply_surb_len,
    v2_reply_surb_len,
)
from smolmix_cli.mixnet.packet.size import (
    FRAGMENT_ID_SIZE,
    PacketSize,
    PacketType,
    SphinxKeyRotation,
)

SENDER_TAG_SIZE = 16
RECIPIENT_SIZE = 96
MAX_NODE_ADDRESS_UNPADDED_LEN = 19
VARIANT_DATA_SIZE = 32  # ephemeral x25519 public key, or BLAKE3 digest of a reply key
MIN_PADDING_OVERHEAD = 1
V1_SURB_HOPS = 4  # v1 encoding has no hop count: always 4 hops of 192-byte keys

assert REPLY_KEY_SIZE == 16 and FRAGMENT_ID_SIZE == 5


class MessageError(MalformedData):
    """A NymMessage, repliable envelope or reply envelope that does not parse."""


class MessageType(enum.IntEnum):
    PLAIN = 0
    REPLIABLE = 1
    REPLY = 2


class RepliableContentTag(enum.IntEnum):
    DATA = 0
    ADDITIONAL_SURBS = 1
    HEARTBEAT = 2
    DATA_V2 = 3
    ADDITIONAL_SURBS_V2 = 4
    HEARTBEAT_V2 = 5

    @property
    def is_v2(self) -> bool:
        return self >= RepliableContentTag.DATA_V2

    @property
    def carries_data(self) -> bool:
        return self in (RepliableContentTag.DATA, RepliableContentTag.DATA_V2)


class ReplyContentTag(enum.IntEnum):
    DATA = 0
    SURB_REQUEST = 1


@dataclass(frozen=True, slots=True)
class PlainMessage:
    data: bytes


@dataclass(frozen=True, slots=True)
class RepliableMessage:
    """`sender tag || content tag || surbs || data`; v2 surbs carry hops and key rotation.

    For v2 encodings `key_rotation` is the byte written before the SURBs (Nym takes
    it from the first SURB; all SURBs of one message share it).
    """

    sender_tag: bytes
    content_tag: RepliableContentTag
    reply_surbs: tuple[ReplySurb, ...] = ()
    data: bytes = b""
    key_rotation: SphinxKeyRotation = SphinxKeyRotation.UNKNOWN

    def __post_init__(self) -> None:
        if len(self.sender_tag) != SENDER_TAG_SIZE:
            raise MessageError(f"sender tag must be {SENDER_TAG_SIZE} bytes")
        if self.data and not self.content_tag.carries_data:
            raise MessageError(f"{self.content_tag.name} carries no data")
        if self.content_tag.is_v2:
            # one hop count for all SURBs, seeds only; anything else would not parse back
            if (
                any(not s.uses_seeds for s in self.reply_surbs)
                or len({s.hops for s in self.reply_surbs}) > 1
            ):
                raise MessageError("v2 envelopes carry seed SURBs of one hop count")
        else:
            if self.key_rotation is not SphinxKeyRotation.UNKNOWN:
                # v1 encoding has no rotation byte; Nym files v1 SURBs as Unknown (`to_legacy`)
                raise MessageError("v1 SURB encodings carry no key rotation")
            if any(s.uses_seeds or s.hops != V1_SURB_HOPS for s in self.reply_surbs):
                raise MessageError("v1 envelopes carry 4-hop SURBs with 192-byte keys")


@dataclass(frozen=True, slots=True)
class ReplyMessage:
    """Reply content: DATA with `data`, or SURB_REQUEST naming who wants `amount` SURBs."""

    content_tag: ReplyContentTag
    data: bytes = b""
    recipient: Recipient | None = None
    amount: int = 0

    def __post_init__(self) -> None:
        if self.content_tag is ReplyContentTag.SURB_REQUEST:
            if self.recipient is None:
                raise MessageError("a SURB request names its recipient")
            if not 0 <= self.amount <= 0xFFFFFFFF:
                raise MessageError("SURB request amount must fit in u32")


NymMessage = PlainMessage | RepliableMessage | ReplyMessage


def new_sender_tag(rng: random.Random) -> bytes:
    """A fresh AnonymousSenderTag: 16 random bytes the receiver files our SURBs under."""
    return rng.randbytes(SENDER_TAG_SIZE)


def sender_tag_to_base58(tag: bytes) -> str:
    if len(tag) != SENDER_TAG_SIZE:
        raise MessageError(f"sender tag must be {SENDER_TAG_SIZE} bytes")
    return b58encode(tag)


def sender_tag_from_base58(text: str) -> bytes:
    try:
        tag = b58decode(text)
    except MixnetError as exc:
        raise MessageError(f"sender tag is not base58: {exc}") from exc
    if len(tag) != SENDER_TAG_SIZE:
        raise MessageError(f"sender tag must decode to {SENDER_TAG_SIZE} bytes, got {len(tag)}")
    return tag


# --- encoding ---------------------------------------------------------------------------


# The v1 SURB encoding (u32 count, 1164-byte 258 SURBs) follows the spec's reading of
# nym `requests/v1.rs`; UNVERIFIED: the official client was only seen sending v2.
def _surbs_v1(surbs: tuple[ReplySurb, ...]) -> bytes:
    return struct.pack(">I", len(surbs)) + b"".join(s.to_bytes() for s in surbs)


def _surbs_v2(surbs: tuple[ReplySurb, ...], key_rotation: SphinxKeyRotation) -> bytes:
    if len(surbs) > 0xFFFF:
        raise MessageError("at most 65535 SURBs fit a v2 envelope")
    hops = surbs[0].hops if surbs else 0
    return struct.pack(">HBB", len(surbs), hops, key_rotation) + b"".join(
        s.to_bytes() for s in surbs
    )


def encode_message(message: NymMessage) -> bytes:
    """Serialize a NymMessage (type byte included, no padding)."""
    if isinstance(message, PlainMessage):
        return bytes([MessageType.PLAIN]) + message.data
    if isinstance(message, RepliableMessage):
        tag = message.content_tag
        if tag.is_v2:
            surbs = _surbs_v2(message.reply_surbs, message.key_rotation)
        else:
            surbs = _surbs_v1(message.reply_surbs)
        return (
            bytes([MessageType.REPLIABLE])
            + message.sender_tag
            + bytes([tag])
            + surbs
            + message.data
        )
    if message.content_tag is ReplyContentTag.DATA:
        return bytes([MessageType.REPLY, ReplyContentTag.DATA]) + message.data
    assert message.recipient is not None  # enforced by ReplyMessage
    return (
        bytes([MessageType.REPLY, ReplyContentTag.SURB_REQUEST])
        + message.recipient.to_bytes()
        + struct.pack(">I", message.amount)
    )


# --- decoding ---------------------------------------------------------------------------


def _parse_surbs_v1(body: bytes) -> tuple[tuple[ReplySurb, ...], int]:
    if len(body) < 4:
        raise MessageError("v1 SURB block shorter than its count")
    (count,) = struct.unpack_from(">I", body)
    size = v1_reply_surb_len(V1_SURB_HOPS)
    if len(body) - 4 < count * size:
        raise MessageError(f"v1 SURB block announces {count} SURBs but is too short")
    surbs = tuple(
        ReplySurb.from_bytes(body[4 + i * size : 4 + (i + 1) * size]) for i in range(count)
    )
    return surbs, 4 + count * size


def _parse_surbs_v2(body: bytes) -> tuple[tuple[ReplySurb, ...], SphinxKeyRotation, int]:
    if len(body) < 4:
        raise MessageError("v2 SURB block shorter than its 4-byte prefix")
    count, hops, rotation_byte = struct.unpack_from(">HBB", body)
    rotation = SphinxKeyRotation.from_byte(rotation_byte)
    size = v2_reply_surb_len(hops)
    if len(body) - 4 < count * size:
        raise MessageError(f"v2 SURB block announces {count} SURBs but is too short")
    surbs = tuple(
        ReplySurb.from_bytes(body[4 + i * size : 4 + (i + 1) * size]) for i in range(count)
    )
    return surbs, rotation, 4 + count * size


def _decode_repliable(body: bytes) -> RepliableMessage:
    if len(body) < SENDER_TAG_SIZE + 1:
        raise MessageError("repliable message shorter than sender tag and content tag")
    sender_tag = body[:SENDER_TAG_SIZE]
    try:
        tag = RepliableContentTag(body[SENDER_TAG_SIZE])
    except ValueError:
        raise MessageError(f"unknown repliable content tag {body[SENDER_TAG_SIZE]}") from None
    content = body[SENDER_TAG_SIZE + 1 :]
    if not content:
        raise MessageError("repliable message without content")
    rotation = SphinxKeyRotation.UNKNOWN
    if tag.is_v2:
        surbs, rotation, used = _parse_surbs_v2(content)
    else:
        surbs, used = _parse_surbs_v1(content)
    # Nym ignores (only logs) trailing bytes after SURB-only contents.
    data = content[used:] if tag.carries_data else b""
    return RepliableMessage(sender_tag, tag, surbs, data, rotation)


def _decode_reply(body: bytes) -> ReplyMessage:
    if not body:
        raise MessageError("empty reply message")
    try:
        tag = ReplyContentTag(body[0])
    except ValueError:
        raise MessageError(f"unknown reply content tag {body[0]}") from None
    content = body[1:]
    if not content:
        raise MessageError("reply message without content")  # Nym rejects empty content too
    if tag is ReplyContentTag.DATA:
        return ReplyMessage(tag, data=content)
    if len(content) != RECIPIENT_SIZE + 4:
        raise MessageError("SURB request must be a 96-byte recipient and a u32 amount")
    (amount,) = struct.unpack_from(">I", content, RECIPIENT_SIZE)
    return ReplyMessage(
        tag, recipient=Recipient.from_bytes(content[:RECIPIENT_SIZE]), amount=amount
    )


def decode_message(data: bytes) -> NymMessage:
    """Parse a NymMessage (padding already removed); raises MessageError subclasses."""
    if not data:
        raise MessageError("empty NymMessage")
    body = data[1:]
    try:
        if data[0] == MessageType.PLAIN:
            return PlainMessage(body)
        if data[0] == MessageType.REPLIABLE:
            return _decode_repliable(body)
        if data[0] == MessageType.REPLY:
            return _decode_reply(body)
    except MessageError:
        raise
    except MixnetError as exc:  # bad SURB, key rotation byte or recipient inside the envelope
        raise MessageError(f"bad message envelope: {exc}") from exc
    raise MessageError(f"unknown NymMessage type {data[0]}")


# --- padding and splitting --------------------------------------------------------------


def available_plaintext_per_packet(packet_size: PacketSize = PacketSize.REGULAR) -> int:
    """Fragment bytes per packet: plaintext minus SURB-ACK (405) minus variant data (32)."""
    if packet_size.packet_type is PacketType.OUTFOX:
        ack_overhead = MAX_NODE_ADDRESS_UNPADDED_LEN + PacketSize.OUTFOX_ACK.size
    else:
        ack_overhead = MAX_NODE_ADDRESS_UNPADDED_LEN + PacketSize.ACK.size
    return packet_size.plaintext_size - ack_overhead - VARIANT_DATA_SIZE


def pad_message(serialized: bytes, per_packet: int) -> bytes:
    """Append 0x01 and zeros so the fragments of `serialized` come out exactly full."""
    _, space_left = number_of_required_fragments(len(serialized) + MIN_PADDING_OVERHEAD, per_packet)
    return serialized + b"\x01" + bytes(space_left)


def unpad_message(padded: bytes) -> bytes:
    """Cut at the last 0x01 (Nym does not check that only zeros follow)."""
    end = padded.rfind(b"\x01")
    if end < 0:
        raise MessageError("padded message has no 0x01 marker")
    return padded[:end]


def split_message(
    message: NymMessage,
    rng: random.Random,
    packet_size: PacketSize = PacketSize.REGULAR,
) -> list[Fragment]:
    """Serialize, pad and split a message into fragments, in sending order."""
    per_packet = available_plaintext_per_packet(packet_size)
    padded = pad_message(encode_message(message), per_packet)
    return [f for fragment_set in split_into_sets(padded, per_packet, rng) for f in fragment_set]
