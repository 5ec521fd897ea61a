"""Node-to-node framing on the mix port (NymCodec, spec 2.7).

Frames sit back to back on one TCP stream with no length prefix: the one-byte
size tag fixes the packet length. Version 7 headers are 3 bytes (version, size
tag, packet type); version 8 adds a key-rotation byte.

UNVERIFIED: the official-client vectors do not cover this framing (their
packets moved between hops inside one process). It follows the spec's reading
of nym `common/nymsphinx/framing/src/{packet,codec}.rs` and is only checked
against our own encoder and the spec's tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from smolmix_cli.mixnet.errors import MalformedData
from smolmix_cli.mixnet.packet.size import (
    FrameVersion,
    PacketSize,
    PacketType,
    SphinxKeyRotation,
)

MAX_FRAME_SIZE = FrameVersion.KEY_ROTATION.header_size + max(s.size for s in PacketSize)


class FramingError(MalformedData):
    """A frame header the codec cannot accept; the stream must be closed."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed packet as it travels between nodes."""

    packet: bytes
    packet_size: PacketSize
    packet_type: PacketType = PacketType.MIX
    key_rotation: SphinxKeyRotation = SphinxKeyRotation.UNKNOWN
    version: FrameVersion = FrameVersion.INITIAL

    def __post_init__(self) -> None:
        if len(self.packet) != self.packet_size.size:
            raise FramingError(
                f"{self.packet_size.serde_name} packets are {self.packet_size.size} bytes, "
                f"got {len(self.packet)}"
            )

    @classmethod
    def for_packet(
        cls,
        packet: bytes,
        packet_type: PacketType = PacketType.MIX,
        key_rotation: SphinxKeyRotation = SphinxKeyRotation.UNKNOWN,
        version: FrameVersion = FrameVersion.INITIAL,
    ) -> Frame:
        """Frame a packet, classifying it by length (nym-node sends version 7 by default)."""
        return cls(packet, PacketSize.from_length(len(packet)), packet_type, key_rotation, version)

    def to_bytes(self) -> bytes:
        head = bytes([self.version, self.packet_size, self.packet_type])
        if self.version is FrameVersion.KEY_ROTATION:
            head += bytes([self.key_rotation])
        return head + self.packet


def encode_frame(frame: Frame) -> bytes:
    return frame.to_bytes()


class FrameDecoder:
    """Incremental decoder: feed stream bytes, get whole frames.

    Holds at most one partial frame (bounded by the largest size it accepts).
    After a FramingError the decoder stays failed: the stream cannot be resynchronised.
    """

    def __init__(self, allowed_sizes: frozenset[PacketSize] | None = None) -> None:
        self._buffer = bytearray()
        self._allowed = allowed_sizes if allowed_sizes is not None else frozenset(PacketSize)
        self._failed: FramingError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        if self._failed is not None:
            raise self._failed
        self._buffer += data
        frames = []
        try:
            while (frame := self._next()) is not None:
                frames.append(frame)
        except MalformedData as exc:
            self._failed = exc if isinstance(exc, FramingError) else FramingError(str(exc))
            self._buffer.clear()
            raise self._failed from exc
        return frames

    def _next(self) -> Frame | None:
        buf = self._buffer
        if len(buf) < 3:
            return None
        version = FrameVersion.from_byte(buf[0])
        size = PacketSize.from_tag(buf[1])
        if size not in self._allowed:
            raise FramingError(f"{size.serde_name} packets are not accepted here")
        packet_type = PacketType.from_byte(buf[2])
        if len(buf) < version.header_size:
            return None
        rotation = (
            SphinxKeyRotation.from_byte(buf[3])
            if version is FrameVersion.KEY_ROTATION
            else SphinxKeyRotation.UNKNOWN
        )
        end = version.header_size + size.size
        if len(buf) < end:
            return None
        packet = bytes(buf[version.header_size : end])
        del buf[:end]
        return Frame(packet, size, packet_type, rotation, version)
