"""httpx clients through a tunnel: real httpx, the demo origin by name (through the tunnel's
resolver) and by its loopback address (the exit connects to 127.0.0.1)."""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import pytest

from smolmix_cli import api
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.testnet.origin.http import bytes_sha256
from tests.api.conftest import LocalNet

httpx = pytest.importorskip("httpx")
from smolmix_cli.api.httpx_transport import AsyncTransport, SyncTransport  # noqa: E402

pytestmark = pytest.mark.anyio
DEMO = "demo.smolmix.test"
MIB = 1 << 20


@pytest.fixture(scope="module")
def net(net_process: LocalNet) -> LocalNet:
    """Out of process: tracemalloc here sees the client alone (tests/api/conftest.py)."""
    return net_process


@pytest.fixture
async def tunnel(net: LocalNet) -> AsyncIterator[api.Tunnel]:
    async with api.connect(net.file, session="off") as opened:
        yield opened


async def test_http_https_redirects_uploads_and_one_connection_per_origin(
    net: LocalNet, tunnel: api.Tunnel
) -> None:
    async with httpx.AsyncClient(transport=AsyncTransport(tunnel), timeout=30) as client:
        page = await client.get(f"https://{DEMO}/")  # verified against the network's CA
        assert page.status_code == 200 and page.http_version == "HTTP/1.1"
        assert b"smolmix" in page.content
        assert tunnel.tcp_opened == 1

        base = net.loopback()
        hops = await client.get(f"{base}/redirect/3", follow_redirects=True)
        assert hops.status_code == 200 and str(hops.url) == f"{base}/echo"
        assert [r.status_code for r in hops.history] == [302, 302, 302]
        ids = {r.headers["x-connection-id"] for r in (*hops.history, hops)}
        for _ in range(3):
            again = await client.get(f"{base}/bytes/1000")
            assert len(again.content) == 1000
            ids.add(again.headers["x-connection-id"])
        assert len(ids) == 1  # seven requests, one TCP connection at the server
        assert tunnel.tcp_opened == 2  # and through the tunnel: one per origin

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b"u" * 2_000

        sent = await client.post(f"{net.loopback('https')}/upload", content=chunks())  # chunked
        assert sent.json() == {"length": 8_000, "sha256": hashlib.sha256(b"u" * 8_000).hexdigest()}
        assert tunnel.tcp_opened == 3  # https to 127.0.0.1: its certificate names the address

        with pytest.raises(httpx.ConnectError) as caught:
            await client.get("https://198.18.0.1/")  # the demo's address: not in its certificate
        assert isinstance(caught.value.__cause__, api.TlsError)
        assert caught.value.__cause__.code == ExitCode.CERTIFICATE_ERROR


async def stream_and_measure(client: httpx.AsyncClient, url: str, stop_at: int) -> tuple[int, int]:
    """Bytes streamed (up to `stop_at`) and the peak of traced memory meanwhile."""
    tracemalloc.start()
    try:
        received = 0
        async with client.stream("GET", url) as response:
            assert response.status_code == 200
            async for piece in response.aiter_raw():
                received += len(piece)
                if received >= stop_at:
                    break
        return received, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_streaming_stays_bounded_a_timeout_and_an_early_close(
    net: LocalNet, tunnel: api.Tunnel
) -> None:
    """A 10 MiB body: its first 64 KiB arrive while the rest waits, and the client holds
    a bounded amount meanwhile (the whole body, ~3 to 5 min here: test_streaming_ten_mib
    below, under the soak marker)."""
    async with httpx.AsyncClient(transport=AsyncTransport(tunnel), timeout=60) as client:
        url = f"{net.loopback()}/bytes/{10 * MIB}"
        received, peak = await stream_and_measure(client, url, MIB // 16)
        assert MIB // 16 <= received < MIB
        assert peak < 2 * MIB, peak

        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout) as caught:
            await client.get(f"{net.loopback()}/slow/20", timeout=httpx.Timeout(30, read=0.5))
        assert time.monotonic() - start < 10
        assert isinstance(caught.value.__cause__, api.Timeout)
        assert caught.value.__cause__.code == ExitCode.TIMEOUT

        opened = tunnel.tcp_opened
        assert (await client.get(f"{net.loopback()}/bytes/10")).status_code == 200
        assert tunnel.tcp_opened == opened + 1  # neither the cut-short one nor the timed-out


@pytest.mark.long
async def test_streaming_ten_mib(net: LocalNet, tunnel: api.Tunnel) -> None:
    """`pytest -m long tests/api`: 10 MiB through httpx, memory bounded, bytes checked."""
    url = f"{net.loopback()}/bytes/{10 * MIB}"
    async with httpx.AsyncClient(transport=AsyncTransport(tunnel), timeout=120) as client:
        digest = hashlib.sha256()
        tracemalloc.start()
        try:
            async with client.stream("GET", url) as response:
                async for piece in response.aiter_raw():
                    digest.update(piece)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert response.headers["x-sha256"] == digest.hexdigest() == bytes_sha256(10 * MIB)
        print(f"10 MiB streamed, traced peak {peak / MIB:.2f} MiB")
        # 4.45 MiB measured: the body path holds a few pieces; what grows with the traffic is
        # the mixnet client's capped bookkeeping (recent message ids, reply-key digests)
        assert peak < 6 * MIB, peak


@pytest.fixture(scope="module")
def sync_tunnel(net: LocalNet) -> Iterator[api.SyncTunnel]:
    with api.connect_sync(net.file, session="off") as opened:
        yield opened


def test_sync_client(
    net: LocalNet, sync_tunnel: api.SyncTunnel, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):  # never a way around the tunnel
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    with httpx.Client(transport=SyncTransport(sync_tunnel), timeout=30) as client:
        assert client.get(f"https://{DEMO}/echo").json()["method"] == "GET"
        with client.stream("GET", f"{net.loopback()}/bytes/30000") as response:
            body = b"".join(response.iter_raw())
        assert hashlib.sha256(body).hexdigest() == response.headers["x-sha256"]
        upload = client.put(f"{net.loopback()}/upload", content=iter([b"a" * 5000, b"b" * 5000]))
        assert upload.json()["length"] == 10_000
        hops = client.get(f"{net.loopback()}/redirect/2", follow_redirects=True)
        assert len(hops.history) == 2
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"{net.loopback()}/slow/20", timeout=httpx.Timeout(30, read=0.5))
        with pytest.raises(httpx.ConnectError) as caught:
            client.get("http://no-such-name.smolmix.test/")
        assert isinstance(caught.value.__cause__, api.ResolveError)
        assert caught.value.__cause__.code == ExitCode.RESOLVE_FAILED
