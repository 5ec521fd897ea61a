"""IPv4 and IPv6 packet codec and pseudo headers (reassembly is `iface.fragments`).

Addresses travel as packed bytes on the hot path (hashing and slicing bytes is
far cheaper than building `ipaddress` objects per packet); `to_address` turns
them into `ipaddress` objects through a small cache where an API needs them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from smolmix_cli.netstack.errors import MalformedPacket
from smolmix_cli.netstack.wire.checksum import internet_checksum

IPAddress = IPv4Address | IPv6Address
Endpoint = tuple[IPAddress, int]

PROTO_HOPOPT = 0
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ROUTING = 43
PROTO_FRAGMENT = 44
PROTO_ICMPV6 = 58
PROTO_NONE = 59
PROTO_DSTOPTS = 60

DEFAULT_TTL = 64
MAX_EXT_HEADERS = 8

_V4 = struct.Struct("!BBHHHBBH4s4s")
_V4_HEAD = struct.Struct("!BBHHHBBH")
_V6 = struct.Struct("!IHBB16s16s")
_PSEUDO4_TAIL = struct.Struct("!BBH")
_PSEUDO6_TAIL = struct.Struct("!IxxxB")


class PacketError(MalformedPacket):
    """A packet we drop; `reason` is the stack's counter key for it."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


_ADDR_CACHE: dict[bytes, IPAddress] = {}
_ADDR_CACHE_MAX = 4096


def to_address(packed: bytes) -> IPAddress:
    """The `ipaddress` object for 4 or 16 packed bytes (cached: few peers, many packets)."""
    addr = _ADDR_CACHE.get(packed)
    if addr is None:
        addr = IPv4Address(packed) if len(packed) == 4 else IPv6Address(packed)
        if len(_ADDR_CACHE) >= _ADDR_CACHE_MAX:
            _ADDR_CACHE.clear()
        _ADDR_CACHE[packed] = addr
    return addr


def pseudo_header(src: IPAddress, dst: IPAddress, protocol: int, length: int) -> bytes:
    """Checksum pseudo header: IPv4 12 bytes (RFC 9293 §3.1), IPv6 40 bytes (RFC 8200 §8.1)."""
    return pseudo_header_raw(src.packed, dst.packed, protocol, length)


