"""Tunnel overhead on the local network: bulk TCP download, TCP connect + first byte, beside the
mixnet round trip to the exit.

In one process: a LocalNetwork with zero mix delay, the test exit from `tests/tunnel`
(MixnetClient + IprRouter + accept-any NetStack), and a Tunnel with cover and Poisson traffic
off. Prints JSON lines.

- `ipr_ping_rtt_ms`: an IPR Ping/Pong, i.e. one mixnet round trip client -> exit -> client
  (the reply travels on a SURB); median of --pings.
- `tcp_connect_ms` / `tcp_first_byte_ms`: open_tcp to the exit's echo service, then one byte
  echoed; median of --connects.
- `bulk_mb_per_s`: one TCP stream downloading --mib MiB from the exit's source service.

Usage: python bench/tunnel.py [--mib 4] [--pings 10] [--connects 10] [--packets-per-message 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio

from smolmix_cli.tunnel.tunnel import Tunnel
from tests.tunnel.conftest import harness
from tests.tunnel.exit_fixture import ECHO_PORT, SERVICE_HOST, SOURCE_PORT


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with harness(Path(tmp)) as h:
            options = h.options(packets_per_message=args.packets_per_message)
            async with Tunnel.open(h.network, options) as tunnel:
                start = time.perf_counter()
                await tunnel.wait_ready()
                emit(
                    {
                        "name": "tunnel_ready",
                        "ready_ms": round((time.perf_counter() - start) * 1e3, 1),
                    }
                )
                session = tunnel.session
                assert session is not None
                rtts = [await session.link.ping(10) * 1e3 for _ in range(args.pings)]
                emit({"name": "ipr_ping_rtt", "ipr_ping_rtt_ms": round(statistics.median(rtts), 2)})
                connects, firsts = [], []
                for _ in range(args.connects):
                    t0 = time.perf_counter()
                    stream = await tunnel.open_tcp(str(SERVICE_HOST), ECHO_PORT)
                    t1 = time.perf_counter()
                    await stream.send(b"x")
                    await stream.receive()
                    t2 = time.perf_counter()
                    await stream.aclose()
                    connects.append((t1 - t0) * 1e3)
                    firsts.append((t2 - t0) * 1e3)
                emit(
                    {
                        "name": "tcp_open",
                        "tcp_connect_ms": round(statistics.median(connects), 2),
                        "tcp_first_byte_ms": round(statistics.median(firsts), 2),
                    }
                )
                size = args.mib << 20
                stream = await tunnel.open_tcp(str(SERVICE_HOST), SOURCE_PORT)
                t0 = time.perf_counter()
                await stream.send(f"{size}\n".encode())
                total = 0
                try:
                    while True:
                        total += len(await stream.receive())
                except anyio.EndOfStream:
                    pass
                elapsed = time.perf_counter() - t0
                assert total == size
                stats = tunnel.stats()
                emit(
                    {
                        "name": "bulk_download",
                        "bytes": size,
                        "seconds": round(elapsed, 3),
                        "bulk_mb_per_s": round(size / elapsed / 1e6, 3),
                        "packets_per_message": args.packets_per_message,
                        "packets_up": stats["packets_up"],
                        "messages_up": stats["messages_up"],
                        "packets_down": stats["packets_down"],
                    }
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=4)
    parser.add_argument("--pings", type=int, default=10)
    parser.add_argument("--connects", type=int, default=10)
    parser.add_argument("--packets-per-message", type=int, default=1)
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
