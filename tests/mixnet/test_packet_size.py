"""Packet sizes, types, frame versions and key rotation against the spec's tables (2.1)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.packet.size import (
    FrameVersion,
    FrameVersionError,
    PacketSize,
    PacketSizeError,
    PacketType,
    PacketTypeError,
    SphinxKeyRotation,
)
from tests.vectors import load_vector, spec_text

_ROW = re.compile(
    r"^\| (\w+)(?: \(default\))? \| (\d+) \| `(\w+)` \| (\d+)[^|]*\| ([\d-]+) \| (\d+) \|$", re.M
)


def _spec_rows() -> list[tuple[str, int, str, int, int | None, int]]:
    section = spec_text("nym-mixnet.md").split("### 2.1", 1)[1].split("### 2.2", 1)[0]
    rows = []
    for name, tag, serde, total, payload, plaintext in _ROW.findall(section):
        rows.append(
            (
                name,
                int(tag),
                serde,
                int(total),
                None if payload == "-" else int(payload),
                int(plaintext),
            )
        )
    return rows


def test_spec_table_parsed() -> None:
    assert len(_spec_rows()) == len(PacketSize)


@pytest.mark.parametrize("row", _spec_rows(), ids=lambda r: r[2])
def test_sizes_match_spec_table(row: tuple[str, int, str, int, int | None, int]) -> None:
    _, tag, serde, total, payload, plaintext = row
    size = PacketSize.from_tag(tag)
    assert size.serde_name == serde
    assert PacketSize.from_name(serde) is size
    assert size.size == total
    assert size.plaintext_size == plaintext
    if payload is not None:
        assert size.payload_size == payload
    assert PacketSize.from_length(total) is size


def test_sphinx_packet_lengths_from_vectors_classify() -> None:
    packets = load_vector("official-client", "sphinx-packets.json")["packets"]
    for packet in packets:
        assert (
            PacketSize.from_length(packet["mix_packet_v2"]["sphinx_packet_len"])
            is PacketSize.REGULAR
        )
        ack_len = len(packet["final"]["surb_ack_packet_386"]) // 2
        assert PacketSize.from_length(ack_len) is PacketSize.ACK
        assert len(packet["final"]["recovered_plaintext"]) // 2 == PacketSize.REGULAR.plaintext_size


def test_outfox_regular_accepts_length_plus_six() -> None:
    assert PacketSize.from_length(PacketSize.OUTFOX_REGULAR.size - 6) is PacketSize.OUTFOX_REGULAR


@given(st.integers(min_value=0, max_value=70_000))
def test_unknown_lengths_rejected(length: int) -> None:
    known = {s.size for s in PacketSize} | {PacketSize.OUTFOX_REGULAR.size - 6}
    if length in known:
        assert PacketSize.from_length(length).size in (length, length + 6)
    else:
        with pytest.raises(PacketSizeError):
            PacketSize.from_length(length)


@given(st.integers(min_value=0, max_value=255))
def test_byte_parsers_raise_only_mixnet_errors(value: int) -> None:
    for parse in (
        PacketSize.from_tag,
        PacketType.from_byte,
        FrameVersion.from_byte,
        SphinxKeyRotation.from_byte,
    ):
        try:
            result = parse(value)
        except MixnetError:
            continue
        assert int(result) == value


def test_frame_versions_seven_and_eight_only() -> None:
    spec = spec_text("nym-mixnet.md")
    assert (
        "7 = initial versioned framing (3-byte" in spec
        and "8 = adds the key-rotation byte (4-byte" in spec
    )
    assert FrameVersion.from_byte(7).header_size == 3
    assert FrameVersion.from_byte(8).header_size == 4
    for bad in (0, 6, 9, 255):
        with pytest.raises(FrameVersionError):
            FrameVersion.from_byte(bad)


def test_packet_type_one_is_invalid() -> None:
    assert PacketType.from_byte(0) is PacketType.MIX
    assert PacketType.from_byte(2) is PacketType.OUTFOX
    with pytest.raises(PacketTypeError):
        PacketType.from_byte(1)


def test_key_rotation_parity_matches_recorded_mix_packet() -> None:
    data = load_vector("official-client", "sphinx-packets.json")
    rotation_id = data["directory"]["rotation_id"]
    for packet in data["packets"]:
        recorded = packet["mix_packet_v2"]["key_rotation"]
        assert SphinxKeyRotation.from_rotation_id(rotation_id) == recorded


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_key_rotation_from_id(rotation_id: int) -> None:
    label = SphinxKeyRotation.from_rotation_id(rotation_id)
    if rotation_id in (0, 0xFFFFFFFF):
        assert label is SphinxKeyRotation.UNKNOWN
    else:
        assert label is (SphinxKeyRotation.EVEN if rotation_id % 2 == 0 else SphinxKeyRotation.ODD)
