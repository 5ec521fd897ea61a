"""The engines over a stream that delivers bytes in tiny random pieces (as the mixnet may),
on both anyio backends; plus chunked uploads and concurrent fetches on one client."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import pytest

from smolmix_cli.apps import dns, ws
from smolmix_cli.apps.http_body import StreamBody
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.testnet.origin.http import pseudo_random_bytes
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.certs import DemoPki
from tests.apps.helpers import Collected, get
from tests.apps.os_connector import OsConnector

pytestmark = [pytest.mark.anyio, pytest.mark.anyio_backends("asyncio", "trio")]


class ChoppyStream(anyio.abc.ByteStream):
    """Receives at most 1-97 bytes per call and sends in small pieces."""

    def __init__(self, inner: anyio.abc.ByteStream, rng: random.Random) -> None:
        self.inner = inner
        self.rng = rng
        self.pending = b""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.pending:
            self.pending = await self.inner.receive(max_bytes)
        take = min(max_bytes, self.rng.randint(1, 97))
        out, self.pending = self.pending[:take], self.pending[take:]
        return out

    async def send(self, item: bytes) -> None:
        view = memoryview(item)
        while view:
            take = self.rng.randint(1, 500)
            await self.inner.send(bytes(view[:take]))
            view = view[take:]

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


class ChoppyConnector(OsConnector):
    def __init__(self, names: dict[str, str]) -> None:
        super().__init__(names)
        self.rng = random.Random(7)

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        return ChoppyStream(await super().open_tcp(host, port), self.rng)


@pytest.fixture
def choppy() -> ChoppyConnector:
    return ChoppyConnector({"demo.smolmix.test": "127.0.0.1"})


async def test_https_over_bursty_stream(
    origin: DemoOrigin, choppy: ChoppyConnector, pki: DemoPki
) -> None:
    base = f"https://demo.smolmix.test:{origin.https_port}"
    async with HttpClient(choppy) as client:
        out, t = await get(client, base + "/bytes/200000", cafile=str(pki.ca_file))
        assert out.sha.hexdigest() == out.heads[0].header("x-sha256")
        out, t = await get(client, base + "/chunked/30000", cafile=str(pki.ca_file))
        assert bytes(out.body) == pseudo_random_bytes(30000)
        out, t = await get(
            client, base + "/redirect/2", cafile=str(pki.ca_file), follow_redirects=True
        )
        assert json.loads(out.body)["method"] == "GET" and t.num_redirects == 2
    assert client.connections_opened == 1


async def test_dns_tcp_and_ws_over_bursty_stream(
    origin: DemoOrigin, choppy: ChoppyConnector
) -> None:
    result = await dns.query(
        choppy, "big.demo.smolmix.test", "TXT", server="127.0.0.1", port=origin.dns_port, tcp=True
    )
    assert len(result.response.rr) == 24
    async with await ws.connect(choppy, f"ws://127.0.0.1:{origin.ws_port}/") as session:
        payload = bytes(range(256)) * 40
        await session.send(payload)
        assert await session.receive(timeout=5) == payload


async def test_chunked_upload_from_stream(origin: DemoOrigin, connector: OsConnector) -> None:
    data = pseudo_random_bytes(500_000, 3)

    async def source() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 70_000):
            yield data[start : start + 70_000]

    async with HttpClient(connector) as client:
        out, t = await get(
            client,
            f"http://127.0.0.1:{origin.http_port}/upload",
            method="PUT",
            body=StreamBody(source),
        )
    assert json.loads(out.body) == {"sha256": hashlib.sha256(data).hexdigest(), "length": len(data)}
    assert t.size_upload == len(data)


async def test_concurrent_fetches_share_the_pool(
    origin: DemoOrigin, connector: OsConnector
) -> None:
    base = f"http://127.0.0.1:{origin.http_port}"
    results: dict[int, Any] = {}
    async with HttpClient(connector) as client:

        async def one(i: int) -> None:
            out = Collected()
            await client.fetch(f"{base}/bytes/{10_000 + i}", out.sink, FetchOptions())
            results[i] = out

        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(one, i)
        opened = client.connections_opened
        # A second round reuses what the first left idle (pool keeps up to 4 per origin).
        async with anyio.create_task_group() as tg:
            for i in range(6, 10):
                tg.start_soon(one, i)
        assert client.connections_opened == opened
    for i, out in results.items():
        assert bytes(out.body) == pseudo_random_bytes(10_000 + i)
    assert opened == 6
