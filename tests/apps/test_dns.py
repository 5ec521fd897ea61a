"""DNS client against the demo origin's authoritative server over loopback UDP/TCP."""

from __future__ import annotations

import ipaddress
import json
import re

import anyio
import pytest
from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.apps import dns
from smolmix_cli.apps.dig_output import Display, message_text
from smolmix_cli.apps.dns_format import rfc8427, short_text
from smolmix_cli.apps.errors import (
    DnsLookupFailed,
    DnsMalformed,
    DnsNoReply,
    DnsUsageError,
)
from smolmix_cli.errors_map import classify
from smolmix_cli.testnet.origin.dns import BIG_TXT_STRINGS
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.os_connector import OsConnector

pytestmark = pytest.mark.anyio
Z = "demo.smolmix.test"


async def ask(
    connector: OsConnector, origin: DemoOrigin, name: str, qtype: str, **kw: object
) -> dns.DnsResult:
    return await dns.query(
        connector, name, qtype, server="127.0.0.1", port=origin.dns_port, timeout=2, **kw
    )


@pytest.mark.parametrize(
    ("name", "qtype", "expected"),
    [
        (Z, "A", ["10.0.0.1"]),
        (Z, "AAAA", ["fd00::1"]),
        (Z, "MX", [f"10 mail.{Z}."]),
        (Z, "TXT", ['"v=smolmix-demo" "hello from the demo origin"']),
        (Z, "NS", [f"ns1.{Z}."]),
        (Z, "CAA", ['0 issue "smolmix.test"']),
        (f"_http._tcp.{Z}", "SRV", [f"0 5 80 {Z}."]),
        (f"www.{Z}", "CNAME", [f"{Z}."]),
        (f"www.{Z}", "A", [f"{Z}.", "10.0.0.1"]),
        (f"alias.{Z}", "A", [f"www.{Z}.", f"{Z}.", "10.0.0.1"]),
        ("1.0.0.10.in-addr.arpa", "PTR", [f"{Z}."]),
        (Z, "HTTPS", ['1 . alpn="http/1.1" ipv4hint=10.0.0.1']),  # BIND quotes alpn
    ],
)
async def test_every_demo_record_type(
    origin: DemoOrigin, connector: OsConnector, name: str, qtype: str, expected: list[str]
) -> None:
    result = await ask(connector, origin, name, qtype)
    assert result.rcode == "NOERROR"
    assert result.transport == "UDP"
    assert short_text(result).splitlines() == expected
    assert result.response.header.aa == 1


async def test_soa(origin: DemoOrigin, connector: OsConnector) -> None:
    result = await ask(connector, origin, Z, "SOA")
    (rr,) = result.response.rr
    assert rr.rtype == QTYPE.SOA
    assert str(rr.rdata.mname) == f"ns1.{Z}."


async def test_nxdomain_refused_and_nodata(origin: DemoOrigin, connector: OsConnector) -> None:
    nx = await ask(connector, origin, f"missing.{Z}", "A")
    assert nx.rcode == "NXDOMAIN" and not nx.response.rr
    assert nx.response.auth[0].rtype == QTYPE.SOA
    refused = await ask(connector, origin, "example.com", "A")
    assert refused.rcode == "REFUSED"
    nodata = await ask(connector, origin, f"mail.{Z}", "MX")
    assert nodata.rcode == "NOERROR" and not nodata.response.rr


async def test_truncation_falls_back_to_tcp(origin: DemoOrigin, connector: OsConnector) -> None:
    result = await ask(connector, origin, f"big.{Z}", "TXT")
    assert result.truncated_fallback and result.transport == "TCP"
    assert len(result.response.rr) == BIG_TXT_STRINGS
    assert len(result.wire) > dns.EDNS_UDP_SIZE
    assert connector.udp_exchanges == 1
    # Without EDNS the 512-byte limit truncates even the mid-sized answers.
    forced = await ask(connector, origin, Z, "A", tcp=True)
    assert forced.transport == "TCP" and not forced.truncated_fallback
    assert short_text(forced) == "10.0.0.1\n"


