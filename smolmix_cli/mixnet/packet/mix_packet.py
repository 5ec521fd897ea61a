"""MixPacket: what a client hands its entry gateway (spec 2.8, confirmed by the vectors).

v2 bytes are `packet type || key rotation || next hop (unpadded, 7 or 19) || packet`;
v1 lacks the key-rotation byte. The gateway does not Sphinx-process it; it
forwards the packet to `next_hop` in a node-to-node frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.packet.size import PacketSize, PacketType, SphinxKeyRotation


class MixPacketError(MalformedData):
    """MixPacket bytes with a bad type, rotation, address or packet length."""


@dataclass(frozen=True, slots=True)
class MixPacket:
    next_hop: NodeAddress
    packet: bytes
    packet_type: PacketType = PacketType.MIX
    key_rotation: SphinxKeyRotation = SphinxKeyRotation.UNKNOWN

    @property
    def packet_size(self) -> PacketSize:
        return PacketSize.from_length(len(self.packet))

    def to_v2_bytes(self) -> bytes:
        return (
            bytes([self.packet_type, self.key_rotation]) + self.next_hop.to_unpadded() + self.packet
        )

    def to_v1_bytes(self) -> bytes:
        return bytes([self.packet_type]) + self.next_hop.to_unpadded() + self.packet

    @classmethod
    def from_v2_bytes(cls, data: bytes) -> MixPacket:
        return cls._parse(data, with_rotation=True)

    @classmethod
    def from_v1_bytes(cls, data: bytes) -> MixPacket:
        return cls._parse(data, with_rotation=False)

    @classmethod
    def _parse(cls, data: bytes, *, with_rotation: bool) -> MixPacket:
        """Both versions: v1 has no key-rotation byte, so its rotation is UNKNOWN."""
        fixed = 2 if with_rotation else 1
        if len(data) < fixed + 1:
            raise MixPacketError("MixPacket shorter than its fixed fields")
        try:
            packet_type = PacketType.from_byte(data[0])
            rotation = (
                SphinxKeyRotation.from_byte(data[1]) if with_rotation else SphinxKeyRotation.UNKNOWN
            )
            address, used = NodeAddress.parse_prefix(data[fixed:])
            packet = bytes(data[fixed + used :])
            PacketSize.from_length(len(packet))  # must be one of Nym's sizes
            return cls(address, packet, packet_type, rotation)
        except MixPacketError:
            raise
        except MixnetError as exc:
            raise MixPacketError(f"bad MixPacket: {exc}") from exc
