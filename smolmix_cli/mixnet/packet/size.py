"""Packet sizes, packet types, frame versions and key-rotation labels (spec 2.1).

Nym never sends a length with a packet: the receiver classifies a packet by its
exact byte length, and the node-to-node frame carries only a one-byte size tag.
So every size here must match Nym to the byte. Only the regular (2413) and ack
(386) sizes were seen in the official-client capture; the extended and Outfox
sizes come from the spec's table alone (UNVERIFIED on the wire).
"""

from __future__ import annotations

import enum

from smolmix_cli.mixnet.errors import MalformedData

SPHINX_HEADER_SIZE = 348
SPHINX_PAYLOAD_OVERHEAD = 17  # 16 zero bytes + one 0x01 marker
SPHINX_PACKET_OVERHEAD = SPHINX_HEADER_SIZE + SPHINX_PAYLOAD_OVERHEAD
OUTFOX_MIX_PARAMS_LEN = 6
OUTFOX_PACKET_OVERHEAD = 329
OUTFOX_MIN_PACKET_SIZE = 48
ACK_IV_SIZE = 16
FRAGMENT_ID_SIZE = 5


class PacketSizeError(MalformedData):
    """A size tag or byte length that matches no known PacketSize."""


class PacketTypeError(MalformedData):
    """A packet type byte other than Mix (0) or Outfox (2)."""


class FrameVersionError(MalformedData):
    """A frame version below 7 (removed) or above 8 (unsupported)."""


class KeyRotationError(MalformedData):
    """A key-rotation byte other than 0, 1 or 2."""


class PacketType(enum.IntEnum):
    """The packet format byte; 1 (the old "Vpn" mode) is invalid now."""

    MIX = 0
    OUTFOX = 2

    @classmethod
    def from_byte(cls, value: int) -> PacketType:
        try:
            return cls(value)
        except ValueError:
            raise PacketTypeError(f"{value} is not a valid packet type") from None


class PacketSize(enum.IntEnum):
    """Nym's packet sizes; the enum value is the u8 wire tag."""

    REGULAR = 1
    ACK = 2
    EXTENDED32 = 3
    EXTENDED8 = 4
    EXTENDED16 = 5
    OUTFOX_REGULAR = 6
    OUTFOX_ACK = 7

    @property
    def size(self) -> int:
        """Total packet length in bytes (header + payload)."""
        return _SIZES[self]

    @property
    def packet_type(self) -> PacketType:
        if self in (PacketSize.OUTFOX_REGULAR, PacketSize.OUTFOX_ACK):
            return PacketType.OUTFOX
        return PacketType.MIX

    @property
    def header_size(self) -> int:
        if self.packet_type is PacketType.OUTFOX:
            return OUTFOX_MIX_PARAMS_LEN
        return SPHINX_HEADER_SIZE

    @property
    def payload_overhead(self) -> int:
        if self.packet_type is PacketType.OUTFOX:
            return OUTFOX_PACKET_OVERHEAD - OUTFOX_MIX_PARAMS_LEN
        return SPHINX_PAYLOAD_OVERHEAD

    @property
    def payload_size(self) -> int:
        """Bytes of the (Lioness-encrypted) Sphinx payload."""
        return self.size - self.header_size

    @property
    def plaintext_size(self) -> int:
        """Bytes a sender can put into one packet before payload framing."""
        return self.size - self.header_size - self.payload_overhead

    @property
    def serde_name(self) -> str:
        return _NAMES[self]

    @classmethod
    def from_tag(cls, tag: int) -> PacketSize:
        try:
            return cls(tag)
        except ValueError:
            raise PacketSizeError(f"{tag} is not a valid packet size tag") from None

    @classmethod
    def from_length(cls, length: int) -> PacketSize:
        """Classify a packet by exact length (outfox regular also accepts length + 6)."""
        for candidate in (
            cls.REGULAR,
            cls.ACK,
            cls.EXTENDED8,
            cls.EXTENDED16,
            cls.EXTENDED32,
        ):
            if candidate.size == length:
                return candidate
        if length in (cls.OUTFOX_REGULAR.size, cls.OUTFOX_REGULAR.size - 6):
            return cls.OUTFOX_REGULAR
        if length == cls.OUTFOX_ACK.size:
            return cls.OUTFOX_ACK
        raise PacketSizeError(f"{length} bytes is not a known packet size")

    @classmethod
    def from_plaintext_length(cls, length: int, packet_type: PacketType) -> PacketSize:
        overhead = (
            OUTFOX_PACKET_OVERHEAD if packet_type is PacketType.OUTFOX else SPHINX_PACKET_OVERHEAD
        )
        return cls.from_length(length + overhead)

    @classmethod
    def from_name(cls, name: str) -> PacketSize:
        for candidate, candidate_name in _NAMES.items():
            if candidate_name == name:
                return candidate
        raise PacketSizeError(f"{name!r} is not a packet size name")


_SIZES = {
    PacketSize.REGULAR: 2 * 1024 + SPHINX_PACKET_OVERHEAD,
    PacketSize.ACK: ACK_IV_SIZE + FRAGMENT_ID_SIZE + SPHINX_PACKET_OVERHEAD,
    PacketSize.EXTENDED32: 32 * 1024 + SPHINX_PACKET_OVERHEAD,
    PacketSize.EXTENDED8: 8 * 1024 + SPHINX_PACKET_OVERHEAD,
    PacketSize.EXTENDED16: 16 * 1024 + SPHINX_PACKET_OVERHEAD,
    PacketSize.OUTFOX_REGULAR: 2 * 1024 + OUTFOX_PACKET_OVERHEAD,
    PacketSize.OUTFOX_ACK: OUTFOX_MIN_PACKET_SIZE + OUTFOX_PACKET_OVERHEAD,
}

_NAMES = {
    PacketSize.REGULAR: "regular",
    PacketSize.ACK: "ack",
    PacketSize.EXTENDED32: "extended32",
    PacketSize.EXTENDED8: "extended8",
    PacketSize.EXTENDED16: "extended16",
    PacketSize.OUTFOX_REGULAR: "outfox_regular",
    PacketSize.OUTFOX_ACK: "outfox_ack",
}


class FrameVersion(enum.IntEnum):
    """Node-to-node frame version: 7 = 3-byte header, 8 = adds the key-rotation byte."""

    INITIAL = 7
    KEY_ROTATION = 8

    @property
    def header_size(self) -> int:
        return 3 if self is FrameVersion.INITIAL else 4

    @classmethod
    def from_byte(cls, value: int) -> FrameVersion:
        if value < cls.INITIAL:
            raise FrameVersionError(f"frame version {value} is legacy and no longer accepted")
        if value > cls.KEY_ROTATION:
            raise FrameVersionError(f"frame version {value} is newer than supported (8)")
        return cls(value)


class SphinxKeyRotation(enum.IntEnum):
    """Which of a node's two Sphinx keys a packet was built for."""

    UNKNOWN = 0
    ODD = 1
    EVEN = 2

    @classmethod
    def from_byte(cls, value: int) -> SphinxKeyRotation:
        try:
            return cls(value)
        except ValueError:
            raise KeyRotationError(f"{value} is not a valid key rotation") from None

    @classmethod
    def from_rotation_id(cls, rotation_id: int) -> SphinxKeyRotation:
        """0 and u32::MAX mean unknown; otherwise the parity of the id."""
        if rotation_id in (0, 0xFFFFFFFF):
            return cls.UNKNOWN
        return cls.EVEN if rotation_id % 2 == 0 else cls.ODD
