"""dig 9.18's text and +yaml layouts for one reply, byte for byte where scripts read them.

Pure functions of a `DnsResult` and the lookup's display switches. The column
rule is BIND's (masterdump.c `indent`): owner, TTL, class, type and data start
at fixed columns (24/32/40/48, tighter without TTL or class), reached with tabs
of width 8, or one space when a field already runs past its column. Section
spacing follows dig.c `printmessage`: with comments, a blank line after the
header block and after each non-empty section; without, bare records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dnslib import CLASS, OPCODE, QTYPE, RR, DNSRecord

from smolmix_cli.apps.dns import DnsResult, type_name
from smolmix_cli.apps.dns_format import rdata_text

TAB = 8
_FLAG_ORDER = ("qr", "aa", "tc", "rd", "ra", "ad", "cd")
PADDING_OPTION = 12


@dataclass(frozen=True)
class Display:
    """What of a reply to print (dig's per-lookup +[no]question ... +[no]class)."""

    question: bool = True
    answer: bool = True
    authority: bool = True
    additional: bool = True
    comments: bool = True
    stats: bool = True
    ttlid: bool = True
    show_class: bool = True


def greeting(args: list[str], *, servers_given: int, first: bool = True) -> str:
    """dig's `; <<>> DiG ... <<>> ARGS` banner (ours names smolmix instead of DiG's version)."""
    text = ("\n" if first else "") + "; <<>> smolmix resolve <<>>"
    text += "".join(f" {arg}" for arg in args) + "\n"
    if first and servers_given:
        text += f"; ({servers_given} server{'s' if servers_given > 1 else ''} found)\n"
    if first:
        text += ";; global options: +cmd\n"
    return text


def _indent(current: int, to: int) -> tuple[str, int]:
    to = max(to, current + 1)
    tabs = to // TAB - current // TAB
    spaces = to % TAB if tabs > 0 else to - current
    return "\t" * max(tabs, 0) + " " * spaces, to


def _columns(d: Display) -> tuple[int, int, int, int]:
    """(ttl, class, type, rdata) columns as dig creates its style."""
    if d.ttlid and d.show_class:
        return 24, 32, 40, 48
    if d.ttlid or d.show_class:
        return 24, 24, 32, 40
    return 24, 24, 24, 32


def _layout(fields: list[tuple[str, int | None]]) -> str:
    out = ""
    for text, column in fields:
        if column is not None:
            pad, _ = _indent(len(out.expandtabs(TAB)), column)
            out += pad
        out += text
    return out


def _class_name(rclass: int) -> str:
    return str(CLASS.forward.get(rclass, f"CLASS{rclass}"))


def rr_line(rr: RR, d: Display) -> str:
    ttl_col, class_col, type_col, rdata_col = _columns(d)
    fields: list[tuple[str, int | None]] = [(str(rr.rname), None)]
    if d.ttlid:
        fields.append((str(rr.ttl), ttl_col))
    if d.show_class:
        fields.append((_class_name(rr.rclass), class_col))
    fields.append((type_name(rr.rtype), type_col))
    fields.append((rdata_text(rr), rdata_col))
    return _layout(fields)


def _question_line(record: DNSRecord, index: int, d: Display) -> str:
    """`;NAME CLASS TYPE`: BIND counts columns after the `;` and always shows the class."""
    q = record.questions[index]
    _, class_col, type_col, _ = _columns(d)
    fields: list[tuple[str, int | None]] = [(str(q.qname), None)]
    fields.append((_class_name(q.qclass), class_col))
    fields.append((type_name(q.qtype), type_col))
    return ";" + _layout(fields)


def _opt(record: DNSRecord) -> RR | None:
    return next((rr for rr in record.ar if rr.rtype == QTYPE.OPT), None)


def _opt_lines(opt: RR) -> list[str]:
    do = " do" if (opt.ttl >> 15) & 1 else ""
    lines = [f"; EDNS: version: {(opt.ttl >> 16) & 0xFF}, flags:{do}; udp: {opt.rclass}"]
    for option in opt.rdata or []:
        if option.code == PADDING_OPTION:
            lines.append(f"; PAD: ({len(option.data)} bytes)")
        else:
            lines.append(f"; OPT={option.code}: {bytes(option.data).hex().upper()}")
    return lines


def _flags(record: DNSRecord) -> str:
    return " ".join(flag for flag in _FLAG_ORDER if getattr(record.header, flag))


def _sections(record: DNSRecord) -> list[tuple[str, list[RR]]]:
    return [
        ("ANSWER", list(record.rr)),
        ("AUTHORITY", list(record.auth)),
        ("ADDITIONAL", [rr for rr in record.ar if rr.rtype != QTYPE.OPT]),
    ]


def _header_lines(r: DNSRecord, rcode: str) -> list[str]:
    h = r.header
    lines = [
        f";; ->>HEADER<<- opcode: {OPCODE.forward.get(h.opcode, h.opcode)}, "
        f"status: {rcode}, id: {h.id}",
        f";; flags: {_flags(r)}; QUERY: {len(r.questions)}, ANSWER: {len(r.rr)}, "
        f"AUTHORITY: {len(r.auth)}, ADDITIONAL: {len(r.ar)}",
    ]
    if h.rd and not h.ra:
        lines.append(";; WARNING: recursion requested but not available")
    return lines


def when_text(stamp: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(stamp))


def stats_text(result: DnsResult, *, when: float | None = None) -> str:
    stamp = time.time() if when is None else when
    server = result.server
    return (
        f";; Query time: {round(result.elapsed * 1000)} msec\n"
        f";; SERVER: {server}#{result.port}({server}) ({result.transport})\n"
        f";; WHEN: {when_text(stamp)}\n"
        f";; MSG SIZE  rcvd: {len(result.wire)}\n\n"
    )


def message_text(result: DnsResult, d: Display, *, when: float | None = None) -> str:
    """dig's long form for one reply (the greeting is the caller's)."""
    r = result.response
    out: list[str] = []
    if d.comments:
        out += [";; Got answer:", *_header_lines(r, result.rcode), ""]
        opt = _opt(r)
        if opt is not None:
            out += [";; OPT PSEUDOSECTION:", *_opt_lines(opt)]
    if d.question and r.questions:
        if d.comments:
            out.append(";; QUESTION SECTION:")
        out += [_question_line(r, i, d) for i in range(len(r.questions))]
        if d.comments:
            out.append("")
    shown = {"ANSWER": d.answer, "AUTHORITY": d.authority, "ADDITIONAL": d.additional}
    for title, rrs in _sections(r):
        if not shown[title] or not rrs:
            continue
        if d.comments:
            out.append(f";; {title} SECTION:")
        out += [rr_line(rr, d) for rr in rrs]
        if d.comments:
            out.append("")
    text = "".join(line + "\n" for line in out)
    if d.stats:
        text += stats_text(result, when=when)
    return text


def _hex_dump(data: bytes) -> str:
    """BIND's YAML rendering of an EDNS option: hex bytes, then their text with dots."""
    text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)
    return " ".join(f"{b:02x}" for b in data) + f' ("{text}")'


