"""The demo origin checked with plain sockets and raw protocol bytes (not our clients)."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import struct

import anyio
import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from smolmix_cli.testnet.origin.http import BLOCK, bytes_sha256, pseudo_random_bytes
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.certs import make_pki

pytestmark = pytest.mark.anyio


async def _raw(port: int, request: bytes, *, tls: ssl.SSLContext | None = None) -> bytes:
    stream = await anyio.connect_tcp(
        "127.0.0.1",
        port,
        ssl_context=tls,
        tls_hostname="localhost" if tls else None,
        tls_standard_compatible=False,
    )
    async with stream:
        await stream.send(request)
        data = b""
        with anyio.fail_after(5):
            while True:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return data


def test_pseudo_random_bytes_is_a_stream() -> None:
    whole = pseudo_random_bytes(3 * BLOCK + 5)
    assert pseudo_random_bytes(100, BLOCK - 50) == whole[BLOCK - 50 : BLOCK + 50]
    assert hashlib.sha256(whole).hexdigest() == bytes_sha256(3 * BLOCK + 5)
    assert pseudo_random_bytes(10, seed=b"other") != whole[:10]


async def test_http_routes_raw() -> None:
    async with DemoOrigin() as origin:
        reply = await _raw(
            origin.http_port,
            b"GET /bytes/1000 HTTP/1.1\r\nHost: x\r\nRange: bytes=-10\r\n\r\n"
            b"GET /status/418 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        head, _, rest = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 206 ")
        assert b"Content-Range: bytes 990-999/1000" in head
        assert rest[:10] == pseudo_random_bytes(1000)[990:]
        assert b"HTTP/1.1 418 " in rest  # pipelined second request on the same connection
        bad = await _raw(origin.http_port, b"NONSENSE\r\n\r\n")
        assert bad.startswith(b"HTTP/1.1 400 ")
        unsat = await _raw(
            origin.http_port,
            b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\nRange: bytes=20-\r\nConnection: close\r\n\r\n",
        )
        assert unsat.startswith(b"HTTP/1.1 416 ") and b"Content-Range: bytes */10" in unsat
        body = b"x" * 5000
        up = await _raw(
            origin.http_port,
            b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5000\r\n\r\n"
            + body,
        )
        answer = json.loads(up.partition(b"\r\n\r\n")[2])
        assert answer == {"sha256": hashlib.sha256(body).hexdigest(), "length": 5000}
        assert origin.app.connections == 4


async def test_https_and_wss_need_the_context() -> None:
    pki = make_pki()
    async with DemoOrigin(ssl_context=pki.server_context()) as origin:
        assert origin.https_port and origin.wss_port
        client = ssl.create_default_context(cafile=str(pki.ca_file))
        reply = await _raw(
            origin.https_port,
            b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            tls=client,
        )
        assert reply.startswith(b"HTTP/1.1 200 ") and b"demo origin" in reply
        # A client that fails the handshake does not disturb the server.
        with pytest.raises(ssl.SSLCertVerificationError):
            await _raw(origin.https_port, b"", tls=ssl.create_default_context())
    async with DemoOrigin() as plain:
        assert plain.https_port == 0 and plain.wss_port == 0


async def test_dns_over_udp_and_tcp_raw() -> None:
    async with DemoOrigin(ipv4=["192.0.2.10", "192.0.2.11"], ipv6=["2001:db8::10"]) as origin:
        query = DNSRecord.question("demo.smolmix.test", "A")
        async with await anyio.create_connected_udp_socket(
            remote_host="127.0.0.1", remote_port=origin.dns_port
        ) as udp:
            await udp.send(bytes(query.pack()))
            with anyio.fail_after(5):
                reply = DNSRecord.parse(await udp.receive())
            assert sorted(str(rr.rdata) for rr in reply.rr) == ["192.0.2.10", "192.0.2.11"]
            # Garbage is dropped silently; the server keeps answering.
            await udp.send(b"\x00\x01garbage")
            ptr = DNSRecord.question("10.2.0.192.in-addr.arpa", "PTR")
            await udp.send(bytes(ptr.pack()))
            with anyio.fail_after(5):
                reply = DNSRecord.parse(await udp.receive())
            assert reply.header.id == ptr.header.id
            assert str(reply.rr[0].rdata) == "demo.smolmix.test."
            big = DNSRecord.question("big.demo.smolmix.test", "TXT")
            await udp.send(bytes(big.pack()))
            with anyio.fail_after(5):
                reply = DNSRecord.parse(await udp.receive())
            assert reply.header.tc == 1 and not reply.rr
        stream = await anyio.connect_tcp("127.0.0.1", origin.dns_port)
        async with stream:
            for name, qtype in (("big.demo.smolmix.test", "TXT"), ("nope.example", "A")):
                wire = bytes(DNSRecord.question(name, qtype).pack())
                await stream.send(struct.pack("!H", len(wire)) + wire)
                data = b""
                with anyio.fail_after(5):
                    while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                        data += await stream.receive()
                reply = DNSRecord.parse(data[2:])
                if qtype == "TXT":
                    assert reply.header.tc == 0 and len(reply.rr) == 24
                    assert all(rr.rtype == QTYPE.TXT for rr in reply.rr)
                else:
                    assert reply.header.rcode == RCODE.REFUSED


def test_dns_port_is_shared_by_udp_and_tcp() -> None:
    async def main() -> None:
        async with DemoOrigin() as origin:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                with pytest.raises(OSError):
                    s.bind(("127.0.0.1", origin.dns_port))
            finally:
                s.close()

    anyio.run(main)
