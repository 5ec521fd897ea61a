"""IPv4/IPv6 codec, pseudo headers and fragment reassembly."""

from __future__ import annotations

import random
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.netstack.iface.fragments import Reassembler
from smolmix_cli.netstack.wire.ip import (
    PROTO_FRAGMENT,
    PROTO_TCP,
    PROTO_UDP,
    PacketError,
    decode_ip,
    encode_ipv4,
    encode_ipv6,
    pseudo_header,
)

A4, B4 = IPv4Address("192.0.2.1").packed, IPv4Address("192.0.2.2").packed
A6, B6 = IPv6Address("fd00:e7a1::1").packed, IPv6Address("fd00:e7a1::2").packed

# A textbook IPv4 header (UDP, 0x73 bytes, DF) whose checksum field is 0xb861.
TEXTBOOK = bytes.fromhex("450000730000400040 11b861c0a80001c0a800c7".replace(" ", ""))


def test_ipv4_checksum_matches_known_header() -> None:
    packet = encode_ipv4(
        IPv4Address("192.168.0.1").packed,
        IPv4Address("192.168.0.199").packed,
        PROTO_UDP,
        b"\x00" * (0x73 - 20),
    )
    assert packet[:20] == TEXTBOOK


def test_ipv4_encode_fields() -> None:
    packet = encode_ipv4(A4, B4, PROTO_TCP, b"hello")
    assert packet[6] & 0x40  # DF
    assert packet[4:6] == b"\x00\x00"  # ID 0
    assert packet[8] == 64  # TTL
    parsed = decode_ip(packet)
    assert (parsed.version, parsed.src, parsed.dst) == (4, A4, B4)
    assert parsed.protocol == PROTO_TCP and parsed.payload == b"hello" and parsed.frag is None


@given(st.binary(max_size=1500), st.sampled_from([4, 6]), st.integers(0, 255))
def test_roundtrip(payload: bytes, version: int, proto: int) -> None:
    if version == 4:
        packet = encode_ipv4(A4, B4, proto, payload)
    else:
        proto = PROTO_TCP if proto in (0, 43, 44, 59, 60) else proto
        packet = encode_ipv6(A6, B6, proto, payload)
    parsed = decode_ip(packet + b"\x00\x07")  # trailing link padding is ignored
    assert parsed.payload == payload and parsed.protocol == proto


def test_pseudo_headers() -> None:
    v4 = pseudo_header(IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"), 6, 40)
    assert v4 == A4 + B4 + b"\x00\x06\x00\x28"
    v6 = pseudo_header(IPv6Address("fd00:e7a1::1"), IPv6Address("fd00:e7a1::2"), 17, 70000)
    assert v6 == A6 + B6 + struct.pack("!I", 70000) + b"\x00\x00\x00\x11"


def _v4(header_tail: bytes = b"", total: int | None = None, flags_frag: int = 0x4000) -> bytes:
    ihl = (20 + len(header_tail)) // 4
    payload = b"x" * 8
    tot = total if total is not None else ihl * 4 + len(payload)
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot, 7, flags_frag, 64, 17, 0, A4, B4)
    head += header_tail
    from smolmix_cli.netstack.wire.checksum import internet_checksum

    csum = internet_checksum(head)
    return head[:10] + struct.pack("!H", csum) + head[12:] + payload


def test_ipv4_options_tolerated() -> None:
    # NOP, router alert (4 bytes), EOL padding
    pkt = decode_ip(_v4(b"\x01\x94\x04\x00\x00\x00\x00\x00"))
    assert pkt.payload == b"x" * 8


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x45" + b"\x00" * 10, "truncated"),
        (b"\x55" + b"\x00" * 30, "bad_version"),
        (_v4(b"\x07\x01\x00\x00"), "bad_options"),  # option length 1
        (_v4(b"\x07\x09\x00\x00"), "bad_options"),  # option runs past the header
        (_v4(total=10), "bad_length"),
        (_v4(total=200), "bad_length"),
        (_v4()[:10] + b"\x00\x00" + _v4()[12:], "bad_checksum"),
        (bytes([0x44]) + _v4()[1:], "bad_length"),  # IHL 4
        (
            encode_ipv6(A6, B6, 6, b"abc")[:4] + b"\x00\x10" + encode_ipv6(A6, B6, 6, b"abc")[6:],
            "bad_length",
        ),
        (encode_ipv6(A6, B6, 59, b"abcdefgh"), "no_next_header"),
    ],
)
def test_malformed_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(PacketError) as info:
        decode_ip(data)
    assert info.value.reason == reason


