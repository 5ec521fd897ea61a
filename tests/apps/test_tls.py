"""TLS policy over loopback: verification with the test CA, failures, -k, weak suites."""

from __future__ import annotations

import contextlib
import json
import ssl

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSAttribute, TLSStream

from smolmix_cli.apps import tls
from smolmix_cli.apps.errors import CaFileError, CertificateError, TlsError
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.errors_map import classify
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.certs import DemoPki
from tests.apps.helpers import get
from tests.apps.os_connector import OsConnector

pytestmark = pytest.mark.anyio


def https(origin: DemoOrigin, host: str = "demo.smolmix.test") -> str:
    return f"https://{host}:{origin.https_port}"


def test_context_policy() -> None:
    ctx = tls.client_context()
    # curl's settings (the ClientHello itself: test_tls_fingerprint.py).
    assert ctx.minimum_version == ssl.TLSVersion.MINIMUM_SUPPORTED
    assert ctx.options & ssl.OP_NO_TICKET and ctx.post_handshake_auth
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    insecure = tls.client_context(verify=False)
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname
    # The policy applies to what the server chooses.
    suites = tls.policy_suites()
    assert suites
    for name in suites:
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)
    assert tls.policy_refusal("TLSv1.3", "TLS_AES_128_GCM_SHA256") is None
    assert tls.policy_refusal("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256") is None
    assert tls.policy_refusal("TLSv1.2", "ECDHE-ECDSA-AES128-SHA") is not None
    assert tls.policy_refusal("TLSv1.2", "AES128-GCM-SHA256") is not None  # no forward secrecy
    assert tls.policy_refusal("TLSv1.1", "ECDHE-RSA-AES128-SHA") is not None
    assert tls.policy_refusal(None, None) is not None


def test_bad_cafile(tmp_path: object) -> None:
    with pytest.raises(CaFileError) as info:
        tls.client_context(cafile="/nonexistent/ca.pem")
    assert classify(info.value).code == 77


async def test_https_with_test_ca(origin: DemoOrigin, connector: OsConnector, pki: DemoPki) -> None:
    async with HttpClient(connector) as client:
        out, t = await get(client, https(origin) + "/echo", cafile=str(pki.ca_file))
        echo = json.loads(out.body)
        assert echo["scheme"] == "https"
        assert t.tls_version in ("TLSv1.2", "TLSv1.3")
        assert 0 < t.time_connect <= t.time_appconnect <= t.time_total
        # Keep-alive over TLS, and a 1 MiB body through it.
        out2, t2 = await get(
            client, https(origin) + f"/bytes/{1 << 20}", cafile=str(pki.ca_file), keep=False
        )
        assert out2.sha.hexdigest() == out2.heads[0].header("x-sha256")
        assert t2.size_download == 1 << 20 and t2.reused_connection
        assert t2.tls_version == t.tls_version and t2.scheme == "https"
    assert client.connections_opened == 1


async def test_unknown_ca_is_60(origin: DemoOrigin, connector: OsConnector) -> None:
    async with HttpClient(connector) as client:
        with pytest.raises(CertificateError) as info:
            await get(client, https(origin) + "/")
    assert classify(info.value).code == 60
    assert "certificate" in str(info.value).lower()


async def test_wrong_name_is_60(origin: DemoOrigin, connector: OsConnector, pki: DemoPki) -> None:
    connector.names["other.example"] = "127.0.0.1"
    async with HttpClient(connector) as client:
        with pytest.raises(CertificateError):
            await get(client, https(origin, "other.example") + "/", cafile=str(pki.ca_file))
        # IP literal: verified against the IP SAN.
        _, t = await get(client, https(origin, "127.0.0.1") + "/", cafile=str(pki.ca_file))
        assert t.http_code == 200


async def test_insecure_skips_verification(origin: DemoOrigin, connector: OsConnector) -> None:
    connector.names["other.example"] = "127.0.0.1"
    async with HttpClient(connector) as client:
        out, t = await get(client, https(origin, "other.example") + "/", verify=False)
    assert t.http_code == 200 and b"demo origin" in out.body


async def test_weak_cipher_server_refused(pki: DemoPki, connector: OsConnector) -> None:
    """We offer curl's suites, CBC ones too; a server that picks one is refused after its choice."""
    server_ctx = pki.server_context(weak_only=True)
    handshakes: list[str] = []
    served = anyio.Event()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        try:
            tls_stream = await TLSStream.wrap(stream, server_side=True, ssl_context=server_ctx)
            handshakes.append(str(tls_stream.extra(TLSAttribute.cipher)[0]))
            handshakes.append(repr(await tls_stream.receive()))
        except (ssl.SSLError, OSError, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            handshakes.append(type(exc).__name__)
        finally:
            await anyio.aclose_forcefully(stream)
            served.set()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_address)[1]
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        async with HttpClient(connector) as client:
            with pytest.raises(TlsError) as info:
                await get(client, f"https://demo.smolmix.test:{port}/", cafile=str(pki.ca_file))
        assert type(info.value) is TlsError and classify(info.value).code == 35
        assert "not AEAD" in str(info.value)
        with anyio.fail_after(5):
            await served.wait()
        tg.cancel_scope.cancel()
    # The server chose a CBC suite, then got no request: the connection was closed.
    assert handshakes[0].startswith("ECDHE-ECDSA-AES128-SHA")
    assert handshakes[1:] in (["EndOfStream"], ["BrokenResourceError"], ["SSLError"])


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
async def test_old_tls_version_server_refused(pki: DemoPki, connector: OsConnector) -> None:
    """curl's supported_versions lists TLS 1.1 and 1.0; no session below 1.2 gets through.

    OpenSSL 3 itself refuses them here (their signatures need security level 0);
    `tls.policy_refusal` would refuse what got past it.
    """
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.cert_file, pki.key_file)
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_1

    async def handle(stream: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(
            ssl.SSLError, OSError, anyio.EndOfStream, anyio.BrokenResourceError
        ):
            await TLSStream.wrap(stream, server_side=True, ssl_context=server_ctx)
        await anyio.aclose_forcefully(stream)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_address)[1]
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        async with HttpClient(connector) as client:
            with pytest.raises(TlsError) as info:
                await get(client, f"https://demo.smolmix.test:{port}/", cafile=str(pki.ca_file))
        assert classify(info.value).code == 35
        tg.cancel_scope.cancel()
