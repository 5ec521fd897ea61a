"""MixPacket v2 exactly as the official client sent it to its gateway (spec 2.8)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.packet.mix_packet import MixPacket, MixPacketError
from smolmix_cli.mixnet.packet.size import PacketSize
from tests.vectors import h, load_vector

PACKETS = load_vector("official-client", "sphinx-packets.json")["packets"]


@pytest.mark.parametrize("packet", PACKETS, ids=[p["label"] for p in PACKETS])
def test_recorded_mix_packet_v2(packet: dict[str, Any]) -> None:
    recorded = packet["mix_packet_v2"]
    parsed = MixPacket.from_v2_bytes(h(recorded["bytes"]))
    assert parsed.packet_type == recorded["packet_type"]
    assert parsed.key_rotation == recorded["key_rotation"]
    assert parsed.next_hop.to_unpadded() == h(recorded["next_hop_unpadded"])
    assert len(parsed.packet) == recorded["sphinx_packet_len"]
    assert parsed.packet == h(packet["sphinx_packet"])
    assert parsed.to_v2_bytes() == h(recorded["bytes"])
    v1 = MixPacket.from_v1_bytes(parsed.to_v1_bytes())
    assert (v1.next_hop, v1.packet) == (parsed.next_hop, parsed.packet)


def test_bad_packet_length_rejected() -> None:
    raw = h(PACKETS[0]["mix_packet_v2"]["bytes"])
    with pytest.raises(MixPacketError):
        MixPacket.from_v2_bytes(raw[:-1])
    with pytest.raises(MixPacketError):
        MixPacket.from_v2_bytes(bytes([0, 3]) + raw[2:])  # key rotation 3 does not exist


@given(
    st.binary(max_size=40),
    st.sampled_from([0, 1, PacketSize.REGULAR.size - 7, PacketSize.ACK.size - 5]),
)
def test_parsers_raise_only_mixnet_errors(head: bytes, tail_len: int) -> None:
    data = head + bytes(tail_len)
    for parse in (MixPacket.from_v1_bytes, MixPacket.from_v2_bytes):
        try:
            parsed = parse(data)
        except MixnetError:
            continue
        assert parsed.packet_size.size == len(parsed.packet)
        assert parsed.to_v2_bytes()[2:] == data[2:] or parse is MixPacket.from_v1_bytes
