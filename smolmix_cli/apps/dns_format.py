"""Presenting DNS answers: dig's text layout, +short, and RFC 8427 JSON.

Pure functions of a `DnsResult`, so the CLI decides where output goes and
tests can check it without a network. Record data uses dnslib's zone-file
presentation, which is what dig prints too, except for character-strings
(TXT): dnslib leaves `"` and `\\` bare, dig escapes them, and scripts parse dig.
"""

from __future__ import annotations

import time
from typing import Any

from dnslib import CLASS, OPCODE, QTYPE, RCODE, RR, TXT, DNSBuffer, DNSRecord

from smolmix_cli.apps.dns import DnsResult, type_name

_FLAG_ORDER = ("qr", "aa", "tc", "rd", "ra", "ad", "cd")
_RDATA_NAMED = {"A", "AAAA", "CNAME", "DNAME", "NS", "PTR"}
"""Types whose presentation RFC 8427 names as rdataTYPE; others get it as our extension."""


def _flags(record: DNSRecord) -> list[str]:
    h = record.header
    return [flag for flag in _FLAG_ORDER if getattr(h, flag)]


def _character_string(data: bytes) -> str:
    """One TXT string as dig prints it: quoted, `"` and `\\` escaped, other bytes
    outside printable ASCII as \\DDD (decimal)."""
    out = []
    for byte in data:
        if byte < 0x20 or byte >= 0x7F:
            out.append(f"\\{byte:03d}")
        elif byte in b'"\\':
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    return '"' + "".join(out) + '"'


def rdata_text(rr: RR) -> str:
    """The record data in dig's presentation."""
    if isinstance(rr.rdata, TXT):
        return " ".join(_character_string(bytes(s)) for s in rr.rdata.data)
    return str(rr.rdata.toZone())


def _rr_line(rr: RR) -> str:
    cls = CLASS.forward.get(rr.rclass, f"CLASS{rr.rclass}")
    return f"{rr.rname}\t{rr.ttl}\t{cls}\t{type_name(rr.rtype)}\t{rdata_text(rr)}"


def _opt(record: DNSRecord) -> RR | None:
    for rr in record.ar:
        if rr.rtype == QTYPE.OPT:
            return rr
    return None


def dig_text(result: DnsResult, *, when: float | None = None) -> str:
    """dig's default output for one answer."""
    r = result.response
    h = r.header
    q = result.query
    lines = [
        f"; <<>> smolmix resolve <<>> {q.name} {type_name(q.qtype)}",
        ";; Got answer:",
        f";; ->>HEADER<<- opcode: {OPCODE.forward.get(h.opcode, h.opcode)}, "
        f"status: {result.rcode}, id: {h.id}",
        f";; flags: {' '.join(_flags(r))}; QUERY: {len(r.questions)}, ANSWER: {len(r.rr)}, "
        f"AUTHORITY: {len(r.auth)}, ADDITIONAL: {len(r.ar)}",
    ]
    opt = _opt(r)
    if opt is not None:
        do = " do" if (opt.ttl >> 15) & 1 else ""
        lines += [
            "",
            ";; OPT PSEUDOSECTION:",
            f"; EDNS: version: {(opt.ttl >> 16) & 0xFF}, flags:{do}; udp: {opt.rclass}",
        ]
    lines += ["", ";; QUESTION SECTION:"]
    for question in r.questions:
        cls = CLASS.forward.get(question.qclass, f"CLASS{question.qclass}")
        lines.append(f";{question.qname}\t\t{cls}\t{type_name(question.qtype)}")
    for title, rrs in (
        ("ANSWER", r.rr),
        ("AUTHORITY", r.auth),
        ("ADDITIONAL", [rr for rr in r.ar if rr.rtype != QTYPE.OPT]),
    ):
        if rrs:
            lines += ["", f";; {title} SECTION:"]
            lines += [_rr_line(rr) for rr in rrs]
    stamp = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(when))
    server = result.server
    lines += [
        "",
        f";; Query time: {round(result.elapsed * 1000)} msec",
        f";; SERVER: {server}#{result.port}({server}) ({result.transport})",
        f";; WHEN: {stamp}",
        f";; MSG SIZE  rcvd: {len(result.wire)}",
        "",
    ]
    return "\n".join(lines)


def short_text(result: DnsResult) -> str:
    """dig +short: the data of each answer record, one per line."""
    return "".join(f"{rdata_text(rr)}\n" for rr in result.response.rr)


def _rdata_wire(rr: RR) -> bytes:
    buf = DNSBuffer()
    if isinstance(rr.rdata, list):  # OPT: a list of EDNS options
        for option in rr.rdata:
            option.pack(buf)
    else:
        rr.rdata.pack(buf)
    return bytes(buf.data)


def _rr_json(rr: RR) -> dict[str, Any]:
    rdata = _rdata_wire(rr)
    name = type_name(rr.rtype)
    out: dict[str, Any] = {
        "NAME": str(rr.rname),
        "TYPE": rr.rtype,
        "TYPEname": name,
        "CLASS": rr.rclass,
        "TTL": rr.ttl,
        "RDLENGTH": len(rdata),
        "RDATAHEX": rdata.hex().upper(),
    }
    if rr.rtype != QTYPE.OPT:
        out["CLASSname"] = CLASS.forward.get(rr.rclass, f"CLASS{rr.rclass}")
        out[f"rdata{name}"] = rdata_text(rr)
    return out


def rfc8427(result: DnsResult, *, when: float | None = None) -> dict[str, Any]:
    """The reply as an RFC 8427 message object (section 2), plus the date members (2.5).

    `rdataTYPE` is given for every type; RFC 8427 defines it for A, AAAA, CNAME,
    DNAME, NS and PTR, and we use the same pattern for the others.
    """
    r = result.response
    h = r.header
    stamp = time.time() if when is None else when
    message: dict[str, Any] = {
        "ID": h.id,
        "QR": int(h.qr),
        "Opcode": h.opcode,
        "AA": int(h.aa),
        "TC": int(h.tc),
        "RD": int(h.rd),
        "RA": int(h.ra),
        "AD": int(h.ad),
        "CD": int(h.cd),
        "RCODE": h.rcode,
        "RCODEname": str(RCODE.forward.get(h.rcode, h.rcode)),
        "QDCOUNT": len(r.questions),
        "ANCOUNT": len(r.rr),
        "NSCOUNT": len(r.auth),
        "ARCOUNT": len(r.ar),
        "questionRRs": [
            {
                "NAME": str(q.qname),
                "TYPE": q.qtype,
                "TYPEname": type_name(q.qtype),
                "CLASS": q.qclass,
                "CLASSname": CLASS.forward.get(q.qclass, f"CLASS{q.qclass}"),
            }
            for q in r.questions
        ],
        "answerRRs": [_rr_json(rr) for rr in r.rr],
        "authorityRRs": [_rr_json(rr) for rr in r.auth],
        "additionalRRs": [_rr_json(rr) for rr in r.ar],
        "messageOctetsHEX": result.wire.hex().upper(),
        "dateSeconds": round(stamp, 3),
        "dateString": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)),
    }
    if r.questions:
        q = r.questions[0]
        message["QNAME"] = str(q.qname)
        message["QTYPE"] = q.qtype
        message["QTYPEname"] = type_name(q.qtype)
        message["QCLASS"] = q.qclass
        message["QCLASSname"] = CLASS.forward.get(q.qclass, f"CLASS{q.qclass}")
    return message