def _ext(next_header: int, body: bytes) -> bytes:
    assert (len(body) + 2) % 8 == 0
    return bytes([next_header, (len(body) + 2) // 8 - 1]) + body


def test_ipv6_extension_headers_skipped() -> None:
    hop = _ext(60, b"\x01\x04\x00\x00\x00\x00")  # PadN
    dst = _ext(43, b"\x00" + b"\x01\x03\x00\x00\x00")  # Pad1 + PadN
    routing = _ext(PROTO_UDP, b"\x00\x00" + b"\x00" * 4)  # type 0, segments left 0
    pkt = decode_ip(encode_ipv6(A6, B6, 0, hop + dst + routing + b"payload"))
    assert pkt.protocol == PROTO_UDP and pkt.payload == b"payload"


@pytest.mark.parametrize(
    "chain",
    [
        _ext(0, b"\x01\x04\x00\x00\x00\x00"),  # hop-by-hop after hop-by-hop
        _ext(17, b"\xc2\x04\x00\x00\x00\x00"),  # unknown option with 'discard' action
        _ext(17, b"\x00\x01\x00\x00\x00\x00"),  # routing with segments left (as 43 below)
        b"\x11\x05" + b"\x00" * 6,  # length runs past the packet
    ],
)
def test_ipv6_bogus_extension_headers(chain: bytes) -> None:
    first = 43 if chain[2:4] == b"\x00\x01" else 0
    if chain[0] == 0:
        chain = _ext(0, b"\x01\x04\x00\x00\x00\x00") + chain
    with pytest.raises(PacketError) as info:
        decode_ip(encode_ipv6(A6, B6, first if first else 0, chain + b"data"))
    assert info.value.reason in {"bad_ext_header", "bad_options"}


def test_too_many_extension_headers() -> None:
    chain = b"".join(_ext(60, b"\x01\x04\x00\x00\x00\x00") for _ in range(12))
    chain = chain[:-8] + _ext(17, b"\x01\x04\x00\x00\x00\x00")
    with pytest.raises(PacketError) as info:
        decode_ip(encode_ipv6(A6, B6, 60, chain + b"data"))
    assert info.value.reason == "bad_ext_header"


def _v4_fragments(payload: bytes, size: int, ident: int = 99) -> list[bytes]:
    out = []
    from smolmix_cli.netstack.wire.checksum import internet_checksum

    for off in range(0, len(payload), size):
        chunk = payload[off : off + size]
        more = off + size < len(payload)
        ff = (0x2000 if more else 0) | (off // 8)
        head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(chunk), ident, ff, 64, 17, 0, A4, B4)
        csum = internet_checksum(head)
        out.append(head[:10] + struct.pack("!H", csum) + head[12:] + chunk)
    return out


def _v6_fragments(inner: bytes, next_header: int, size: int, ident: int = 5) -> list[bytes]:
    out = []
    for off in range(0, len(inner), size):
        chunk = inner[off : off + size]
        more = off + size < len(inner)
        frag = struct.pack("!BBHI", next_header, 0, off | int(more), ident)
        out.append(encode_ipv6(A6, B6, PROTO_FRAGMENT, frag + chunk))
    return out


@pytest.mark.parametrize("version", [4, 6])
def test_reassembly_any_order(version: int) -> None:
    payload = bytes(random.Random(1).getrandbits(8) for _ in range(3000))
    frags = _v4_fragments(payload, 800) if version == 4 else _v6_fragments(payload, PROTO_UDP, 800)
    for seed in range(5):
        order = frags[:]
        random.Random(seed).shuffle(order)
        order.insert(2, order[0])  # one exact duplicate
        r = Reassembler()
        results = [r.add(decode_ip(f), 0.0) for f in order]
        done = [p for p in results if p is not None]
        assert len(done) == 1 and done[0].payload == payload and done[0].protocol == PROTO_UDP
        assert len(r) == 0 and r.buffered_bytes == 0


def test_reassembly_v6_with_headers_after_fragment_header() -> None:
    inner = _ext(PROTO_UDP, b"\x01\x04\x00\x00\x00\x00") + b"z" * 100
    frags = _v6_fragments(inner, 60, 56)
    r = Reassembler()
    results = [r.add(decode_ip(f), 0.0) for f in frags]
    assert results[-1] is not None and results[-1].payload == b"z" * 100


def test_reassembly_overlap_discards_datagram() -> None:
    payload = b"a" * 1600
    frags = _v4_fragments(payload, 800)
    r = Reassembler()
    assert r.add(decode_ip(frags[0]), 0.0) is None
    # a different fragment overlapping the first one
    bogus = _v4_fragments(b"b" * 1600, 400)[1]
    with pytest.raises(PacketError) as info:
        r.add(decode_ip(bogus), 0.0)
    assert info.value.reason == "fragment_overlap" and len(r) == 0


def test_reassembly_bounds_and_timeout() -> None:
    r = Reassembler(max_datagrams=4, max_total_bytes=4000, timeout=5.0)
    for ident in range(10):
        r.add(decode_ip(_v4_fragments(b"q" * 1600, 800, ident)[0]), float(ident))
    assert len(r) <= 4 and r.buffered_bytes <= 4000
    assert r.poll_deadline() == pytest.approx(6 + 5.0)
    assert r.expire(100.0) == len([1]) * 4 and len(r) == 0 and r.buffered_bytes == 0


def test_reassembly_rejects_bad_fragment_lengths() -> None:
    frags = _v4_fragments(b"c" * 1600, 800)
    bad = decode_ip(frags[0])
    bad.payload = bad.payload[:-3]  # non-final not a multiple of 8
    with pytest.raises(PacketError):
        Reassembler().add(bad, 0.0)
    last = decode_ip(frags[1])
    assert last.frag is not None
    last.frag = (last.frag[0], 65528, False)
    with pytest.raises(PacketError) as info:
        Reassembler().add(last, 0.0)
    assert info.value.reason == "fragment_too_big"