def _yaml_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _iso_ms(stamp: float) -> str:
    seconds, millis = divmod(round(stamp * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def yaml_text(result: DnsResult, d: Display, *, received: float | None = None) -> str:
    """dig +yaml for one reply (dnstap-like MESSAGE document)."""
    r = result.response
    h = r.header
    recursive = h.rd and h.ra
    family = "INET6" if ":" in result.server else "INET"
    protocol = "UDP" if result.transport == "UDP" else "TCP"
    done = time.time() if received is None else received
    lines = [
        "- type: MESSAGE",
        "  message:",
        f"    type: {'RECURSIVE_RESPONSE' if recursive else 'AUTH_RESPONSE'}",
        f"    query_time: !!timestamp {_iso_ms(result.sent_at or done)}",
        f"    response_time: !!timestamp {_iso_ms(done)}",
        f"    message_size: {len(result.wire)}b",
        f"    socket_family: {family}",
        f"    socket_protocol: {protocol}",
        f'    response_address: "{result.server}"',
        f"    response_port: {result.port}",
        f'    query_address: "{"::" if family == "INET6" else "0.0.0.0"}"',
        "    query_port: 0",
        "    response_message_data:",
        f"      opcode: {OPCODE.forward.get(h.opcode, h.opcode)}",
        f"      status: {result.rcode}",
        f"      id: {h.id}",
        f"      flags: {_flags(r)}",
        f"      QUESTION: {len(r.questions)}",
        f"      ANSWER: {len(r.rr)}",
        f"      AUTHORITY: {len(r.auth)}",
        f"      ADDITIONAL: {len(r.ar)}",
    ]
    opt = _opt(r)
    if d.comments and opt is not None:
        do = " do" if (opt.ttl >> 15) & 1 else ""
        lines += [
            "      OPT_PSEUDOSECTION:",
            "        EDNS:",
            f"          version: {(opt.ttl >> 16) & 0xFF}",
            f"          flags:{do}",
            f"          udp: {opt.rclass}",
        ]
        for option in opt.rdata or []:
            if option.code == PADDING_OPTION:
                lines.append(f"          PAD: {_hex_dump(bytes(option.data))}")
    if d.question and r.questions:
        lines.append("      QUESTION_SECTION:")
        for q in r.questions:
            text = f"{q.qname} {_class_name(q.qclass)} {type_name(q.qtype)}"
            lines.append(f"        - {_yaml_quote(text)}")
    shown = {"ANSWER": d.answer, "AUTHORITY": d.authority, "ADDITIONAL": d.additional}
    for title, rrs in _sections(r):
        if not shown[title] or not rrs:
            continue
        lines.append(f"      {title}_SECTION:")
        for rr in rrs:
            text = f"{rr.rname} {rr.ttl} {_class_name(rr.rclass)} {type_name(rr.rtype)} "
            lines.append(f"        - {_yaml_quote(text + rdata_text(rr))}")
    return "".join(line + "\n" for line in lines)
