"""DNS client over a Connector: padded queries, UDP with retries, TCP fallback, a resolver.

Every query goes through the connector (the tunnel), never the OS resolver.
Queries carry EDNS(0) with padding to a 128-byte block (RFC 7830, RFC 8467's
recommended client policy), so the exit and the resolver's network cannot
tell names apart by query length. IDs are random; replies must match the ID
and the question or they are ignored (anti-spoofing, as in the seed client).
The message work is sans-io (`build_query`, `check_response`); the anyio
shells below only move bytes.
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.abc
from dnslib import CLASS, EDNS0, QTYPE, RCODE, DNSLabel, DNSQuestion, DNSRecord, EDNSOption

from smolmix_cli.apps.connector import Connector
from smolmix_cli.apps.errors import (
    AppError,
    DnsError,
    DnsLookupFailed,
    DnsMalformed,
    DnsNoReply,
    DnsUsageError,
    OperationTimeout,
)
from smolmix_cli.apps.failure_text import stream_failure

DEFAULT_SERVER = "1.1.1.1"
DEFAULT_PORT = 53
EDNS_UDP_SIZE = 1232
PAD_BLOCK = 128
PADDING_OPTION = 12
DEFAULT_TIMEOUT = 5.0
DEFAULT_TRIES = 3
MAX_CNAME_HOPS = 8
MAX_CACHE_TTL = 300
NEGATIVE_TTL = 60


# -- names and types -----------------------------------------------------------


def parse_qtype(text: str | int) -> int:
    """A record type by name (any dnslib knows), TYPEnnn, or number; DnsUsageError if bad."""
    if isinstance(text, int):
        value = text
    else:
        upper = text.strip().upper()
        if upper in QTYPE.reverse:
            value = int(QTYPE.reverse[upper])
            if value == QTYPE.OPT:
                raise DnsUsageError("OPT is not a query type")
            return value
        digits = upper[4:] if upper.startswith("TYPE") else upper
        if not digits.isdigit():
            raise DnsUsageError(f"unknown record type {text!r}")
        value = int(digits)
    if not 0 < value < 65536 or value == QTYPE.OPT:
        raise DnsUsageError(f"record type {text!r} out of range")
    return value


def type_name(qtype: int) -> str:
    name = QTYPE.forward.get(qtype)
    return str(name) if name is not None else f"TYPE{qtype}"


def normalise_name(name: str) -> str:
    """Absolute ASCII name with trailing dot; IDNA for non-ASCII; DnsUsageError if invalid."""
    name = name.strip()
    if name in ("", "."):
        return "."
    try:
        labels = [
            label.encode("idna").decode("ascii") if not label.isascii() else label
            for label in name.rstrip(".").split(".")
        ]
    except UnicodeError:
        raise DnsUsageError(f"'{name}' is not a legal IDNA name") from None
    for label in labels:
        if not label or len(label) > 63:
            raise DnsUsageError(f"'{name}' is not a legal name (empty or long label)")
        if any(ord(c) < 0x21 or ord(c) > 0x7E for c in label):
            raise DnsUsageError(f"'{name}' contains illegal characters")
    absolute = ".".join(labels) + "."
    if len(absolute) > 254:
        raise DnsUsageError(f"'{name}' is longer than 253 characters")
    return absolute


def reverse_name(address: str) -> str:
    """The PTR name for -x: in-addr.arpa for IPv4, nibbles in ip6.arpa for IPv6."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        raise DnsUsageError(f"'{address}' is not a valid IP address") from None
    return ip.reverse_pointer + "."


# -- messages (sans-io) ------------------------------------------------------------


@dataclass(frozen=True)
class QueryFlags:
    """Header and EDNS bits a dig user can set (+[no]recurse, +adflag, +cdflag, +dnssec, +edns).

    The defaults are the resolver's; `smolmix resolve` starts from dig's (AD set)."""

    recursion: bool = True
    adflag: bool = False
    cdflag: bool = False
    dnssec_ok: bool = False
    edns: bool = True


