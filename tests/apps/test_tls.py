"""TLS policy over loopback: verification with the test CA, failures, -k, weak suites."""

from __future__ import annotations

import json
import ssl

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSStream

from smolmix_cli.apps import tls
from smolmix_cli.apps.errors import CaFileError, CertificateError, TlsError
from smolmix_cli.apps.http import HttpClient
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
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.options & ssl.OP_NO_TICKET
    suites = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert suites
    for name in suites:
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)
    insecure = tls.client_context(verify=False)
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname


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
    server_ctx = pki.server_context(weak_only=True)
    handshakes: list[str] = []

    async def handle(stream: anyio.abc.SocketStream) -> None:
        try:
            await TLSStream.wrap(stream, server_side=True, ssl_context=server_ctx)
            handshakes.append("ok")
        except (ssl.SSLError, OSError, anyio.EndOfStream, anyio.BrokenResourceError):
            handshakes.append("failed")
        finally:
            await anyio.aclose_forcefully(stream)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_address)[1]
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        async with HttpClient(connector) as client:
            with pytest.raises(TlsError) as info:
                await get(client, f"https://demo.smolmix.test:{port}/", cafile=str(pki.ca_file))
        assert type(info.value) is TlsError and classify(info.value).code == 35
        # Sanity: the same server accepts a client that allows CBC suites.
        raw = await connector.open_tcp("127.0.0.1", port)
        lax = ssl.create_default_context(cafile=str(pki.ca_file))
        lax.set_ciphers("ECDHE-ECDSA-AES128-SHA")
        lax.maximum_version = ssl.TLSVersion.TLSv1_2
        wrapped = await TLSStream.wrap(
            raw, hostname="demo.smolmix.test", ssl_context=lax, standard_compatible=False
        )
        await wrapped.aclose()
        tg.cancel_scope.cancel()
    assert handshakes == ["failed", "ok"]
