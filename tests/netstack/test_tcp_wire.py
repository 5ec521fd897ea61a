"""TCP header codec: round trips, option layouts, and rejection of malformed segments."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.netstack.errors import MalformedPacket
from smolmix_cli.netstack.wire.checksum import internet_checksum
from smolmix_cli.netstack.wire.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    TcpSegment,
    decode_tcp,
    encode_tcp,
)

PSEUDO4 = bytes([192, 0, 2, 1, 192, 0, 2, 2, 0, 6, 0, 0])
PSEUDO6 = bytes(range(32)) + b"\x00\x00\x00\x00\x00\x00\x00\x06"

u32 = st.integers(0, 0xFFFFFFFF)
u16 = st.integers(0, 0xFFFF)


@st.composite
def segments(draw: st.DrawFn) -> TcpSegment:
    syn = draw(st.booleans())
    seg = TcpSegment(
        src_port=draw(u16),
        dst_port=draw(u16),
        seq=draw(u32),
        ack=draw(u32),
        flags=draw(st.integers(0, 0xFF)),
        window=draw(u16),
        payload=draw(st.binary(max_size=1500)),
        urgent=draw(u16),
    )
    if draw(st.booleans()):
        seg.timestamps = (draw(u32), draw(u32))
    if syn:
        seg.mss = draw(st.none() | u16)
        seg.wscale = draw(st.none() | st.integers(0, 14))
        seg.sack_permitted = draw(st.booleans())
    else:
        limit = 3 if seg.timestamps else 4
        seg.sack_blocks = tuple(draw(st.lists(st.tuples(u32, u32), max_size=limit)))
    return seg


def _with_fixed_checksum(raw: bytearray, pseudo: bytes) -> bytes:
    raw[16:18] = b"\x00\x00"
    raw[16:18] = struct.pack("!H", internet_checksum(pseudo, bytes(raw)))
    return bytes(raw)


@given(segments(), st.sampled_from([PSEUDO4, PSEUDO6]))
def test_round_trip(seg: TcpSegment, pseudo: bytes) -> None:
    raw = encode_tcp(seg, pseudo)
    assert len(raw) % 4 == len(seg.payload) % 4
    assert decode_tcp(raw, pseudo) == seg
    assert decode_tcp(memoryview(raw), pseudo) == seg


def test_syn_option_layout_matches_linux() -> None:
    seg = TcpSegment(1, 2, 3, 0, SYN, 65535, mss=1380, wscale=7, sack_permitted=True)
    seg.timestamps = (0x01020304, 0)
    raw = encode_tcp(seg, PSEUDO4)
    assert raw[12] >> 4 == 10  # 20 + 20 option bytes
    assert raw[20:40] == bytes.fromhex("0204 0564 0402 080a 01020304 00000000 0103 0307")


def test_sack_blocks_cut_to_fit_forty_option_bytes() -> None:
    blocks = tuple((i * 100, i * 100 + 50) for i in range(5))
    seg = TcpSegment(1, 2, 3, 4, ACK, 100, sack_blocks=blocks, timestamps=(1, 2))
    got = decode_tcp(encode_tcp(seg, PSEUDO4), PSEUDO4)
    assert got.sack_blocks == blocks[:3]
    seg.timestamps = None
    got = decode_tcp(encode_tcp(seg, PSEUDO4), PSEUDO4)
    assert got.sack_blocks == blocks[:4]


def test_checksum_is_verified() -> None:
    raw = bytearray(encode_tcp(TcpSegment(1, 2, 3, 4, ACK | PSH, 5, b"hello"), PSEUDO4))
    raw[-1] ^= 1
    with pytest.raises(MalformedPacket):
        decode_tcp(bytes(raw), PSEUDO4)
    # The same bytes under another pseudo-header (other addresses) are rejected too.
    good = encode_tcp(TcpSegment(1, 2, 3, 4, ACK, 5, b"hi"), PSEUDO4)
    with pytest.raises(MalformedPacket):
        decode_tcp(good, PSEUDO6)


def _raw_with_options(opts: bytes, payload: bytes = b"") -> bytes:
    assert len(opts) % 4 == 0
    hdr = bytearray(struct.pack("!HHIIBBHHH", 1, 2, 3, 4, (5 + len(opts) // 4) << 4, ACK, 9, 0, 0))
    return _with_fixed_checksum(hdr + opts + payload, PSEUDO4)


@pytest.mark.parametrize(
    "opts",
    [
        bytes([2, 3, 0, 0]),  # MSS with length 3
        bytes([3, 4, 7, 0]),  # window scale with length 4
        bytes([4, 3, 0, 0]),  # SACK-permitted with length 3
        bytes([5, 2, 0, 0]),  # SACK with no blocks
        bytes([5, 9]) + bytes(10),  # SACK length not 2 + 8n
        bytes([8, 9]) + bytes(10),  # timestamps with length 9
        bytes([1, 1, 1, 99]),  # unknown option running past the header
        bytes([1, 1, 1, 30]),  # option kind with no length byte (last byte)
        bytes([30, 1, 0, 0]),  # length below 2
        bytes([30, 0, 0, 0]),  # length 0 would loop forever
    ],
)
def test_malformed_options_rejected(opts: bytes) -> None:
    with pytest.raises(MalformedPacket):
        decode_tcp(_raw_with_options(opts), PSEUDO4)


def test_unknown_options_skipped_and_eol_stops_parsing() -> None:
    opts = bytes([30, 6, 1, 2, 3, 4, 2, 4, 5, 0xDC, 0, 3, 3, 9, 0, 0])
    seg = decode_tcp(_raw_with_options(opts, b"data"), PSEUDO4)
    assert seg.mss == 0x5DC and seg.wscale is None and seg.payload == b"data"
    seg = decode_tcp(_raw_with_options(bytes([3, 3, 20, 1])), PSEUDO4)
    assert seg.wscale == 14  # RFC 7323: shift counts above 14 are taken as 14


@pytest.mark.parametrize("offset_words", [0, 4, 15])
def test_bad_data_offset_rejected(offset_words: int) -> None:
    hdr = bytearray(struct.pack("!HHIIBBHHH", 1, 2, 3, 4, offset_words << 4, ACK, 9, 0, 0))
    with pytest.raises(MalformedPacket):
        decode_tcp(_with_fixed_checksum(hdr + b"abcd", PSEUDO4), PSEUDO4)


@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_escape_other_errors(data: bytes) -> None:
    for raw in (data, _with_fixed_checksum(bytearray(data), PSEUDO4) if len(data) >= 20 else data):
        try:
            seg = decode_tcp(raw, PSEUDO4)
        except MalformedPacket:
            continue
        assert 0 <= seg.seq <= 0xFFFFFFFF


def test_flags_and_seg_len() -> None:
    seg = TcpSegment(1, 2, 3, 4, SYN | FIN, 0, b"xyz")
    assert seg.seg_len == 5
    assert TcpSegment(1, 2, 3, 4, RST, 0).seg_len == 0


@given(u32, u32, u16, st.binary(max_size=64), u32, u32, st.sampled_from([0x80, 0x81]))
def test_timestamp_only_layout_matches_the_general_parse(
    seq: int, ack: int, window: int, payload: bytes, tsval: int, tsecr: int, offset_byte: int
) -> None:
    # NOP NOP TS (one-unpack branch; 0x81 sets the NS bit and takes the general one)
    # against TS NOP NOP (always the general option walk): the same segment.
    head = struct.pack("!HHIIBBHHH", 1, 2, seq, ack, offset_byte, ACK | PSH, window, 0, 0)
    fast = bytearray(head + b"\x01\x01\x08\x0a" + struct.pack("!II", tsval, tsecr) + payload)
    slow = bytearray(head + b"\x08\x0a" + struct.pack("!II", tsval, tsecr) + b"\x01\x01" + payload)
    a = decode_tcp(_with_fixed_checksum(fast, PSEUDO4), PSEUDO4)
    b = decode_tcp(_with_fixed_checksum(slow, PSEUDO4), PSEUDO4)
    assert a == b
    assert a.timestamps == (tsval, tsecr) and a.payload == payload and a.sack_blocks == ()
