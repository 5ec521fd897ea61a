"""TCP header codec (RFC 9293 §3.1) with the options we send or accept.

Options: EOL, NOP, MSS (RFC 9293), window scale and timestamps (RFC 7323),
SACK-permitted and SACK blocks (RFC 2018). Unknown options are skipped by
their length byte; a known option with the wrong length, an option running
past the header, a bad data offset or a bad checksum raise `MalformedPacket`.

This is on the per-segment hot path, so headers go through precompiled
`struct.Struct` objects and the common option layouts (timestamps only,
timestamps + SACK) are built without a generic loop.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from smolmix_cli.netstack.errors import MalformedPacket
from smolmix_cli.netstack.wire.checksum import internet_checksum, is_valid

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80

OPT_EOL, OPT_NOP, OPT_MSS, OPT_WSCALE, OPT_SACK_OK, OPT_SACK, OPT_TS = 0, 1, 2, 3, 4, 5, 8

HEADER_LEN = 20
MAX_OPTIONS_LEN = 40
MAX_WSCALE = 14  # RFC 7323 §2.3: larger shift counts are treated as 14

_HDR = struct.Struct("!HHIIBBHHH")
_U16 = struct.Struct("!H")
_U32X2 = struct.Struct("!II")
# NOP NOP TS(10): the layout Linux and we put on every non-SYN segment.
_TS_ONLY = struct.Struct("!BBBBII")
_TS_PREFIX = b"\x01\x01\x08\x0a"
# header plus NOP NOP TS: the layout of nearly every segment of an established stream
_HDR_TS = struct.Struct("!HHIIBBHHH4xII")
_HDR_TS_LEN = _HDR_TS.size  # 32


class MalformedTcp(MalformedPacket):
    """A TCP segment that fails length, offset, option or checksum checks."""


@dataclass(slots=True, init=False)
class TcpSegment:
    """One TCP segment, with sequence numbers as the 32-bit wire values."""

    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int  # the raw 16-bit header field (unscaled)
    payload: bytes
    mss: int | None
    wscale: int | None
    sack_permitted: bool
    sack_blocks: tuple[tuple[int, int], ...]
    timestamps: tuple[int, int] | None  # (TSval, TSecr)
    urgent: int

    # Written out (init=False): the dataclass-generated __init__ is interpreted code
    # even where mypyc compiles this module, and one runs for every packet.
    def __init__(
        self,
        src_port: int,
        dst_port: int,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        payload: bytes = b"",
        mss: int | None = None,
        wscale: int | None = None,
        sack_permitted: bool = False,
        sack_blocks: tuple[tuple[int, int], ...] = (),
        timestamps: tuple[int, int] | None = None,
        urgent: int = 0,
    ) -> None:
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.payload = payload
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.sack_blocks = sack_blocks
        self.timestamps = timestamps
        self.urgent = urgent

    @property
    def seg_len(self) -> int:
        """Sequence space the segment occupies (data plus SYN and FIN)."""
        n = len(self.payload)
        if self.flags & SYN:
            n += 1
        if self.flags & FIN:
            n += 1
        return n


def _parse_options(opts: bytes, seg: TcpSegment) -> None:
    # Fast path: NOP NOP TS, the layout of nearly every segment in a stream.
    n = len(opts)
    if n == 12 and opts[:4] == _TS_PREFIX:
        seg.timestamps = _U32X2.unpack_from(opts, 4)
        return
    i = 0
    while i < n:
        kind = opts[i]
        if kind == OPT_EOL:
            return
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            raise MalformedTcp("option kind without length byte")
        length = opts[i + 1]
        if length < 2 or i + length > n:
            raise MalformedTcp(f"option {kind} has bad length {length}")
        if kind == OPT_MSS:
            if length != 4:
                raise MalformedTcp("MSS option length != 4")
            seg.mss = _U16.unpack_from(opts, i + 2)[0]
        elif kind == OPT_WSCALE:
            if length != 3:
                raise MalformedTcp("window scale option length != 3")
            seg.wscale = min(opts[i + 2], MAX_WSCALE)
        elif kind == OPT_SACK_OK:
            if length != 2:
                raise MalformedTcp("SACK-permitted option length != 2")
            seg.sack_permitted = True
        elif kind == OPT_SACK:
            if (length - 2) % 8 or length == 2:
                raise MalformedTcp("SACK option length not 2 + 8n")
            seg.sack_blocks = tuple(
                _U32X2.unpack_from(opts, j) for j in range(i + 2, i + length, 8)
            )
        elif kind == OPT_TS:
            if length != 10:
                raise MalformedTcp("timestamp option length != 10")
            seg.timestamps = _U32X2.unpack_from(opts, i + 2)
        i += length


def decode_tcp(data: bytes | bytearray | memoryview, pseudo_header: bytes) -> TcpSegment:
    """Parse and verify one segment; `pseudo_header` comes from the IP layer."""
    n = len(data)
    if n < HEADER_LEN:
        raise MalformedTcp(f"segment of {n} bytes is shorter than a TCP header")
    if not is_valid(pseudo_header, data):
        raise MalformedTcp("bad TCP checksum")
    if n >= _HDR_TS_LEN and data[12] == 0x80 and data[20:24] == _TS_PREFIX:
        src, dst, seq, ack, _off, flags, window, _csum, urgent, tsval, tsecr = _HDR_TS.unpack_from(
            data, 0
        )
        return TcpSegment(
            src,
            dst,
            seq,
            ack,
            flags,
            window,
            bytes(data[_HDR_TS_LEN:]),
            None,
            None,
            False,
            (),
            (tsval, tsecr),
            urgent,
        )
    src, dst, seq, ack, off, flags, window, _csum, urgent = _HDR.unpack_from(data, 0)
    hlen = (off >> 4) * 4
    if hlen < HEADER_LEN or hlen > n:
        raise MalformedTcp(f"bad data offset {hlen} for a {n}-byte segment")
    seg = TcpSegment(src, dst, seq, ack, flags, window, bytes(data[hlen:]), urgent=urgent)
    if hlen > HEADER_LEN:
        _parse_options(bytes(data[HEADER_LEN:hlen]), seg)
    return seg


def encode_options(seg: TcpSegment) -> bytes:
    """Option bytes padded to a multiple of 4; SACK blocks are cut to fit 40 bytes."""
    ts = seg.timestamps
    if seg.mss is None and seg.wscale is None and not seg.sack_permitted:
        if not seg.sack_blocks:
            if ts is None:
                return b""
            return _TS_ONLY.pack(1, 1, 8, 10, ts[0], ts[1])
        head = _TS_ONLY.pack(1, 1, 8, 10, ts[0], ts[1]) if ts is not None else b""
        room = (MAX_OPTIONS_LEN - len(head) - 2 - 2) // 8
        blocks = seg.sack_blocks[:room]
        parts = [head, bytes((1, 1, OPT_SACK, 2 + 8 * len(blocks)))]
        parts.extend(_U32X2.pack(left, right) for left, right in blocks)
        return b"".join(parts)
    # SYN layout, as Linux sends it: MSS, SACK-permitted, TS, NOP, WS.
    out = bytearray()
    if seg.mss is not None:
        out += bytes((OPT_MSS, 4)) + _U16.pack(seg.mss)
    if seg.sack_permitted and ts is not None:
        out += bytes((OPT_SACK_OK, 2, OPT_TS, 10)) + _U32X2.pack(*ts)
    else:
        if seg.sack_permitted:
            out += b"\x01\x01" + bytes((OPT_SACK_OK, 2))
        if ts is not None:
            out += b"\x01\x01\x08\x0a" + _U32X2.pack(*ts)
    if seg.wscale is not None:
        out += bytes((OPT_NOP, OPT_WSCALE, 3, seg.wscale))
    if seg.sack_blocks:
        room = (MAX_OPTIONS_LEN - len(out) - 4) // 8
        blocks = seg.sack_blocks[:room]
        if blocks:
            out += bytes((1, 1, OPT_SACK, 2 + 8 * len(blocks)))
            for left, right in blocks:
                out += _U32X2.pack(left, right)
    if len(out) % 4:
        out += b"\x00" * (4 - len(out) % 4)
    return bytes(out)


def encode_tcp(seg: TcpSegment, pseudo_header: bytes) -> bytes:
    """Serialise a segment with its checksum over `pseudo_header` ‖ segment."""
    opts = encode_options(seg)
    hlen = HEADER_LEN + len(opts)
    header = bytearray(hlen)
    _HDR.pack_into(
        header,
        0,
        seg.src_port,
        seg.dst_port,
        seg.seq & 0xFFFFFFFF,
        seg.ack & 0xFFFFFFFF,
        (hlen // 4) << 4,
        seg.flags & 0xFF,
        seg.window,
        0,
        seg.urgent,
    )
    header[HEADER_LEN:] = opts
    _U16.pack_into(header, 16, internet_checksum(pseudo_header, header, seg.payload))
    return bytes(header) + seg.payload