@pytest.mark.parametrize(
    "name", ["a.b", "demo.smolmix.test", "x" * 63 + ".example", "münchen.example"]
)
@pytest.mark.parametrize("qtype", ["A", "TXT", "HTTPS"])
def test_padding_to_128(name: str, qtype: str) -> None:
    q = dns.build_query(name, qtype)
    assert len(q.wire) % 128 == 0
    parsed = DNSRecord.parse(q.wire)
    (opt,) = parsed.ar
    assert opt.rtype == QTYPE.OPT and opt.rclass == dns.EDNS_UDP_SIZE
    assert [o.code for o in opt.rdata] == [12]
    assert set(opt.rdata[0].data) <= {0}
    assert parsed.header.rd == 1


@given(st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,6}", fullmatch=True))
def test_padding_property(name: str) -> None:
    q = dns.build_query(name, "AAAA")
    assert len(q.wire) % 128 == 0
    assert len(dns.build_query(name, "A", pad_block=256).wire) % 256 == 0


def test_random_ids() -> None:
    ids = {dns.build_query("a.b").id for _ in range(50)}
    assert len(ids) > 40


async def test_server_pads_replies_to_padded_queries(
    origin: DemoOrigin, connector: OsConnector
) -> None:
    for name, qtype in ((Z, "A"), (f"www.{Z}", "A"), (Z, "TXT"), (f"missing.{Z}", "A")):
        padded = await ask(connector, origin, name, qtype)
        assert len(padded.wire) % 468 == 0
        plain = await ask(connector, origin, name, qtype, pad_block=None)
        assert len(plain.wire) < len(padded.wire)
        assert short_text(plain) == short_text(padded)


async def test_padded_query_reaches_server_padded(origin: DemoOrigin) -> None:
    seen: list[int] = []

    class Spy(OsConnector):
        async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
            seen.append(len(payload))
            return await super().udp_exchange(host, port, payload, timeout)

    await dns.query(Spy(), Z, "A", server="127.0.0.1", port=origin.dns_port)
    assert seen and all(n % 128 == 0 for n in seen)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", "1.0.0.10.in-addr.arpa."),
        ("fd00::1", "1.0.0.0." * 1 + "0." * 27 + "0.d.f.ip6.arpa."),
    ],
)
def test_reverse_names(address: str, expected: str) -> None:
    name = dns.reverse_name(address)
    assert name == ipaddress.ip_address(address).reverse_pointer + "."
    if address == "10.0.0.1":
        assert name == expected
    else:
        assert name.endswith("d.f.ip6.arpa.") and name.count(".") == 34


async def test_reverse_lookup_v6(origin: DemoOrigin, connector: OsConnector) -> None:
    result = await ask(connector, origin, dns.reverse_name("fd00::1"), "PTR")
    assert short_text(result) == f"{Z}.\n"


@pytest.mark.parametrize(
    "bad",
    ["", "a..b", "x" * 64 + ".com", ("a" * 60 + ".") * 5 + "com", "sp ace.com"],
)
def test_bad_names(bad: str) -> None:
    if bad == "":
        assert dns.normalise_name(bad) == "."
        return
    with pytest.raises(DnsUsageError) as info:
        dns.build_query(bad, "A")
    assert classify(info.value).code == 1


@pytest.mark.parametrize("bad", ["NOPE", "TYPE0", "70000", "OPT", "-1"])
def test_bad_types(bad: str) -> None:
    with pytest.raises(DnsUsageError):
        dns.parse_qtype(bad)


@pytest.mark.parametrize(("text", "code"), [("a", 1), ("https", 65), ("TYPE99", 99), ("caa", 257)])
def test_types(text: str, code: int) -> None:
    assert dns.parse_qtype(text) == code


