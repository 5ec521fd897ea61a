"""Tunnel overhead on the local network: one bulk TCP download, TCP connect + first byte,
beside the mixnet round trip to the exit.

In one process: `LocalNetwork(exits=1)` with zero mix delay (its exit IPR, NAT and demo
origin), and a Tunnel with cover and Poisson traffic off. Prints JSON lines.

- `ipr_ping_rtt_ms`: an IPR Ping/Pong = one mixnet round trip client -> exit -> client
  (the reply rides a SURB), median of --pings. This is the floor under every TCP exchange.
- `tcp_connect_ms`: open_tcp to the demo origin's HTTP port (SYN through the exit's NAT);
  `tcp_first_byte_ms`: connect + `GET /` until the first response byte; medians of --connects.
- `bulk_mb_per_s`: one stream, `GET /bytes/N` (--mib MiB), body checked against X-Sha256.

Usage: python bench/tunnel.py [--mib 4] [--pings 10] [--connects 10] [--packets-per-message 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio

from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.tunnel.options import for_local_network
from smolmix_cli.tunnel.tunnel import Tunnel


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def get(tunnel: Tunnel, host: str, path: str) -> tuple[float, float, bytes]:
    """(connect s, first byte s, whole response)."""
    t0 = time.perf_counter()
    stream = await tunnel.open_tcp(host, 80)
    t1 = time.perf_counter()
    await stream.send(f"GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n".encode())
    chunks = [await stream.receive()]
    t2 = time.perf_counter()
    try:
        while True:
            chunks.append(await stream.receive())
    except anyio.EndOfStream:
        pass
    await stream.aclose()
    return t1 - t0, t2 - t0, b"".join(chunks)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalNetwork(LocalNetworkOptions(Path(tmp), mean_delay_ms=0.0, exits=1))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            assert network.demo is not None
            host = network.demo.ipv4
            options = for_local_network(packets_per_message=args.packets_per_message)
            async with Tunnel.open(network, options) as tunnel:
                start = time.perf_counter()
                await tunnel.wait_ready()
                ready_ms = round((time.perf_counter() - start) * 1e3, 1)
                emit({"name": "tunnel_ready", "ready_ms": ready_ms})
                session = tunnel.session
                assert session is not None
                rtts = [await session.link.ping(10) * 1e3 for _ in range(args.pings)]
                emit({"name": "ipr_ping", "ipr_ping_rtt_ms": round(statistics.median(rtts), 2)})
                opens = [await get(tunnel, host, "/") for _ in range(args.connects)]
                emit(
                    {
                        "name": "tcp_open",
                        "tcp_connect_ms": round(statistics.median(o[0] for o in opens) * 1e3, 2),
                        "tcp_first_byte_ms": round(statistics.median(o[1] for o in opens) * 1e3, 2),
                    }
                )
                size = args.mib << 20
                t0 = time.perf_counter()
                _, _, reply = await get(tunnel, host, f"/bytes/{size}")
                elapsed = time.perf_counter() - t0
                head, _, body = reply.partition(b"\r\n\r\n")
                assert len(body) == size, len(body)
                expected = [
                    line.split(b":", 1)[1].strip().decode()
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"x-sha256:")
                ]
                assert expected == [hashlib.sha256(body).hexdigest()]
                snap = tunnel.snapshot()
                emit(
                    {
                        "name": "bulk_download",
                        "bytes": size,
                        "seconds": round(elapsed, 3),
                        "bulk_mb_per_s": round(size / elapsed / 1e6, 3),
                        "packets_per_message": args.packets_per_message,
                        "packets_up": snap.packets_up,
                        "messages_up": snap.messages_up,
                        "packets_down": snap.packets_down,
                    }
                )
            tg.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=4)
    parser.add_argument("--pings", type=int, default=10)
    parser.add_argument("--connects", type=int, default=10)
    parser.add_argument("--packets-per-message", type=int, default=1)
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