def pseudo_header_raw(src: bytes, dst: bytes, protocol: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + _PSEUDO4_TAIL.pack(0, protocol, length)
    return src + dst + _PSEUDO6_TAIL.pack(length, protocol)


@dataclass(slots=True)
class IpPacket:
    """A decoded (and, when fragmented, reassembled) IP datagram.

    `src`/`dst` are packed addresses; `protocol` is the upper-layer protocol
    after IPv6 extension headers; `raw` is the whole packet as received (for
    quoting in ICMP errors); `frag` is (ident, offset, more) for a fragment.
    """

    version: int
    src: bytes
    dst: bytes
    protocol: int
    payload: bytes
    ttl: int
    raw: bytes
    frag: tuple[int, int, bool] | None = None
    frag_next: int = 0  # IPv6 only: next header after the fragment header


def decode_ip(data: bytes | bytearray | memoryview) -> IpPacket:
    """Parse one IP packet; raises `PacketError` with a counter reason on anything bad."""
    if data.__class__ is not bytes:
        data = bytes(data)
    if not data:
        raise PacketError("truncated", "empty packet")
    version = data[0] >> 4
    if version == 4:
        return decode_ipv4(data)
    if version == 6:
        return decode_ipv6(data)
    raise PacketError("bad_version", f"IP version {version}")


def decode_ipv4(data: bytes) -> IpPacket:
    n = len(data)
    if n < 20:
        raise PacketError("truncated", "IPv4 header")
    vihl, _tos, total, ident, flags_frag, ttl, proto, _csum = _V4_HEAD.unpack_from(data, 0)
    if vihl >> 4 != 4:
        raise PacketError("bad_version", "not IPv4")
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or ihl > n:
        raise PacketError("bad_length", "IPv4 header length")
    if total < ihl or total > n:
        raise PacketError("bad_length", "IPv4 total length")
    header = data[:ihl]
    if int.from_bytes(header, "big") % 0xFFFF != 0:
        raise PacketError("bad_checksum", "IPv4 header")
    if ihl > 20:
        _check_ipv4_options(header)
    src = data[12:16]
    dst = data[16:20]
    payload = data[ihl:total]
    frag = None
    if flags_frag & 0x3FFF:
        frag = (ident, (flags_frag & 0x1FFF) * 8, bool(flags_frag & 0x2000))
    return IpPacket(4, src, dst, proto, payload, ttl, data[:total], frag)


def _check_ipv4_options(header: bytes) -> None:
    """Walk the options so a malformed length is caught; their contents are ignored."""
    i, end = 20, len(header)
    while i < end:
        kind = header[i]
        if kind == 0:  # end of option list
            return
        if kind == 1:  # no-operation
            i += 1
            continue
        if i + 1 >= end:
            raise PacketError("bad_options", "IPv4 option length missing")
        length = header[i + 1]
        if length < 2 or i + length > end:
            raise PacketError("bad_options", "IPv4 option length")
        i += length


def decode_ipv6(data: bytes) -> IpPacket:
    n = len(data)
    if n < 40:
        raise PacketError("truncated", "IPv6 header")
    vtf, plen, nh, hlim, src, dst = _V6.unpack_from(data, 0)
    if vtf >> 28 != 6:
        raise PacketError("bad_version", "not IPv6")
    end = 40 + plen
    if plen == 0 and nh == PROTO_HOPOPT:
        raise PacketError("bad_length", "jumbograms are not supported")
    if end > n:
        raise PacketError("bad_length", "IPv6 payload length")
    nh, off, frag = skip_ipv6_extensions(data, 40, end, nh, first=True)
    if frag is not None:
        frag_next = frag[3]
        return IpPacket(
            6, src, dst, PROTO_FRAGMENT, data[off:end], hlim, data[:end], frag[:3], frag_next
        )
    return IpPacket(6, src, dst, nh, data[off:end], hlim, data[:end])


def skip_ipv6_extensions(
    data: bytes, off: int, end: int, nh: int, first: bool
) -> tuple[int, int, tuple[int, int, bool, int] | None]:
    """Skip hop-by-hop, routing and destination-options headers.

    Returns (upper protocol, payload offset, fragment info). Fragment info is
    (ident, offset, more, next header); parsing stops at a fragment header since
    what follows it belongs to the fragmentable part.
    """
    count = 0
    while True:
        if nh in (PROTO_HOPOPT, PROTO_DSTOPTS, PROTO_ROUTING):
            if nh == PROTO_HOPOPT and not (first and count == 0):
                raise PacketError("bad_ext_header", "hop-by-hop not first")
            if off + 8 > end:
                raise PacketError("bad_ext_header", "truncated extension header")
            hlen = (data[off + 1] + 1) * 8
            if off + hlen > end:
                raise PacketError("bad_ext_header", "extension header length")
            if nh == PROTO_ROUTING:
                if data[off + 3] != 0:
                    raise PacketError("bad_ext_header", "routing header with segments left")
            else:
                _check_ipv6_options(data, off + 2, off + hlen)
            nh = data[off]
            off += hlen
        elif nh == PROTO_FRAGMENT:
            if not first:
                raise PacketError("bad_ext_header", "nested fragment header")
            if off + 8 > end:
                raise PacketError("bad_ext_header", "truncated fragment header")
            fo = (data[off + 2] << 8) | data[off + 3]
            ident = int.from_bytes(data[off + 4 : off + 8], "big")
            return PROTO_FRAGMENT, off + 8, (ident, fo & 0xFFF8, bool(fo & 1), data[off])
        elif nh == PROTO_NONE:
            raise PacketError("no_next_header")
        else:
            return nh, off, None
        count += 1
        if count > MAX_EXT_HEADERS:
            raise PacketError("bad_ext_header", "too many extension headers")


def _check_ipv6_options(data: bytes, i: int, end: int) -> None:
    """TLV options: padding is fine; any other option must be 'skip if unknown' (RFC 8200 §4.2)."""
    while i < end:
        kind = data[i]
        if kind == 0:  # Pad1
            i += 1
            continue
        if i + 1 >= end:
            raise PacketError("bad_options", "IPv6 option length missing")
        length = data[i + 1]
        if i + 2 + length > end:
            raise PacketError("bad_options", "IPv6 option length")
        if kind != 1 and kind >> 6 != 0:
            raise PacketError("bad_options", f"unknown IPv6 option {kind:#x}")
        i += 2 + length


def encode_ipv4(
    src: bytes, dst: bytes, protocol: int, payload: bytes, ttl: int = DEFAULT_TTL, ident: int = 0
) -> bytes:
    """An IPv4 packet with DF set and ID 0 (RFC 6864 allows ID 0 for atomic datagrams)."""
    header = _V4.pack(0x45, 0, 20 + len(payload), ident, 0x4000, ttl, protocol, 0, src, dst)
    csum = internet_checksum(header)
    return header[:10] + csum.to_bytes(2, "big") + header[12:] + payload


def encode_ipv6(
    src: bytes, dst: bytes, next_header: int, payload: bytes, hop_limit: int = DEFAULT_TTL
) -> bytes:
    return _V6.pack(0x60000000, len(payload), next_header, hop_limit, src, dst) + payload


def encode_ip(
    src: bytes, dst: bytes, protocol: int, payload: bytes, ttl: int = DEFAULT_TTL
) -> bytes:
    if len(src) == 4:
        return encode_ipv4(src, dst, protocol, payload, ttl)
    return encode_ipv6(src, dst, protocol, payload, ttl)
