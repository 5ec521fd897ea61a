"""The local network's certificate authority and its loopback server certificate.

Clients on `--network testnet` trust exactly this CA (its PEM path is in the
network file), so the directory and gateways can speak TLS on loopback
without touching the system trust store. Keys are written 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"
VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class CertPaths:
    ca_cert: Path
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def create_ca(
    directory: Path,
    hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost"),
    now: datetime.datetime | None = None,
) -> CertPaths:
    """A fresh CA and a server certificate for `hosts`, written into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smolmix local network CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = CertPaths(directory / CA_CERT, directory / SERVER_CERT, directory / SERVER_KEY)
    paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(directory / CA_KEY, _key_pem(ca_key))
    paths.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(paths.server_key, _key_pem(server_key))
    return paths


DEFAULT_HOSTS = ("127.0.0.1", "::1", "localhost")


def server_hosts(host: str) -> tuple[str, ...]:
    """The names the server certificate must cover when the network listens on `host`."""
    return tuple(dict.fromkeys((host, *DEFAULT_HOSTS)))


def load_or_create_ca(directory: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> CertPaths:
    """Reuse the CA in `directory` if its server cert is valid for a day more and covers
    `hosts`; else make a new one."""
    paths = CertPaths(directory / CA_CERT, directory / SERVER_CERT, directory / SERVER_KEY)
    if all(p.is_file() for p in (paths.ca_cert, paths.server_cert, paths.server_key)):
        try:
            cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            covered = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
            covered |= set(san.get_values_for_type(x509.DNSName))
            fresh = cert.not_valid_after_utc > datetime.datetime.now(
                datetime.UTC
            ) + datetime.timedelta(days=1)
            if fresh and {str(h) for h in hosts} <= covered:
                return paths
        except (ValueError, x509.ExtensionNotFound):
            pass
    return create_ca(directory, hosts)
