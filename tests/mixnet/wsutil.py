"""Test helpers: a loopback WebSocket server and a self-signed TLS certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import anyio.abc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smolmix_cli.websocket import (
    WebSocketConnection,
    WebSocketError,
    serve_websocket_connection,
)


@dataclass
class TLSPair:
    server: ssl.SSLContext
    client: ssl.SSLContext


def self_signed_tls() -> TLSPair:
    """A throwaway certificate for localhost/127.0.0.1 and contexts trusting only it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain wants files; use a temporary directory.
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        cert_path = Path(tmp) / "cert.pem"
        key_path = Path(tmp) / "key.pem"
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return TLSPair(server=server, client=client)


@dataclass
class ServerRecord:
    """What the server side saw; handler errors are recorded, not raised."""

    port: int = 0
    connections: list[WebSocketConnection] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    done: anyio.Event = field(default_factory=anyio.Event)


Handler = Callable[[WebSocketConnection], Awaitable[None]]


@asynccontextmanager
async def ws_server(
    handler: Handler,
    *,
    ssl_context: ssl.SSLContext | None = None,
    max_message_size: int = 1 << 20,
) -> AsyncIterator[ServerRecord]:
    record = ServerRecord()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    record.port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def serve(stream: anyio.abc.SocketStream) -> None:
        try:
            conn = await serve_websocket_connection(
                stream, ssl_context=ssl_context, max_message_size=max_message_size, timeout=5
            )
            record.connections.append(conn)
            await handler(conn)
        except WebSocketError as exc:
            record.errors.append(exc)
        finally:
            record.done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield record
        finally:
            tg.cancel_scope.cancel()
    await listener.aclose()
