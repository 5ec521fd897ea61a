"""@server forms and the encrypted DNS transports (DoT, DoH) against the demo origin."""

from __future__ import annotations

import pytest

from smolmix_cli.apps.dns_format import short_text
from smolmix_cli.apps.dns_transports import (
    DnsServer,
    parse_server,
    query_https,
    query_server,
    query_tls,
)
from smolmix_cli.apps.errors import CertificateError, DnsNoReply, DnsUsageError
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.certs import DemoPki
from tests.apps.os_connector import OsConnector

pytestmark = pytest.mark.anyio
Z = "demo.smolmix.test"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1.1.1.1", DnsServer("udp", "1.1.1.1", 53)),
        ("@9.9.9.9:5353", DnsServer("udp", "9.9.9.9", 5353)),
        ("2606:4700::1111", DnsServer("udp", "2606:4700::1111", 53)),
        ("[2606:4700::1111]:54", DnsServer("udp", "2606:4700::1111", 54)),
        ("tcp://1.1.1.1", DnsServer("tcp", "1.1.1.1", 53)),
        ("tls://dns.quad9.net", DnsServer("tls", "dns.quad9.net", 853)),
        ("tls://1.1.1.1:8853/", DnsServer("tls", "1.1.1.1", 8853)),
        (
            "https://cloudflare-dns.com/dns-query",
            DnsServer("https", "cloudflare-dns.com", 443, "https://cloudflare-dns.com/dns-query"),
        ),
    ],
)
def test_parse_server(spec: str, expected: DnsServer) -> None:
    assert parse_server(spec) == expected


@pytest.mark.parametrize("bad", ["", "@", "quic://x", "h:0", "h:99999", "h:abc", ":53", "https://"])
def test_bad_servers(bad: str) -> None:
    with pytest.raises(DnsUsageError):
        parse_server(bad)


async def test_dot(origin: DemoOrigin, connector: OsConnector, pki: DemoPki) -> None:
    result = await query_tls(
        connector,
        f"www.{Z}",
        "A",
        server="127.0.0.1",
        port=origin.dot_port,
        server_name=Z,
        cafile=str(pki.ca_file),
    )
    assert result.transport == "TLS"
    assert short_text(result) == f"{Z}.\n10.0.0.1\n"
    big = await query_server(
        connector,
        DnsServer("tls", "demo.smolmix.test", origin.dot_port),
        f"big.{Z}",
        "TXT",
        cafile=str(pki.ca_file),
    )
    assert len(big.response.rr) == 24
    with pytest.raises(CertificateError):
        await query_tls(connector, Z, "A", server="127.0.0.1", port=origin.dot_port)


async def test_doh(origin: DemoOrigin, connector: OsConnector, pki: DemoPki) -> None:
    url = f"https://{Z}:{origin.https_port}/dns-query"
    result = await query_https(connector, url, Z, "AAAA", cafile=str(pki.ca_file))
    assert result.transport == "HTTPS" and result.query.id == 0
    assert short_text(result) == "fd00::1\n"
    via_spec = await query_server(
        connector, parse_server(url), f"nope.{Z}", "A", cafile=str(pki.ca_file)
    )
    assert via_spec.rcode == "NXDOMAIN"
    with pytest.raises(DnsNoReply):
        await query_https(
            connector, f"https://{Z}:{origin.https_port}/status/500", Z, "A", verify=False
        )


async def test_query_server_udp_and_tcp(origin: DemoOrigin, connector: OsConnector) -> None:
    udp = await query_server(connector, parse_server(f"127.0.0.1:{origin.dns_port}"), Z, "MX")
    assert udp.transport == "UDP" and short_text(udp) == f"10 mail.{Z}.\n"
    tcp = await query_server(connector, parse_server(f"tcp://127.0.0.1:{origin.dns_port}"), Z, "MX")
    assert tcp.transport == "TCP" and short_text(tcp) == short_text(udp)
