"""DNS, HTTP and the exit policy through the tunnel; no destination name reaches the OS resolver."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, ip_address
from pathlib import Path
from typing import Any

import anyio
import pytest

from smolmix_cli.apps import dns
from smolmix_cli.testnet.origin.origin import DemoOrigin
from smolmix_cli.tunnel.errors import ExitPolicyDenied
from smolmix_cli.tunnel.tunnel import Tunnel
from tests.tunnel.conftest import harness
from tests.tunnel.exit_fixture import LocalExit

DNS_HOST = IPv4Address("192.0.2.53")
WEB_HOST = IPv4Address("192.0.2.80")
DEMO = "demo.smolmix.test"
RECORD_TYPES = ["A", "AAAA", "MX", "TXT", "NS", "SOA", "CAA", "HTTPS"]


@pytest.fixture
def guarded_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """socket.getaddrinfo refuses everything but loopback literals (the local network itself)."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        text = host.decode() if isinstance(host, bytes) else str(host)
        try:
            loopback = ip_address(text).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            asked.append(text)
            raise socket.gaierror(socket.EAI_NONAME, f"OS resolver asked for {text!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield asked


def test_dns_http_and_policy_through_the_tunnel(
    tmp_path: Path, guarded_resolver: list[str]
) -> None:
    async def main() -> None:
        async with DemoOrigin(ipv4=[str(WEB_HOST)], ipv6=["fd00::80"]) as origin:

            def setup(exit_: LocalExit) -> None:
                exit_.nat[(DNS_HOST, 53)] = ("127.0.0.1", origin.dns_port)
                exit_.nat[(WEB_HOST, 80)] = ("127.0.0.1", origin.http_port)

            with anyio.fail_after(90):
                async with harness(tmp_path, setup=setup) as h:
                    options = h.options(dns_servers=(f"{DNS_HOST}:53",), dns_timeout=5.0)
                    async with Tunnel.open(h.network, options) as tunnel:
                        await tunnel.wait_ready()
                        # the resolver: A record, CNAME chain, cache
                        assert await tunnel.resolve(DEMO) == [str(WEB_HOST)]
                        assert await tunnel.resolve(f"www.{DEMO}") == [str(WEB_HOST)]
                        sent = tunnel._resolvers[0].queries_sent
                        assert await tunnel.resolve(DEMO) == [str(WEB_HOST)]
                        assert tunnel._resolvers[0].queries_sent == sent  # TTL cache hit
                        # every demo record type, and TC -> TCP for the big TXT set
                        for qtype in RECORD_TYPES:
                            result = await dns.query(tunnel, DEMO, qtype, server=str(DNS_HOST))
                            assert result.rcode == "NOERROR", qtype
                            assert result.response.rr, qtype
                        big = await dns.query(tunnel, f"big.{DEMO}", "TXT", server=str(DNS_HOST))
                        assert big.transport == "TCP" and big.truncated_fallback
                        nx = await dns.query(tunnel, f"nope.{DEMO}", "A", server=str(DNS_HOST))
                        assert nx.rcode == "NXDOMAIN"
                        # HTTP by name through the tunnel
                        stream = await tunnel.open_tcp(DEMO, 80)
                        await stream.send(
                            f"GET / HTTP/1.1\r\nHost: {DEMO}\r\nConnection: close\r\n\r\n".encode()
                        )
                        reply = b""
                        try:
                            while True:
                                reply += await stream.receive()
                        except anyio.EndOfStream:
                            pass
                        assert reply.startswith(b"HTTP/1.1 200")
                        # the exit policy: refused within one round trip, a distinct error
                        start = time.monotonic()
                        with pytest.raises(ExitPolicyDenied):
                            await tunnel.open_tcp("198.51.100.7", 443)
                        assert time.monotonic() - start < 5
                        with pytest.raises(ExitPolicyDenied):
                            await tunnel.udp_exchange("198.51.100.7", 53, b"x", 10)
                        # a denied destination does not hurt the session
                        again = await tunnel.resolve(f"alias.{DEMO}")
                        assert again == [str(WEB_HOST)]
        assert not [name for name in guarded_resolver if "smolmix" in name or "198.51" in name]
        assert guarded_resolver == []

    anyio.run(main)