@dataclass(frozen=True)
class Query:
    id: int
    name: str
    qtype: int
    wire: bytes
    record: DNSRecord


def build_query(
    name: str,
    qtype: int | str = "A",
    *,
    edns: bool = True,
    pad_block: int | None = PAD_BLOCK,
    dnssec_ok: bool = False,
    recursion: bool = True,
    qid: int | None = None,
    adflag: bool = False,
    cdflag: bool = False,
) -> Query:
    """One question, RD set, random ID; with EDNS padded so len(wire) % pad_block == 0."""
    qname = normalise_name(name)
    code = parse_qtype(qtype)
    qid = secrets.randbelow(65536) if qid is None else qid
    record = DNSRecord(q=DNSQuestion(qname, code, CLASS.IN))
    record.header.id = qid
    record.header.rd = 1 if recursion else 0
    record.header.ad = 1 if adflag else 0
    record.header.cd = 1 if cdflag else 0
    if not edns:
        return Query(qid, qname, code, bytes(record.pack()), record)
    flags = "do" if dnssec_ok else ""
    if pad_block:
        unpadded = len(_with_opt(record, flags, []).pack())  # OPT without padding: 11 bytes
        # Padding option = 4 bytes of header + n zero bytes (RFC 7830 section 3).
        n = (-(unpadded + 4)) % pad_block
        padded = _with_opt(record, flags, [EDNSOption(PADDING_OPTION, b"\x00" * n)])
        wire = bytes(padded.pack())
        if len(wire) % pad_block:
            raise DnsError(f"internal: padded query is {len(wire)} bytes")  # pragma: no cover
        return Query(qid, qname, code, wire, padded)
    plain = _with_opt(record, flags, [])
    return Query(qid, qname, code, bytes(plain.pack()), plain)


def make_query(
    name: str,
    qtype: int | str,
    flags: QueryFlags | None,
    *,
    pad_block: int | None = PAD_BLOCK,
    qid: int | None = None,
) -> Query:
    """`build_query` from a QueryFlags (None: the resolver's defaults)."""
    f = flags or QueryFlags()
    return build_query(
        name,
        qtype,
        edns=f.edns,
        pad_block=pad_block,
        dnssec_ok=f.dnssec_ok,
        recursion=f.recursion,
        qid=qid,
        adflag=f.adflag,
        cdflag=f.cdflag,
    )


def _with_opt(record: DNSRecord, flags: str, opts: list[EDNSOption]) -> DNSRecord:
    copy = DNSRecord(header=record.header, questions=list(record.questions))
    copy.add_ar(EDNS0(udp_len=EDNS_UDP_SIZE, flags=flags, opts=opts))
    return copy


def check_response(query: Query, data: bytes) -> DNSRecord:
    """Parse a reply and check it answers `query` (ID, QR, question); DnsMalformed if not."""
    try:
        response = DNSRecord.parse(bytes(data))
    except Exception as exc:  # dnslib raises assorted types on garbage
        raise DnsMalformed(f"unparseable reply: {exc}") from None
    if response.header.id != query.id:
        raise DnsMalformed("reply ID does not match the query")
    if not response.header.qr:
        raise DnsMalformed("reply is not a response (QR=0)")
    if response.header.tc:
        return response  # truncated: the question may be missing; caller goes to TCP
    if len(response.questions) != 1:
        raise DnsMalformed("reply has no matching question")
    q = response.questions[0]
    if q.qtype != query.qtype or q.qclass != CLASS.IN or str(q.qname).lower() != query.name.lower():
        raise DnsMalformed("reply question does not match the query")
    return response


# -- transport (anyio shells) -------------------------------------------------------


@dataclass
class DnsResult:
    query: Query
    response: DNSRecord
    wire: bytes
    server: str
    port: int
    transport: str
    """"UDP" or "TCP"."""
    elapsed: float
    tries: int
    truncated_fallback: bool = False
    sent_at: float = 0.0
    """Wall-clock time the (last) query left, for dig's WHEN and +yaml's query_time."""

    @property
    def rcode(self) -> str:
        return str(RCODE.forward.get(self.response.header.rcode, self.response.header.rcode))


