"""The exit IPR end to end on a local network with zero mix delay: what one tunnel gets.

A minimal client tunnel (IprClient + NetStack over a MixnetClient, as the tests
use) connects to the exit IPR; then TCP connect time, ICMP and DNS round trips
and download throughput from the demo origin through the exit's NAT. All nodes,
the exit and the client share this one Python process, so the figures are CPU
bound (Sphinx) and say how much the exit shell costs on top. Prints one JSON
object per measurement. Run from the repository root:
    .venv/bin/python bench/exit_ipr.py [--sizes 262144,1048576] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

import anyio
from dnslib import DNSRecord

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.testnet.exit_tunnel import exit_net, mini_tunnel, read_all


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def main(sizes: list[int], repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with exit_net(Path(tmp)) as net:
            start = time.perf_counter()
            async with mini_tunnel(net.client, net.ipr()) as tunnel:
                emit(name="ipr_connect", seconds=round(time.perf_counter() - start, 4))
                runner = tunnel.runner
                demo = net.network.demo
                assert runner is not None and demo is not None
                address = IPv4Address(demo.ipv4)
                for _ in range(repeat):
                    rtt = await runner.ping(address, timeout=10)
                    emit(name="icmp_echo_rtt", ms=round(rtt * 1000, 2))
                    udp = runner.bind_udp()
                    query = DNSRecord.question(demo.zone, "A").pack()
                    t0 = time.perf_counter()
                    await udp.sendto(query, address, 53)
                    await udp.receive()
                    emit(name="dns_udp_rtt", ms=round((time.perf_counter() - t0) * 1000, 2))
                    await udp.aclose()
                    t0 = time.perf_counter()
                    stream = await runner.connect_tcp(address, 80)
                    emit(name="tcp_connect", ms=round((time.perf_counter() - t0) * 1000, 2))
                    await stream.aclose()
                for size in sizes:
                    for _ in range(repeat):
                        t0 = time.perf_counter()
                        stream = await runner.connect_tcp(address, 80)
                        await stream.send(
                            b"GET /bytes/%d HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"
                            % size
                        )
                        body = await read_all(stream)
                        seconds = time.perf_counter() - t0
                        assert len(body) > size
                        emit(
                            name="http_download",
                            bytes=size,
                            seconds=round(seconds, 3),
                            kib_per_s=round(size / 1024 / seconds, 1),
                        )
                stats = net.local.exits[2].stats()
                emit(
                    name="exit_counters",
                    replies_sent=stats.get("exit_replies sent", 0),
                    surb_requests_sent=stats.get("exit_surb requests sent", 0),
                    replies_without_surbs=stats.get("exit_reply dropped (no surbs)", 0),
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="262144,1048576")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    anyio.run(main, [int(s) for s in args.sizes.split(",")], args.repeat)
