"""ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages the stack sends or acts on.

Only what an endpoint needs: echo, destination unreachable, packet too big /
fragmentation needed, and parsing the packet an error quotes so the stack can
find the socket it concerns.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from smolmix_cli.netstack.wire.checksum import internet_checksum
from smolmix_cli.netstack.wire.ip import PROTO_TCP, PROTO_UDP, PacketError, skip_ipv6_extensions

# ICMPv4 types
V4_ECHO_REPLY = 0
V4_DEST_UNREACHABLE = 3
V4_ECHO_REQUEST = 8
V4_TIME_EXCEEDED = 11
V4_PARAMETER_PROBLEM = 12
V4_CODE_NET_UNREACHABLE = 0
V4_CODE_HOST_UNREACHABLE = 1
V4_CODE_PROTOCOL_UNREACHABLE = 2
V4_CODE_PORT_UNREACHABLE = 3
V4_CODE_FRAG_NEEDED = 4
V4_CODE_ADMIN_PROHIBITED = 13

# ICMPv6 types
V6_DEST_UNREACHABLE = 1
V6_PACKET_TOO_BIG = 2
V6_TIME_EXCEEDED = 3
V6_PARAMETER_PROBLEM = 4
V6_ECHO_REQUEST = 128
V6_ECHO_REPLY = 129
V6_CODE_NO_ROUTE = 0
V6_CODE_ADMIN_PROHIBITED = 1
V6_CODE_ADDRESS_UNREACHABLE = 3
V6_CODE_PORT_UNREACHABLE = 4

V4_ERROR_TYPES = frozenset({V4_DEST_UNREACHABLE, V4_TIME_EXCEEDED, V4_PARAMETER_PROBLEM})
V6_ERROR_TYPES = frozenset({1, 2, 3, 4})

# Quoting limits: the error must fit the minimum MTU (RFC 1812 §4.3.2.3, RFC 4443 §2.4).
V4_MAX_ERROR = 576
V6_MAX_ERROR = 1280

_HEAD = struct.Struct("!BBHI")


@dataclass(slots=True)
class IcmpMessage:
    """`rest` is the 4-byte field after the checksum (id/seq, unused, or MTU)."""

    type: int
    code: int
    rest: int
    body: bytes = b""

    @property
    def echo_id(self) -> int:
        return self.rest >> 16

    @property
    def echo_seq(self) -> int:
        return self.rest & 0xFFFF


def decode_icmp(data: bytes, pseudo: bytes = b"") -> IcmpMessage:
    """Parse and verify; ICMPv6 needs the IPv6 pseudo header, ICMPv4 passes none."""
    if len(data) < 8:
        raise PacketError("truncated", "ICMP header")
    if int.from_bytes(pseudo + data + (b"\x00" if len(data) & 1 else b""), "big") % 0xFFFF:
        raise PacketError("bad_checksum", "ICMP")
    typ, code, _csum, rest = _HEAD.unpack_from(data, 0)
    return IcmpMessage(typ, code, rest, data[8:])


def encode_icmp(msg: IcmpMessage, pseudo: bytes = b"") -> bytes:
    head = _HEAD.pack(msg.type, msg.code, 0, msg.rest)
    csum = (
        internet_checksum(pseudo, head, msg.body) if pseudo else internet_checksum(head, msg.body)
    )
    return head[:2] + csum.to_bytes(2, "big") + head[4:] + msg.body


@dataclass(slots=True)
class Quote:
    """The 4-tuple of the packet an ICMP error is about, as the original sender saw it."""

    src: bytes
    dst: bytes
    protocol: int
    src_port: int
    dst_port: int


def parse_quote(body: bytes, version: int) -> Quote:
    """Parse the IP header + first 8 transport bytes an ICMP error quotes.

    Lengths and checksums of the quoted packet are not checked: routers may
    truncate it, and only the addresses and ports matter.
    """
    if version == 4:
        if len(body) < 20 or body[0] >> 4 != 4:
            raise PacketError("bad_icmp_quote", "quoted IPv4 header")
        ihl = (body[0] & 0x0F) * 4
        if ihl < 20 or len(body) < ihl + 4:
            raise PacketError("bad_icmp_quote", "quoted IPv4 header length")
        proto, src, dst, off = body[9], body[12:16], body[16:20], ihl
    else:
        if len(body) < 40 or body[0] >> 4 != 6:
            raise PacketError("bad_icmp_quote", "quoted IPv6 header")
        src, dst = body[8:24], body[24:40]
        proto, off, frag = skip_ipv6_extensions(body, 40, len(body), body[6], first=True)
        if frag is not None and frag[1] != 0:
            raise PacketError("bad_icmp_quote", "quoted non-first fragment")
        if frag is not None:
            proto = frag[3]
    if proto not in (PROTO_TCP, PROTO_UDP) or len(body) < off + 4:
        raise PacketError("bad_icmp_quote", "quoted transport header")
    sport, dport = struct.unpack_from("!HH", body, off)
    return Quote(src, dst, proto, sport, dport)


def echo_reply(request: IcmpMessage, version: int) -> IcmpMessage:
    return IcmpMessage(
        V4_ECHO_REPLY if version == 4 else V6_ECHO_REPLY, 0, request.rest, request.body
    )


def error_for(raw: bytes, version: int, typ: int, code: int, rest: int = 0) -> IcmpMessage:
    """An ICMP error quoting as much of `raw` as fits the minimum MTU."""
    limit = (V4_MAX_ERROR - 28) if version == 4 else (V6_MAX_ERROR - 48)
    return IcmpMessage(typ, code, rest, raw[:limit])


def port_unreachable(raw: bytes, version: int) -> IcmpMessage:
    if version == 4:
        return error_for(raw, 4, V4_DEST_UNREACHABLE, V4_CODE_PORT_UNREACHABLE)
    return error_for(raw, 6, V6_DEST_UNREACHABLE, V6_CODE_PORT_UNREACHABLE)


def protocol_unreachable(raw: bytes, version: int) -> IcmpMessage:
    if version == 4:
        return error_for(raw, 4, V4_DEST_UNREACHABLE, V4_CODE_PROTOCOL_UNREACHABLE)
    # RFC 4443 §3.4: parameter problem code 1 "unrecognized next header"; pointer left 0
    return error_for(raw, 6, V6_PARAMETER_PROBLEM, 1, 6)


def frag_needed(raw: bytes, version: int, mtu: int) -> IcmpMessage:
    if version == 4:
        return error_for(raw, 4, V4_DEST_UNREACHABLE, V4_CODE_FRAG_NEEDED, mtu & 0xFFFF)
    return error_for(raw, 6, V6_PACKET_TOO_BIG, 0, mtu)


def next_hop_mtu(msg: IcmpMessage, version: int) -> int | None:
    """The MTU an ICMP 'fragmentation needed' / 'packet too big' reports, else None."""
    if version == 4:
        if msg.type == V4_DEST_UNREACHABLE and msg.code == V4_CODE_FRAG_NEEDED:
            return msg.rest & 0xFFFF
        return None
    if msg.type == V6_PACKET_TOO_BIG:
        return msg.rest
    return None


def is_hard_unreachable(msg: IcmpMessage, version: int) -> bool:
    """Errors that mean 'nobody will answer': fail a pending connect at once (RFC 1122 4.2.3.9)."""
    if version == 4:
        return msg.type == V4_DEST_UNREACHABLE and msg.code in (
            V4_CODE_NET_UNREACHABLE,
            V4_CODE_HOST_UNREACHABLE,
            V4_CODE_PROTOCOL_UNREACHABLE,
            V4_CODE_PORT_UNREACHABLE,
            9,
            10,
            V4_CODE_ADMIN_PROHIBITED,
        )
    return msg.type == V6_DEST_UNREACHABLE and msg.code in (0, 1, 3, 4, 5, 6)