async def query(
    connector: Connector,
    name: str,
    qtype: int | str = "A",
    *,
    server: str = DEFAULT_SERVER,
    port: int = DEFAULT_PORT,
    tcp: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
    edns: bool = True,
    pad_block: int | None = PAD_BLOCK,
    flags: QueryFlags | None = None,
) -> DnsResult:
    """Send one question: UDP with retries (fresh ID each try), TCP on TC or when forced.

    Raises DnsUsageError (1) for bad input, DnsNoReply (9) when nothing usable came back.
    """
    q = make_query(name, qtype, flags, pad_block=pad_block)
    start = time.monotonic()
    sent_at = time.time()
    if tcp:
        wire, response = await _tcp_try(connector, server, port, q, timeout)
        return DnsResult(
            q, response, wire, server, port, "TCP", time.monotonic() - start, 1, sent_at=sent_at
        )
    last: AppError | None = None
    for attempt in range(1, max(1, tries) + 1):
        if attempt > 1:
            q = make_query(name, qtype, flags, pad_block=pad_block)
            sent_at = time.time()
        try:
            data = await connector.udp_exchange(server, port, q.wire, timeout)
            response = check_response(q, data)
        except (OperationTimeout, TimeoutError, DnsMalformed, OSError) as exc:
            last = exc if isinstance(exc, AppError) else OperationTimeout(str(exc))
            continue
        except AppError as exc:
            raise DnsNoReply(f"communications error to {server}#{port}: {exc}") from None
        except Exception as exc:  # the tunnel's own error types: count as a failed try
            last = DnsNoReply(f"{server}#{port}: {stream_failure(exc)}")
            continue
        if response.header.tc:
            wire, response = await _tcp_try(connector, server, port, q, timeout)
            elapsed = time.monotonic() - start
            return DnsResult(
                q, response, wire, server, port, "TCP", elapsed, attempt, True, sent_at
            )
        elapsed = time.monotonic() - start
        return DnsResult(
            q, response, bytes(data), server, port, "UDP", elapsed, attempt, sent_at=sent_at
        )
    raise DnsNoReply(f"no servers could be reached ({server}#{port}: {last})")


async def _tcp_try(
    connector: Connector, server: str, port: int, q: Query, timeout: float
) -> tuple[bytes, DNSRecord]:
    try:
        with anyio.fail_after(timeout):
            wire = await tcp_exchange(connector, server, port, q.wire)
    except TimeoutError:
        raise DnsNoReply(f"TCP query to {server}#{port} timed out") from None
    except AppError as exc:
        if isinstance(exc, DnsError):
            raise
        raise DnsNoReply(f"TCP connection to {server}#{port} failed: {exc}") from None
    response = check_response(q, wire)
    if response.header.tc:
        raise DnsMalformed("truncated reply over TCP")
    return wire, response


async def tcp_exchange(connector: Connector, server: str, port: int, wire: bytes) -> bytes:
    """One query over TCP with RFC 1035 2-byte length framing."""
    try:
        stream = await connector.open_tcp(server, port)
    except AppError:
        raise
    except Exception as exc:
        raise DnsNoReply(
            f"TCP connection to {server}#{port} failed: {stream_failure(exc)}"
        ) from None
    return await framed_exchange(stream, wire, f"{server}#{port}")


async def framed_exchange(stream: anyio.abc.ByteStream, wire: bytes, label: str) -> bytes:
    """Send one length-prefixed query on `stream` (TCP or TLS), read one reply, close."""
    if len(wire) > 65535:
        raise DnsUsageError("query too large for TCP framing")
    try:
        await stream.send(len(wire).to_bytes(2, "big") + wire)
        buffer = bytearray()
        while len(buffer) < 2 or len(buffer) < 2 + int.from_bytes(buffer[:2], "big"):
            buffer += await stream.receive(65536)
        size = int.from_bytes(buffer[:2], "big")
        return bytes(buffer[2 : 2 + size])
    except AppError:
        raise
    except Exception:  # EndOfStream, broken stream, OS or tunnel errors
        raise DnsNoReply(f"connection to {label} closed before a reply") from None
    finally:
        await anyio.aclose_forcefully(stream)


