"""Where a query goes: `@server` forms and the encrypted transports (DoT, DoH).

`parse_server` reads dig/kdig-style server specs: `1.1.1.1`, `host:5353`,
`[2606:4700::1111]:53`, `udp://…`, `tcp://…`, `tls://host[:853]` (RFC 7858)
and `https://host/dns-query` (RFC 8484, POST application/dns-message).
Inside the tunnel the exit sees the resolver's address either way; DoT and
DoH also hide the question from the exit. Queries keep the 128-byte padding.
TLS and the HTTP client load when a DoT or DoH query is made: a plain `smolmix resolve`
needs neither (about 30 ms of its start).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio

from smolmix_cli.apps.connector import Connector
from smolmix_cli.apps.dns import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    PAD_BLOCK,
    DnsResult,
    QueryFlags,
    check_response,
    framed_exchange,
    make_query,
    query,
)
from smolmix_cli.apps.errors import (
    AppError,
    CaFileError,
    DnsMalformed,
    DnsNoReply,
    DnsUsageError,
    TlsError,
)

if TYPE_CHECKING:
    from smolmix_cli.apps.http_client import HttpClient

DOT_PORT = 853
DNS_MESSAGE = "application/dns-message"
_DEFAULT_PORTS = {"udp": DEFAULT_PORT, "tcp": DEFAULT_PORT, "tls": DOT_PORT, "https": 443}


@dataclass(frozen=True)
class DnsServer:
    transport: str
    """"udp", "tcp", "tls" or "https"."""
    host: str
    port: int
    url: str | None = None
    """Full DoH URL for "https"."""


def parse_server(spec: str) -> DnsServer:
    """A server spec as typed after `@`; DnsUsageError (1) if it is not one."""
    text = spec.strip().removeprefix("@")
    if not text:
        raise DnsUsageError("empty server")
    transport = "udp"
    if "://" in text:
        transport, _, rest = text.partition("://")
        transport = transport.lower()
        if transport not in _DEFAULT_PORTS:
            raise DnsUsageError(f"unknown server transport {transport!r}")
        if transport == "https":
            try:
                parts = urlsplit(text)
                port = parts.port or 443
            except ValueError:
                raise DnsUsageError(f"bad DoH URL {spec!r}") from None
            if not parts.hostname:
                raise DnsUsageError(f"bad DoH URL {spec!r}")
            return DnsServer("https", parts.hostname, port, text)
        text = rest.rstrip("/")
    host, port = _host_port(text, _DEFAULT_PORTS[transport])
    return DnsServer(transport, host, port)


def _host_port(text: str, default: int) -> tuple[str, int]:
    try:
        return str(ipaddress.ip_address(text)), default  # bare IPv6 has colons
    except ValueError:
        pass
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise DnsUsageError(f"bad server {text!r}")
    port = default
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise DnsUsageError(f"bad server port {port_text!r}")
        port = int(port_text)
    return host, port


def _keeps_its_own_error(exc: AppError) -> bool:
    """TLS problems with the server (handshake, certificate) are reported as themselves."""
    return isinstance(exc, TlsError) and not isinstance(exc, CaFileError)


async def query_tls(
    connector: Connector,
    name: str,
    qtype: int | str,
    *,
    server: str,
    port: int = DOT_PORT,
    server_name: str | None = None,
    verify: bool = True,
    cafile: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    flags: QueryFlags | None = None,
    pad_block: int | None = PAD_BLOCK,
) -> DnsResult:
    """DNS over TLS (RFC 7858): TCP framing inside TLS with ALPN "dot"."""
    from smolmix_cli.apps import tls

    q = make_query(name, qtype, flags, pad_block=pad_block)
    start = time.monotonic()
    sent_at = time.time()
    context = tls.client_context(verify=verify, cafile=cafile, alpn=("dot",))
    try:
        with anyio.fail_after(timeout):
            stream = await connector.open_tcp(server, port)
            wrapped = await tls.wrap_client(stream, server_name or server, context)
            wire = await framed_exchange(wrapped, q.wire, f"tls://{server}:{port}")
    except TimeoutError:
        raise DnsNoReply(f"DoT query to {server}:{port} timed out") from None
    except DnsUsageError:
        raise
    except AppError as exc:
        if _keeps_its_own_error(exc):
            raise  # TLS problems keep their own numbers and messages
        raise DnsNoReply(f"DoT to {server}:{port} failed: {exc}") from None
    response = check_response(q, wire)
    elapsed = time.monotonic() - start
    return DnsResult(q, response, wire, server, port, "TLS", elapsed, 1, sent_at=sent_at)


async def query_https(
    connector: Connector,
    url: str,
    name: str,
    qtype: int | str,
    *,
    verify: bool = True,
    cafile: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    client: HttpClient | None = None,
    flags: QueryFlags | None = None,
    pad_block: int | None = PAD_BLOCK,
) -> DnsResult:
    """DNS over HTTPS (RFC 8484): POST application/dns-message, ID 0 as the RFC advises."""
    from smolmix_cli.apps.http_body import BytesBody
    from smolmix_cli.apps.http_client import HttpClient
    from smolmix_cli.apps.http_headers import HeaderEdit
    from smolmix_cli.apps.http_options import FetchOptions

    q = make_query(name, qtype, flags, qid=0, pad_block=pad_block)
    start = time.monotonic()
    sent_at = time.time()
    body = bytearray()

    async def sink(data: bytes) -> None:
        body.extend(data)
        if len(body) > 65535:
            raise DnsMalformed("DoH answer larger than a DNS message")

    opts = FetchOptions(
        method="POST",
        body=BytesBody(q.wire, DNS_MESSAGE),
        header_edits=[HeaderEdit("Accept", DNS_MESSAGE)],
        verify=verify,
        cafile=cafile,
        max_time=timeout,
        fail=True,
    )
    own = client is None
    http = client or HttpClient(connector)
    try:
        transfer = await http.fetch(url, sink, opts)
    except DnsMalformed:
        raise
    except AppError as exc:
        if _keeps_its_own_error(exc):
            raise
        raise DnsNoReply(f"DoH query to {url} failed: {exc}") from None
    finally:
        if own:
            await http.aclose()
    if not transfer.content_type.lower().startswith(DNS_MESSAGE):
        raise DnsMalformed(f"DoH answer has content type {transfer.content_type!r}")
    wire = bytes(body)
    response = check_response(q, wire)
    host = urlsplit(url).hostname or url
    elapsed = time.monotonic() - start
    return DnsResult(q, response, wire, host, 443, "HTTPS", elapsed, 1, sent_at=sent_at)


async def query_server(
    connector: Connector,
    server: DnsServer,
    name: str,
    qtype: int | str,
    *,
    tcp: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int = DEFAULT_TRIES,
    verify: bool = True,
    cafile: str | None = None,
    flags: QueryFlags | None = None,
    pad_block: int | None = PAD_BLOCK,
) -> DnsResult:
    """One question to a parsed server, whatever its transport (`tcp` forces TCP for udp://)."""
    if server.transport == "tls":
        return await query_tls(
            connector,
            name,
            qtype,
            server=server.host,
            port=server.port,
            verify=verify,
            cafile=cafile,
            timeout=timeout,
            flags=flags,
            pad_block=pad_block,
        )
    if server.transport == "https":
        assert server.url is not None
        return await query_https(
            connector,
            server.url,
            name,
            qtype,
            verify=verify,
            cafile=cafile,
            timeout=timeout,
            flags=flags,
            pad_block=pad_block,
        )
    return await query(
        connector,
        name,
        qtype,
        server=server.host,
        port=server.port,
        tcp=tcp or server.transport == "tcp",
        timeout=timeout,
        tries=tries,
        flags=flags,
        pad_block=pad_block,
    )
