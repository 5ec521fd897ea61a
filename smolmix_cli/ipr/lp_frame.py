"""The LP SphinxStream frame that wraps every v9/v10 IPR payload (spec §4).

Sixteen header bytes, then the content to the end of the Nym message (there is
no length field). Mixed endianness: the frame kind is u16 little-endian, the
attributes big-endian. The IPR tells frames from raw (v8) payloads by the kind:
a raw v8 payload starts `08 01`, which is no known kind.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from smolmix_cli.ipr.errors import MalformedIprFrame

HEADER_SIZE = 16
_HEADER = struct.Struct(">8sBIB")  # after the 2-byte LE kind: stream id, msg type, seq, reserved
MAX_STREAM_ID = (1 << 64) - 1
MAX_SEQ = (1 << 32) - 1


class FrameKind(enum.IntEnum):
    OPAQUE = 0
    REGISTRATION = 1
    FORWARD = 2
    SPHINX_STREAM = 3


class MsgType(enum.IntEnum):
    OPEN = 0
    DATA = 1


@dataclass(frozen=True, slots=True)
class LpFrame:
    """One SphinxStream frame: which stream, Open or Data, the sender's sequence number."""

    stream_id: int
    msg_type: MsgType
    seq: int
    content: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.stream_id <= MAX_STREAM_ID:
            raise MalformedIprFrame("stream id must fit in u64")
        if not 0 <= self.seq <= MAX_SEQ:
            raise MalformedIprFrame("sequence number must fit in u32")

    def header(self) -> bytes:
        return struct.pack("<H", FrameKind.SPHINX_STREAM) + _HEADER.pack(
            self.stream_id.to_bytes(8, "big"), self.msg_type, self.seq, 0
        )

    def encode(self) -> bytes:
        return self.header() + self.content

    @classmethod
    def decode(cls, data: bytes) -> LpFrame:
        """Parse a frame; the reserved byte is ignored, as upstream does."""
        if len(data) < HEADER_SIZE:
            raise MalformedIprFrame(f"LP frame needs {HEADER_SIZE} bytes, got {len(data)}")
        kind = int.from_bytes(data[:2], "little")
        if kind != FrameKind.SPHINX_STREAM:
            raise MalformedIprFrame(f"frame kind {kind} is not SphinxStream")
        stream_id, msg_type, seq, _reserved = _HEADER.unpack_from(data, 2)
        try:
            kind_of_msg = MsgType(msg_type)
        except ValueError:
            raise MalformedIprFrame(f"unknown stream message type {msg_type}") from None
        return cls(int.from_bytes(stream_id, "big"), kind_of_msg, seq, bytes(data[HEADER_SIZE:]))


def is_stream_frame(data: bytes) -> bool:
    """The IPR's detection rule: at least 16 bytes and a kind that parses as SphinxStream.

    A payload that fails this is a raw (non-LP) IPR message. One that passes may still
    fail `LpFrame.decode` on its message type; the IPR drops such payloads.
    """
    if len(data) < HEADER_SIZE:
        return False
    return int.from_bytes(data[:2], "little") == FrameKind.SPHINX_STREAM