# -- resolver for the tunnel --------------------------------------------------------


class Resolver:
    """Names to addresses over a Connector, with a TTL cache (capped at 5 min).

    Concurrent lookups of one name share one query. IP literals return at once.
    Failures raise DnsLookupFailed (curl's 6).
    """

    def __init__(
        self,
        connector: Connector,
        *,
        server: str = DEFAULT_SERVER,
        port: int = DEFAULT_PORT,
        timeout: float = DEFAULT_TIMEOUT,
        tries: int = 2,
        max_ttl: int = MAX_CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connector = connector
        self.server = server
        self.port = port
        self.timeout = timeout
        self.tries = tries
        self.max_ttl = max_ttl
        self._clock = clock
        self._cache: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._locks: dict[tuple[str, int], anyio.Lock] = {}
        self.queries_sent = 0

    async def resolve_addresses(self, name: str, *, ipv6: bool = True) -> list[str]:
        """A addresses first, then AAAA (if `ipv6`); raises DnsLookupFailed if none."""
        try:
            return [str(ipaddress.ip_address(name.strip("[]")))]
        except ValueError:
            pass
        try:
            qname = normalise_name(name)
        except DnsUsageError as exc:
            raise DnsLookupFailed(f"Could not resolve host: {name} ({exc})") from None
        addresses: list[str] = []
        errors: list[str] = []
        for qtype in (QTYPE.A, QTYPE.AAAA) if ipv6 else (QTYPE.A,):
            try:
                addresses += await self._lookup(qname, qtype)
            except DnsError as exc:
                errors.append(str(exc))
        if not addresses:
            detail = "; ".join(errors) if errors else "no address records"
            raise DnsLookupFailed(f"Could not resolve host: {name.rstrip('.')} ({detail})")
        return addresses

    async def _lookup(self, qname: str, qtype: int) -> list[str]:
        key = (qname.lower(), qtype)
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > self._clock():
                return list(cached[1])
            addresses, ttl = await self._query_following_cnames(qname, qtype)
            self._cache[key] = (self._clock() + ttl, addresses)
            return list(addresses)

    async def _query_following_cnames(self, qname: str, qtype: int) -> tuple[list[str], int]:
        name = qname
        for _ in range(MAX_CNAME_HOPS):
            self.queries_sent += 1
            result = await query(
                self._connector,
                name,
                qtype,
                server=self.server,
                port=self.port,
                timeout=self.timeout,
                tries=self.tries,
            )
            header = result.response.header
            if header.rcode == RCODE.NXDOMAIN:
                return [], NEGATIVE_TTL
            if header.rcode != RCODE.NOERROR:
                raise DnsNoReply(f"server answered {result.rcode}")
            addresses, ttl, target = _addresses_in(result.response, name, qtype)
            if addresses or target is None:
                return addresses, min(ttl, self.max_ttl) if addresses else NEGATIVE_TTL
            name = target
        raise DnsNoReply(f"CNAME chain longer than {MAX_CNAME_HOPS} for {qname}")


def _addresses_in(response: DNSRecord, qname: str, qtype: int) -> tuple[list[str], int, str | None]:
    """Follow CNAMEs inside one answer; return addresses, smallest TTL, dangling target."""
    current = DNSLabel(qname)
    ttl = MAX_CACHE_TTL
    for _ in range(MAX_CNAME_HOPS):
        found = [rr for rr in response.rr if rr.rname == current and rr.rtype == qtype]
        if found:
            ttl = min([ttl, *(rr.ttl for rr in found)])
            return [str(rr.rdata) for rr in found], ttl, None
        cname = [rr for rr in response.rr if rr.rname == current and rr.rtype == QTYPE.CNAME]
        if not cname:
            return [], ttl, None if current == DNSLabel(qname) else str(current)
        ttl = min(ttl, cname[0].ttl)
        current = cname[0].rdata.label
    return [], ttl, str(current)