def test_response_validation() -> None:
    q = dns.build_query(Z, "A", qid=1234)
    reply = q.record.reply()
    good = bytes(reply.pack())
    assert dns.check_response(q, good).header.id == 1234
    wrong_id = q.record.reply()
    wrong_id.header.id = 4321
    with pytest.raises(DnsMalformed):
        dns.check_response(q, bytes(wrong_id.pack()))
    other = dns.build_query("other.example", "A", qid=1234).record.reply()
    with pytest.raises(DnsMalformed):
        dns.check_response(q, bytes(other.pack()))
    with pytest.raises(DnsMalformed):
        dns.check_response(q, q.wire)  # a query, not a response
    for garbage in (b"", b"\x04\xd2", b"\xff" * 40, good[:20]):
        with pytest.raises(DnsMalformed):
            dns.check_response(q, garbage)


@given(st.binary(max_size=600))
def test_check_response_never_crashes(data: bytes) -> None:
    q = dns.build_query(Z, "A", qid=7)
    try:
        response = dns.check_response(q, data)
    except DnsMalformed:
        return
    assert response.header.id == 7 and response.header.qr == 1


async def test_no_reply_is_9(connector: OsConnector) -> None:
    sock = await anyio.create_udp_socket(local_host="127.0.0.1", local_port=0)
    port = sock.extra(anyio.abc.SocketAttribute.local_address)[1]
    async with sock:
        with pytest.raises(DnsNoReply) as info:
            await dns.query(connector, Z, "A", server="127.0.0.1", port=port, timeout=0.1, tries=2)
    assert classify(info.value).code == 9
    assert connector.udp_exchanges == 2


async def test_spoofed_reply_ignored_then_retry(connector: OsConnector) -> None:
    """A server answering with a wrong ID first: the client ignores it and retries."""
    sock = await anyio.create_udp_socket(local_host="127.0.0.1", local_port=0)
    port = sock.extra(anyio.abc.SocketAttribute.local_address)[1]
    answers = 0

    async def serve() -> None:
        nonlocal answers
        async for data, addr in sock:
            query = DNSRecord.parse(data)
            reply = query.reply()
            if answers == 0:
                reply.header.id = (query.header.id + 1) % 65536
            answers += 1
            await sock.sendto(bytes(reply.pack()), addr[0], addr[1])

    async with sock, anyio.create_task_group() as tg:
        tg.start_soon(serve)
        result = await dns.query(connector, Z, "A", server="127.0.0.1", port=port, tries=3)
        tg.cancel_scope.cancel()
    assert result.tries == 2 and answers == 2


async def test_dig_text_layout(origin: DemoOrigin, connector: OsConnector) -> None:
    result = await ask(connector, origin, f"www.{Z}", "A")
    text = message_text(result, Display(), when=0)
    assert re.search(r";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: \d+", text)
    assert ";; flags: qr aa rd; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1" in text
    assert f";www.{Z}.\t\tIN\tA" in text
    assert f"www.{Z}.\t300\tIN\tCNAME\t{Z}." in text
    assert f"{Z}.\t300\tIN\tA\t10.0.0.1" in text
    assert "; EDNS: version: 0, flags:; udp: 1232" in text
    assert f";; SERVER: 127.0.0.1#{origin.dns_port}(127.0.0.1) (UDP)" in text
    assert ";; WHEN: Thu Jan 01 00:00:00 UTC 1970" in text
    assert f";; MSG SIZE  rcvd: {len(result.wire)}" in text
    sections = re.findall(r";; (\w+) SECTION:", text)
    assert sections == ["QUESTION", "ANSWER"]
    nx = message_text(await ask(connector, origin, f"nope.{Z}", "A"), Display())
    assert "status: NXDOMAIN" in nx and ";; AUTHORITY SECTION:" in nx


