"""Local-network throughput: one mix node's packets/s, and (with the client) round trips.

Prints JSON lines, one object per measurement.

- `mixnode_packets_per_s`: one MixNode on loopback, zero delays, a recording sink as its
  next hop; pre-built Sphinx packets are written over one TCP connection and timed until
  the sink has them all (Sphinx processing + framing + both sockets).
- `mixnet_rtt_ms`, `client_messages_per_s`, `client_mb_per_s`: `smolmix testnet up` in
  its own process with zero mix delay and a MixnetClient with cover and Poisson traffic off,
  sending to itself; the bulk transfer is measured again paced by Poisson sending
  (3 ms mean), which avoids retransmitting packets still queued in the client.

`--network-processes N` runs that network as `testnet up --processes N` (its nodes spread
over N processes; bench/network_cpu.py compares layouts side by side).

Usage: python bench/mixnet.py [--packets 2000] [--messages 50] [--bulk-kib 256] [--skip-client]
           [--network-processes 1]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio
import anyio.abc

from smolmix_cli.config import Network, load_network_file
from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.keys import X25519KeyPair
from smolmix_cli.mixnet.packet.framing import Frame, FrameDecoder
from smolmix_cli.mixnet.packet.size import FrameVersion, PacketSize, SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import Destination, RouteHop, build_packet
from smolmix_cli.mixnet.topology.topology import NodeRole
from smolmix_cli.testnet.nodes.mixnode import MixNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


async def mixnode_rate(count: int) -> dict[str, Any]:
    received = 0
    done = anyio.Event()

    async def sink(stream: anyio.abc.SocketStream) -> None:
        nonlocal received
        decoder = FrameDecoder()
        async with stream:
            while True:
                try:
                    data = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                received += len(decoder.feed(data))
                if received >= count:
                    done.set()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    sink_port = listener.extra(anyio.abc.SocketAttribute.local_port)
    sink_hop = RouteHop(
        NodeAddress.from_host_port("127.0.0.1", sink_port).to_bytes(),
        X25519KeyPair.generate().public_bytes,
    )
    spec = NodeSpec.generate(1, NodeRole.MIXNODE, layer=1)
    node = MixNode(spec, max_queue=count + 10, link_queue=count + 10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, sink)
        started = await tg.start(node.serve)
        route = [started.route_hop, sink_hop]
        frames = [
            Frame.for_packet(
                build_packet(
                    route, Destination(bytes(32)), [0, 0], b"bench", PacketSize.REGULAR.payload_size
                ),
                key_rotation=SphinxKeyRotation.UNKNOWN,
                version=FrameVersion.INITIAL,
            ).to_bytes()
            for _ in range(count)
        ]
        blob = b"".join(frames)
        async with await anyio.connect_tcp("127.0.0.1", started.mix_port) as stream:
            start = time.perf_counter()
            await stream.send(blob)
            with anyio.fail_after(120):
                await done.wait()
            elapsed = time.perf_counter() - start
        tg.cancel_scope.cancel()
    return {
        "name": "mixnode_packets_per_s",
        "packets": count,
        "seconds": round(elapsed, 4),
        "packets_per_s": round(count / elapsed, 1),
        "mb_per_s": round(len(blob) / elapsed / 1e6, 3),
        "dropped": sum(v for k, v in node.counters.items() if k.startswith("dropped_")),
    }


@contextmanager
def network_process(state_dir: Path, processes: int = 1) -> Iterator[Network]:
    """`smolmix testnet up` in its own process(es), zero mix delay."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smolmix_cli",
            "testnet",
            "up",
            "--dir",
            str(state_dir),
            "--mix-delay-ms",
            "0",
            "--processes",
            str(processes),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        path = state_dir / "network.json"
        deadline = time.monotonic() + 30
        while not path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the local network did not start")
            time.sleep(0.05)
        yield load_network_file(path, name="testnet")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def client_measurements(
    messages: int, bulk_kib: int, processes: int = 1
) -> list[dict[str, Any]]:
    from smolmix_cli.bootstrap import fetch_topology, start_client
    from smolmix_cli.mixnet.client.client import ClientConfig

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, network_process(Path(tmp), processes) as network:
        async with anyio.create_task_group() as tg:
            topology = await fetch_topology(network, 10)
            fast = ClientConfig.fast()  # cover and Poisson off, zero delays
            async with start_client(network, topology, config=fast) as client:
                # round trip of one small message to ourselves, one at a time
                rtts = []
                for i in range(20):
                    start = time.perf_counter()
                    await client.send(client.address, b"rtt %d" % i)
                    await client.receive(timeout=30)
                    rtts.append((time.perf_counter() - start) * 1000)
                rtts.sort()
                results.append(
                    {
                        "name": "mixnet_rtt_ms",
                        "samples": len(rtts),
                        "median_ms": round(rtts[len(rtts) // 2], 2),
                        "min_ms": round(rtts[0], 2),
                        "p90_ms": round(rtts[int(len(rtts) * 0.9)], 2),
                    }
                )
                # small messages, all queued at once, until every one came back
                payload = bytes(1000)
                start = time.perf_counter()
                for _ in range(messages):
                    await client.send(client.address, payload)
                for _ in range(messages):
                    await client.receive(timeout=60)
                elapsed = time.perf_counter() - start
                results.append(
                    {
                        "name": "client_messages_per_s",
                        "messages": messages,
                        "message_bytes": len(payload),
                        "seconds": round(elapsed, 3),
                        "messages_per_s": round(messages / elapsed, 1),
                    }
                )
            for label, config in (
                ("no_pacing", fast),
                (
                    "poisson_3ms",
                    ClientConfig.fast(poisson=True, message_sending_average_delay=0.003),
                ),
            ):
                async with start_client(network, topology, config=config) as client:
                    data = bytes(bulk_kib * 1024)
                    start = time.perf_counter()
                    await client.send(client.address, data)
                    got = await client.receive(timeout=120)
                    elapsed = time.perf_counter() - start
                    assert got.data == data
                    results.append(
                        {
                            "name": "client_mb_per_s",
                            "pacing": label,
                            "message_bytes": len(data),
                            "seconds": round(elapsed, 3),
                            "mb_per_s": round(len(data) / elapsed / 1e6, 3),
                            "packets_sent": client.stats.packets_sent,
                            "retransmissions": client.stats.retransmissions,
                        }
                    )
            tg.cancel_scope.cancel()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--bulk-kib", type=int, default=256)
    parser.add_argument("--skip-client", action="store_true")
    parser.add_argument("--network-processes", type=int, default=1)
    args = parser.parse_args()
    emit(anyio.run(mixnode_rate, args.packets))
    if not args.skip_client:
        for record in anyio.run(
            client_measurements, args.messages, args.bulk_kib, args.network_processes
        ):
            emit({**record, "network_processes": args.network_processes})


if __name__ == "__main__":
    main()
