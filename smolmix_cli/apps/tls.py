"""Client TLS over any byte stream: curl's ClientHello, our policy, typed failures.

The ClientHello is the one `curl --http1.1` sends on the same OpenSSL (also
curl's hello for ws/wss), so a server or the exit cannot tell smolmix from
curl by its handshake (issue 20 item 6; docs/fingerprints.md;
tests/apps/test_tls_fingerprint.py compares the two at a local listener).
curl (7.88 and 8.5 alike, lib/vtls/openssl.c) keeps OpenSSL's cipher list and
minimum version and sets SSL_OP_NO_TICKET and post-handshake auth. Python's
ssl overwrites OpenSSL's defaults, so `client_context` puts them back
(`DEFAULT`: 31 suites to Python's 10; supported_versions 1.3 to 1.0).
Groups, signature algorithms, extension order, padding and the x25519 key
share are OpenSSL's, hence already curl's. ALPN is `http/1.1` only: smolmix
speaks HTTP/1.1, and offering h2 as plain `curl https://` does would make
servers choose it.

Left different: where a distribution's openssl.cnf sets CipherString or
MinProtocol curl follows it and we cannot (Python overwrote them); Python's
security level 2 against curl's 1 refuses keys under 2048 bits (not in the
hello). Nothing differs in the hello on Debian 12 (curl 7.88.1, OpenSSL 3.0).

Offering curl's list means offering CBC suites, RSA key exchange and TLS
1.0/1.1, so the seed client's policy (TLS 1.2+, AEAD with ECDHE) is applied
to the server's choice: `wrap_client` refuses any other session right after
the handshake, as a TLS error. No session tickets, so no resumption links
connections made through different exits. TLS runs end to end inside the
tunnel: the exit sees only ciphertext (and this ClientHello).
"""

from __future__ import annotations

import ssl
from functools import lru_cache

import anyio
import anyio.abc
import certifi
from anyio.streams.tls import TLSAttribute, TLSStream

from smolmix_cli.apps.errors import CaFileError, CertificateError, TlsError
from smolmix_cli.apps.failure_text import stream_failure

CURL_CIPHERS = "DEFAULT"
"""OpenSSL's own cipher list, which curl keeps (it sets none on OpenSSL 1.1+)."""

POLICY_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
"""TLS 1.2 suites a session may end up with; TLS 1.3 suites are all AEAD + (EC)DHE."""

POLICY_VERSIONS = frozenset({"TLSv1.2", "TLSv1.3"})

DEFAULT_ALPN = ("http/1.1",)


@lru_cache(maxsize=16)
def client_context(
    *,
    verify: bool = True,
    cafile: str | None = None,
    alpn: tuple[str, ...] = DEFAULT_ALPN,
) -> ssl.SSLContext:
    """The client context for one (verify, cafile, alpn) choice; built once and reused.

    With `verify`, certificates are checked against certifi's roots plus
    `cafile` if given (curl's --cacert adds to nothing; we add, so a private
    CA does not cost the public roots). Without, nothing is checked (-k).
    Neither changes the ClientHello.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.set_ciphers(CURL_CIPHERS)
    ctx.options |= ssl.OP_NO_TICKET | ssl.OP_NO_COMPRESSION
    ctx.post_handshake_auth = True
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if verify:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=certifi.where())
        if cafile is not None:
            try:
                ctx.load_verify_locations(cafile=cafile)
            except (OSError, ssl.SSLError) as exc:
                raise CaFileError(f"cannot load CA file {cafile}: {exc}") from None
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@lru_cache(maxsize=1)
def policy_suites() -> frozenset[str]:
    """OpenSSL names of the TLS 1.2 suites `POLICY_CIPHERS` allows."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(POLICY_CIPHERS)
    return frozenset(c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2")


def policy_refusal(version: str | None, cipher: str | None) -> str | None:
    """Why a negotiated (version, cipher) breaks the policy, or None if it keeps it."""
    if version not in POLICY_VERSIONS:
        return f"server chose {version or 'an unknown version'}, below TLS 1.2"
    if version == "TLSv1.2" and cipher not in policy_suites():
        return f"server chose {cipher or 'an unknown suite'}, not AEAD with ECDHE"
    return None


async def wrap_client(
    stream: anyio.abc.ByteStream,
    hostname: str,
    context: ssl.SSLContext,
) -> TLSStream:
    """Run the client handshake on `stream`; `hostname` gives SNI and the name checked.

    For an IP literal Python sends no SNI and checks the IP SAN, as the seed
    client does. The stream is closed if the handshake fails or the server's
    choice breaks the policy (see the module docstring).
    """
    try:
        wrapped = await TLSStream.wrap(
            stream,
            server_side=False,
            hostname=hostname,
            ssl_context=context,
            standard_compatible=False,
        )
    except ssl.SSLCertVerificationError as exc:
        await anyio.aclose_forcefully(stream)
        raise CertificateError(
            f"SSL certificate problem: {exc.verify_message or exc.reason}"
        ) from None
    except ssl.SSLError as exc:
        await anyio.aclose_forcefully(stream)
        raise TlsError(f"TLS handshake failed: {exc.reason or exc}") from None
    except anyio.EndOfStream:
        await anyio.aclose_forcefully(stream)
        raise TlsError("TLS handshake failed: connection closed by peer") from None
    except Exception as exc:  # a reset, a broken tunnel: not the peer closing
        await anyio.aclose_forcefully(stream)
        raise TlsError(f"TLS handshake failed: {stream_failure(exc)}") from None
    cipher = wrapped.extra(TLSAttribute.cipher, None)
    refusal = policy_refusal(
        wrapped.extra(TLSAttribute.tls_version, None), cipher[0] if cipher else None
    )
    if refusal is not None:
        await anyio.aclose_forcefully(wrapped)
        raise TlsError(f"TLS handshake failed: {refusal}")
    return wrapped


def negotiated(stream: TLSStream) -> dict[str, str]:
    """Version, cipher and ALPN of an established stream, for -v and -w."""
    info: dict[str, str] = {}
    version = stream.extra(TLSAttribute.tls_version, None)
    if version:
        info["tls_version"] = str(version)
    cipher = stream.extra(TLSAttribute.cipher, None)
    if cipher:
        info["cipher"] = str(cipher[0])
    alpn = stream.extra(TLSAttribute.alpn_protocol, None)
    if alpn:
        info["alpn"] = str(alpn)
    return info