async def test_rfc8427_shape(origin: DemoOrigin, connector: OsConnector) -> None:
    result = await ask(connector, origin, Z, "MX")
    obj = json.loads(json.dumps(rfc8427(result, when=1_700_000_000)))
    for key in ("ID", "QR", "Opcode", "AA", "TC", "RD", "RA", "AD", "CD", "RCODE"):
        assert isinstance(obj[key], int)
    assert obj["QR"] == 1 and obj["RCODE"] == RCODE.NOERROR and obj["ID"] == result.query.id
    assert (obj["QDCOUNT"], obj["ANCOUNT"], obj["NSCOUNT"], obj["ARCOUNT"]) == (1, 1, 0, 1)
    assert obj["questionRRs"] == [
        {"NAME": f"{Z}.", "TYPE": 15, "TYPEname": "MX", "CLASS": 1, "CLASSname": "IN"}
    ]
    (mx,) = obj["answerRRs"]
    assert mx["NAME"] == f"{Z}." and mx["TYPE"] == 15 and mx["TTL"] == 300
    rdata = bytes.fromhex(mx["RDATAHEX"])
    assert mx["RDLENGTH"] == len(rdata) and rdata[:2] == b"\x00\x0a"
    assert mx["rdataMX"] == f"10 mail.{Z}."
    assert bytes.fromhex(obj["messageOctetsHEX"]) == result.wire
    assert obj["dateString"] == "2023-11-14T22:13:20Z"
    a = rfc8427(await ask(connector, origin, Z, "A"))
    assert a["answerRRs"][0]["rdataA"] == "10.0.0.1"
    assert a["answerRRs"][0]["RDATAHEX"] == "0A000001"


async def test_resolver_cache_and_cname(origin: DemoOrigin, connector: OsConnector) -> None:
    now = [1000.0]
    resolver = dns.Resolver(
        connector, server="127.0.0.1", port=origin.dns_port, clock=lambda: now[0]
    )
    assert await resolver.resolve_addresses(f"alias.{Z}") == ["10.0.0.1", "fd00::1"]
    sent = resolver.queries_sent
    assert sent == 2
    assert await resolver.resolve_addresses(f"alias.{Z}") == ["10.0.0.1", "fd00::1"]
    assert resolver.queries_sent == sent  # cache hit
    now[0] += 301
    await resolver.resolve_addresses(f"ALIAS.{Z}.")
    assert resolver.queries_sent == sent + 2  # expired after the TTL
    assert await resolver.resolve_addresses("192.0.2.7") == ["192.0.2.7"]
    assert await resolver.resolve_addresses("[2001:db8::1]") == ["2001:db8::1"]
    with pytest.raises(DnsLookupFailed) as info:
        await resolver.resolve_addresses(f"missing.{Z}")
    assert classify(info.value).code == 6
    with pytest.raises(DnsLookupFailed):
        await resolver.resolve_addresses("example.com")  # REFUSED
    with pytest.raises(DnsLookupFailed):
        await resolver.resolve_addresses("bad..name")


async def test_resolver_single_flight(origin: DemoOrigin, connector: OsConnector) -> None:
    resolver = dns.Resolver(connector, server="127.0.0.1", port=origin.dns_port)
    results: list[list[str]] = []

    async def one() -> None:
        results.append(await resolver.resolve_addresses(Z, ipv6=False))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
    assert results == [["10.0.0.1"]] * 5
    assert resolver.queries_sent == 1


def test_txt_strings_are_escaped_as_dig_prints_them() -> None:
    """dig 9.18's own output for these strings (checked against a local server): `"` and
    `\\` escaped, bytes outside printable ASCII as \\DDD, an empty string as ""."""
    strings = [b'say "hi"', b"back\\slash", b"semi;colon @at", bytes([7, 200, 127]), b"sp ace", b""]
    query = dns.build_query("x.test", "TXT", edns=False)
    response = query.record.reply()
    response.add_answer(RR("x.test", QTYPE.TXT, rdata=TXT(strings), ttl=60))
    wire = bytes(response.pack())
    result = dns.DnsResult(query, DNSRecord.parse(wire), wire, "127.0.0.1", 53, "UDP", 0.01, 1)
    dig = r'"say \"hi\"" "back\\slash" "semi;colon @at" "\007\200\127" "sp ace" ""'
    assert short_text(result) == dig + "\n"
    assert f"x.test.\t\t\t60\tIN\tTXT\t{dig}\n" in message_text(result, Display(), when=0)
    assert json.dumps(rfc8427(result, when=0)).count(json.dumps(dig)) == 1
