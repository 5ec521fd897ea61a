"""The demo origin's authoritative DNS server for `demo.smolmix.test` (UDP and TCP).

The zone's addresses are parameters: the exit maps them to the loopback
servers. `big.demo.smolmix.test` has a TXT set larger than any UDP answer we
allow, so clients must retry over TCP when they see TC. Unknown names in the
zone get NXDOMAIN (with the SOA), names outside it REFUSED. Built on dnslib,
which the client uses too; bad queries are dropped (UDP) or closed (TCP).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import logging
from dataclasses import dataclass, field

import anyio
import anyio.abc
from dnslib import CLASS, EDNS0, QTYPE, RCODE, RR, DNSLabel, DNSRecord, EDNSOption

log = logging.getLogger(__name__)

ZONE = "demo.smolmix.test"
DEFAULT_TTL = 300
MAX_UDP_NO_EDNS = 512
MAX_UDP_EDNS = 1232
"""We never answer bigger over UDP (DNS flag day 2020 size), whatever the client offers."""

PADDING_OPTION = 12
SIG_DATES = "20370101000000 20260101000000"
FAKE_SIG = base64.b64encode(bytes(range(64))).decode()
BIG_TXT_STRINGS = 24
BIG_TXT_LEN = 200


def reverse_pointer(address: str) -> str:
    return ipaddress.ip_address(address).reverse_pointer


def _zone_text(ipv4: list[str], ipv6: list[str], ttl: int) -> str:
    z = ZONE
    lines = [
        f"{z}. {ttl} IN SOA ns1.{z}. hostmaster.{z}. 2026112401 3600 600 86400 {ttl}",
        f"{z}. {ttl} IN NS ns1.{z}.",
        f"{z}. {ttl} IN MX 10 mail.{z}.",
        f'{z}. {ttl} IN TXT "v=smolmix-demo" "hello from the demo origin"',
        f'{z}. {ttl} IN CAA 0 issue "smolmix.test"',
        f"www.{z}. {ttl} IN CNAME {z}.",
        f"alias.{z}. {ttl} IN CNAME www.{z}.",
        f"_http._tcp.{z}. {ttl} IN SRV 0 5 80 {z}.",
        f"_https._tcp.{z}. {ttl} IN SRV 0 5 443 {z}.",
    ]
    hints = ""
    if ipv4:
        hints += " ipv4hint=" + ",".join(ipv4)
    lines.append(f"{z}. {ttl} IN HTTPS 1 . alpn=http/1.1{hints}")
    for host in ("", "ns1.", "mail."):
        for a in ipv4:
            lines.append(f"{host}{z}. {ttl} IN A {a}")
        for a in ipv6:
            lines.append(f"{host}{z}. {ttl} IN AAAA {a}")
    for a in ipv4:
        lines.append(f"signed.{z}. {ttl} IN A {a}")
    lines.append(f"signed.{z}. {ttl} IN RRSIG A 13 4 {ttl} {SIG_DATES} 4711 {z}. {FAKE_SIG}")
    for i in range(BIG_TXT_STRINGS):
        text = f"{i:03d}-" + "x" * (BIG_TXT_LEN - 4)
        lines.append(f'big.{z}. {ttl} IN TXT "{text}"')
    return "\n".join(lines) + "\n"


@dataclass
class DemoZone:
    """Records of the demo zone plus PTRs for the addresses it hands out."""

    ipv4: list[str] = field(default_factory=lambda: ["10.0.0.1"])
    ipv6: list[str] = field(default_factory=lambda: ["fd00::1"])
    ttl: int = DEFAULT_TTL

    def __post_init__(self) -> None:
        self.records: list[RR] = list(RR.fromZone(_zone_text(self.ipv4, self.ipv6, self.ttl)))
        for address in [*self.ipv4, *self.ipv6]:
            self.records += RR.fromZone(f"{reverse_pointer(address)}. {self.ttl} IN PTR {ZONE}.\n")
        self._by_name: dict[DNSLabel, list[RR]] = {}
        for rr in self.records:
            self._by_name.setdefault(rr.rname, []).append(rr)
        self._zone = DNSLabel(ZONE)
        self._soa = [rr for rr in self.records if rr.rtype == QTYPE.SOA]
        self._reverse = {DNSLabel(reverse_pointer(a)) for a in [*self.ipv4, *self.ipv6]}
        self.queries = 0

    def answer(self, query: DNSRecord) -> DNSRecord:
        """The full answer to one query (truncation is the transport's business)."""
        self.queries += 1
        reply = query.reply(ra=0, aa=1)
        reply.header.ra = 0
        if query.header.opcode != 0 or len(query.questions) != 1:
            reply.header.rcode = RCODE.NOTIMP if query.header.opcode != 0 else RCODE.FORMERR
            reply.header.aa = 0
            return reply
        question = query.q
        qname, qtype = question.qname, question.qtype
        if question.qclass != CLASS.IN or not (
            qname.matchSuffix(self._zone) or qname in self._reverse
        ):
            reply.header.rcode = RCODE.REFUSED
            reply.header.aa = 0
            return reply
        name = qname
        for _ in range(8):
            rrs = self._by_name.get(name)
            if rrs is None:
                if name == qname:
                    reply.header.rcode = RCODE.NXDOMAIN
                    for soa in self._soa:
                        reply.add_auth(soa)
                return reply
            matching = [rr for rr in rrs if rr.rtype == qtype or qtype == QTYPE.ANY]
            if matching:
                if _dnssec_ok(query):
                    matching += [rr for rr in rrs if _covers(rr, qtype)]
                for rr in matching:
                    reply.add_answer(rr)
                return reply
            cname = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
            if not cname:
                for soa in self._soa:
                    reply.add_auth(soa)  # NODATA
                return reply
            reply.add_answer(cname[0])
            name = cname[0].rdata.label
        return reply


def _dnssec_ok(query: DNSRecord) -> bool:
    return any(rr.rtype == QTYPE.OPT and (rr.ttl >> 15) & 1 for rr in query.ar)


def _covers(rr: RR, qtype: int) -> bool:
    return bool(rr.rtype == QTYPE.RRSIG and qtype != QTYPE.ANY and rr.rdata.covered == qtype)


def _udp_limit(query: DNSRecord) -> int:
    for rr in query.ar:
        if rr.rtype == QTYPE.OPT:
            return max(MAX_UDP_NO_EDNS, min(int(rr.rclass), MAX_UDP_EDNS))
    return MAX_UDP_NO_EDNS


RESPONSE_PAD_BLOCK = 468
"""RFC 8467 recommended server policy: pad responses to padded queries to 468-byte blocks."""


def _with_edns(query: DNSRecord, reply: DNSRecord) -> None:
    opt = next((rr for rr in query.ar if rr.rtype == QTYPE.OPT), None)
    if opt is None:
        return
    padded = any(option.code == PADDING_OPTION for option in opt.rdata)
    flags = "do" if _dnssec_ok(query) else ""
    if not padded:
        reply.add_ar(EDNS0(udp_len=MAX_UDP_EDNS, flags=flags))
        return
    probe = DNSRecord(header=reply.header, questions=list(reply.questions))
    probe.rr, probe.auth, probe.ar = list(reply.rr), list(reply.auth), list(reply.ar)
    probe.add_ar(EDNS0(udp_len=MAX_UDP_EDNS, flags=flags, opts=[EDNSOption(PADDING_OPTION, b"")]))
    n = (-len(probe.pack())) % RESPONSE_PAD_BLOCK
    padding = [EDNSOption(PADDING_OPTION, b"\x00" * n)]
    reply.add_ar(EDNS0(udp_len=MAX_UDP_EDNS, flags=flags, opts=padding))


def answer_bytes(zone: DemoZone, data: bytes, *, udp: bool) -> bytes | None:
    """Wire answer for wire query; None drops it (unparseable, or a response)."""
    try:
        query = DNSRecord.parse(data)
    except Exception:  # dnslib raises many types on garbage; a server drops it
        return None
    if query.header.qr:
        return None
    reply = zone.answer(query)
    _with_edns(query, reply)
    wire = bytes(reply.pack())
    if udp and len(wire) > _udp_limit(query):
        truncated = query.reply(ra=0, aa=1)
        truncated.header.ra = 0
        truncated.header.tc = 1
        truncated.header.rcode = reply.header.rcode
        _with_edns(query, truncated)
        wire = bytes(truncated.pack())
    return wire


async def serve_dns_udp(socket: anyio.abc.UDPSocket, zone: DemoZone) -> None:
    """Answer datagrams until the socket closes; no datagram and no peer can end it."""
    while True:
        try:
            data, addr = await socket.receive()
        except (anyio.ClosedResourceError, anyio.EndOfStream):
            return
        except OSError as exc:  # e.g. an ICMP error about an earlier answer's peer
            log.debug("dns udp receive failed: %s", exc)
            continue
        try:
            wire = answer_bytes(zone, data, udp=True)
        except Exception as exc:  # a zone bug costs one query, not the server
            log.debug("dns udp query failed: %s: %s", type(exc).__name__, exc)
            continue
        if wire is not None:
            with contextlib.suppress(OSError):
                await socket.sendto(wire, *addr[:2])


async def serve_dns_tcp_connection(stream: anyio.abc.ByteStream, zone: DemoZone) -> None:
    """RFC 7766: 2-byte length prefix; several queries per connection."""
    buffer = bytearray()
    try:
        with anyio.move_on_after(30):
            while True:
                while len(buffer) < 2 or len(buffer) < 2 + int.from_bytes(buffer[:2], "big"):
                    chunk = await stream.receive(65536)
                    buffer += chunk
                size = int.from_bytes(buffer[:2], "big")
                message = bytes(buffer[2 : 2 + size])
                del buffer[: 2 + size]
                wire = answer_bytes(zone, message, udp=False)
                if wire is None:
                    return
                await stream.send(len(wire).to_bytes(2, "big") + wire)
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    finally:
        await anyio.aclose_forcefully(stream)
