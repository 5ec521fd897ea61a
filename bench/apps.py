"""Application-layer throughput over loopback (no tunnel): HTTP(S), DNS, WebSocket.

The engines run through a test-only OS-socket connector against the demo
origin, so these numbers are the ceiling the apps layer puts on top of the
tunnel. Prints one JSON object per measurement. Run from the repository root:
    .venv/bin/python bench/apps.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smolmix_cli.apps import dns, ws
from smolmix_cli.apps.http import FetchOptions, HttpClient
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.certs import make_pki
from tests.apps.os_connector import OsConnector

MIB = 1024 * 1024


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def main() -> None:
    pki = make_pki()
    connector = OsConnector({"demo.smolmix.test": "127.0.0.1"})
    async with DemoOrigin(ssl_context=pki.server_context()) as origin:
        for scheme, port in (("http", origin.http_port), ("https", origin.https_port)):
            async with HttpClient(connector) as client:
                size = 32 * MIB
                received = 0

                async def sink(data: bytes) -> None:
                    nonlocal received
                    received += len(data)

                opts = FetchOptions(cafile=str(pki.ca_file))
                url = f"{scheme}://demo.smolmix.test:{port}/bytes/{size}"
                await client.fetch(url, sink, opts)  # warm the origin's sha cache
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    await client.fetch(url, sink, opts)
                    best = min(best, time.perf_counter() - start)
                emit(
                    name=f"{scheme}_download_32MiB",
                    seconds=round(best, 4),
                    mib_per_s=round(size / MIB / best, 1),
                )
                small = f"{scheme}://demo.smolmix.test:{port}/"
                n = 300
                start = time.perf_counter()
                for _ in range(n):
                    await client.fetch(small, sink, opts)
                elapsed = time.perf_counter() - start
                emit(
                    name=f"{scheme}_keepalive_small_get",
                    requests=n,
                    requests_per_s=round(n / elapsed),
                    connections=client.connections_opened,
                )
        n = 500
        start = time.perf_counter()
        for _ in range(n):
            await dns.query(
                connector, "demo.smolmix.test", "A", server="127.0.0.1", port=origin.dns_port
            )
        elapsed = time.perf_counter() - start
        emit(name="dns_udp_padded_query", queries=n, queries_per_s=round(n / elapsed))
        n = 2000
        async with await ws.connect(connector, f"ws://127.0.0.1:{origin.ws_port}/") as s:
            payload = b"x" * 1024
            start = time.perf_counter()
            for _ in range(n):
                await s.send(payload)
                await s.receive()
            elapsed = time.perf_counter() - start
        emit(name="ws_echo_1KiB_roundtrip", messages=n, messages_per_s=round(n / elapsed))


if __name__ == "__main__":
    anyio.run(main)
