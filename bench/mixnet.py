"""Local-network throughput: one mix node's packets/s, and (with the client) round trips.

Prints JSON lines, one object per measurement.

- `mixnode_packets_per_s`: one MixNode on loopback, zero delays, a recording sink as its
  next hop; pre-built Sphinx packets are written over one TCP connection and timed until
  the sink has them all (Sphinx processing + framing + both sockets).
- `mixnet_rtt_ms`, `client_messages_per_s`, `client_mb_per_s`: a LocalNetwork with zero
  mix delay and a MixnetClient with cover and Poisson traffic off, sending to itself;
  measured only when the client module is present.

Usage: python bench/mixnet.py [--packets 2000] [--messages 50] [--skip-client]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio
import anyio.abc

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.framing import Frame, FrameDecoder
from smolmix_cli.mixnet.keys import X25519KeyPair
from smolmix_cli.mixnet.packet_size import FrameVersion, PacketSize, SphinxKeyRotation
from smolmix_cli.mixnet.sphinx import Destination, RouteHop, build_packet
from smolmix_cli.mixnet.topology import NodeRole
from smolmix_cli.testnet.mixnode import MixNode
from smolmix_cli.testnet.node_spec import NodeSpec


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


async def client_measurements(messages: int) -> list[dict[str, Any]]:
    try:
        from smolmix_cli.cli.ping import bench_client  # needs the mixnet client
    except ImportError as exc:
        return [{"name": "client_skipped", "reason": str(exc)}]
    from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions

    with tempfile.TemporaryDirectory() as tmp:
        local = LocalNetwork(LocalNetworkOptions(Path(tmp), mean_delay_ms=0.0))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            results = await bench_client(network, messages)
            tg.cancel_scope.cancel()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--skip-client", action="store_true")
    args = parser.parse_args()
    emit(anyio.run(mixnode_rate, args.packets))
    if not args.skip_client:
        for record in anyio.run(client_measurements, args.messages):
            emit(record)


if __name__ == "__main__":
    main()
