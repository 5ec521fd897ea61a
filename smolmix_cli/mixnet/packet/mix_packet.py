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
        if len(data) < 3:
            raise MixPacketError("MixPacket shorter than its fixed fields")
        try:
            packet_type = PacketType.from_byte(data[0])
            rotation = SphinxKeyRotation.from_byte(data[1])
            return cls._finish(data[2:], packet_type, rotation)
        except MixPacketError:
            raise
        except MixnetError as exc:
            raise MixPacketError(f"bad MixPacket: {exc}") from exc

    @classmethod
    def from_v1_bytes(cls, data: bytes) -> MixPacket:
        if len(data) < 2:
            raise MixPacketError("MixPacket shorter than its fixed fields")
        try:
            packet_type = PacketType.from_byte(data[0])
            return cls._finish(data[1:], packet_type, SphinxKeyRotation.UNKNOWN)
        except MixPacketError:
            raise
        except MixnetError as exc:
            raise MixPacketError(f"bad MixPacket: {exc}") from exc

    @classmethod
    def _finish(
        cls, rest: bytes, packet_type: PacketType, rotation: SphinxKeyRotation
    ) -> MixPacket:
        address, used = NodeAddress.parse_prefix(rest)
        packet = bytes(rest[used:])
        PacketSize.from_length(len(packet))  # must be one of Nym's sizes
        return cls(address, packet, packet_type, rotation)
