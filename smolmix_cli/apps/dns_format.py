"""Presenting DNS record data as dig does, +short, and RFC 8427 JSON.

Pure functions of a `DnsResult`, so the CLI decides where output goes and
tests can check it without a network (the long dig layouts: dig_output.py).
Record data uses dnslib's zone-file presentation, which is what dig prints
too, except for character-strings (TXT: dnslib leaves `"` and `\\` bare, dig
escapes them) and SVCB/HTTPS parameters (BIND quotes alpn), and scripts parse dig.
"""

from __future__ import annotations

import base64
import ipaddress
import time
from typing import Any

from dnslib import CLASS, DNSKEY, HTTPS, QTYPE, RCODE, RR, RRSIG, TXT, DNSBuffer

from smolmix_cli.apps.dns import DnsResult, type_name

_RDATA_NAMED = {"A", "AAAA", "CNAME", "DNAME", "NS", "PTR"}
"""Types whose presentation RFC 8427 names as rdataTYPE; others get it as our extension."""


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


_SVC_KEYS = {
    0: "mandatory",
    1: "alpn",
    2: "no-default-alpn",
    3: "port",
    4: "ipv4hint",
    5: "ech",
    6: "ipv6hint",
    7: "dohpath",
}


def _svc_value(key: int, value: bytes) -> str:
    """One SvcParam value as BIND prints it (RFC 9460 presentation; alpn always quoted)."""
    if key == 0:
        names = [int.from_bytes(value[i : i + 2], "big") for i in range(0, len(value), 2)]
        return ",".join(_SVC_KEYS.get(k, f"key{k}") for k in names)
    if key == 1:
        ids, i = [], 0
        while i < len(value):
            n = value[i]
            ids.append(_character_string(value[i + 1 : i + 1 + n])[1:-1].replace(",", "\\,"))
            i += 1 + n
        return '"' + ",".join(ids) + '"'
    if key == 3:
        return str(int.from_bytes(value, "big"))
    if key == 4:
        return ",".join(
            str(ipaddress.IPv4Address(value[i : i + 4])) for i in range(0, len(value), 4)
        )
    if key == 6:
        return ",".join(
            str(ipaddress.IPv6Address(value[i : i + 16])) for i in range(0, len(value), 16)
        )
    if key == 5:
        return base64.b64encode(value).decode()
    return _character_string(value)


def _svcb_text(rdata: Any) -> str:
    labels = [bytes(label).decode("ascii", "replace") for label in rdata.target]
    parts = [str(rdata.priority), ".".join(labels) + "." if labels else "."]
    for key, value in rdata.params:
        name = _SVC_KEYS.get(key, f"key{key}")
        parts.append(name if key == 2 and not value else f"{name}={_svc_value(key, bytes(value))}")
    return " ".join(parts)


def rdata_text(rr: RR) -> str:
    """The record data in dig's presentation."""
    if isinstance(rr.rdata, TXT):
        return " ".join(_character_string(bytes(s)) for s in rr.rdata.data)
    if isinstance(rr.rdata, HTTPS):  # SVCB shares the class in dnslib
        return _svcb_text(rr.rdata)
    if isinstance(rr.rdata, RRSIG | DNSKEY):
        return _split_base64(str(rr.rdata.toZone()))
    return str(rr.rdata.toZone())


BASE64_CHUNK = 56


def _split_base64(text: str) -> str:
    """BIND prints a signature's or key's base64 in 56-character words (one line, spaces)."""
    head, _, blob = text.rpartition(" ")
    words = [blob[i : i + BASE64_CHUNK] for i in range(0, len(blob), BASE64_CHUNK)]
    return f"{head} {' '.join(words)}" if head else " ".join(words)


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
