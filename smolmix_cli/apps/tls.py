"""Client TLS over any byte stream: one policy, certifi roots, typed failures.

The policy follows the seed client: TLS 1.2+ with only AEAD suites that have
forward secrecy, ALPN http/1.1, no session tickets (resumption would link
connections made through different exits). TLS runs end to end inside the
tunnel, so the exit sees only ciphertext.
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

CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
"""TLS 1.2 suites allowed; TLS 1.3 suites are all AEAD + (EC)DHE already."""

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
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_TICKET | ssl.OP_NO_COMPRESSION
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


async def wrap_client(
    stream: anyio.abc.ByteStream,
    hostname: str,
    context: ssl.SSLContext,
) -> TLSStream:
    """Run the client handshake on `stream`; `hostname` gives SNI and the name checked.

    For an IP literal Python sends no SNI and checks the IP SAN, as the seed
    client does. The stream is closed if the handshake fails.
    """
    try:
        return await TLSStream.wrap(
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
