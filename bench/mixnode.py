"""Packets per second a local MixNode processes and forwards over loopback (zero delay).

Pre-built packets (route: the node, then a sink) go down one TCP connection as fast as
the node takes them; the clock stops when the sink has read every forwarded frame. The
sink only counts bytes, so the figure is the node: framing, Sphinx (X25519, HKDF, MAC,
AES-CTR, Lioness), replay tag, link queue and socket writes. `processor_only` runs the
same packets through the sans-io PacketProcessor without sockets, for the shell's share.

Prints one JSON line per measurement. Usage: python bench/mixnode.py [--packets N]
"""

from __future__ import annotations

import argparse
import json
import time

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.keys import X25519KeyPair
from smolmix_cli.mixnet.packet.framing import Frame
from smolmix_cli.mixnet.packet.size import PacketSize, SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import Destination, RouteHop, build_packet
from smolmix_cli.mixnet.topology.topology import NodeRole
from smolmix_cli.testnet.nodes.mixnode import MixNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from smolmix_cli.testnet.nodes.processing import Forward, PacketProcessor, SphinxKey


def build_frames(spec: NodeSpec, sink_port: int, size: PacketSize, count: int) -> list[bytes]:
    sink = RouteHop(
        NodeAddress.from_host_port("127.0.0.1", sink_port).to_bytes(),
        X25519KeyPair.generate().public_bytes,
    )
    route = [spec.route_hop, sink]
    return [
        Frame.for_packet(
            build_packet(route, Destination(bytes(32)), [0, 0], b"bench", size.payload_size)
        ).to_bytes()
        for _ in range(count)
    ]


async def run_node(size: PacketSize, count: int) -> dict[str, object]:
    done = anyio.Event()
    received = 0
    expected = 0

    async def sink_handler(stream: anyio.abc.SocketStream) -> None:
        nonlocal received
        async with stream:
            try:
                while True:
                    received += len(await stream.receive(262144))
                    if received >= expected:
                        done.set()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return

    sink = await anyio.create_tcp_listener(local_host="127.0.0.1")
    sink_port = sink.extra(SocketAttribute.local_port)
    node = MixNode(NodeSpec.generate(1, NodeRole.MIXNODE, layer=1), link_queue=count)
    async with sink, anyio.create_task_group() as tg:
        tg.start_soon(sink.serve, sink_handler)
        spec = await tg.start(node.serve)
        frames = build_frames(spec, sink_port, size, count)
        expected = sum(len(f) for f in frames)
        start = time.perf_counter()
        async with await anyio.connect_tcp("127.0.0.1", spec.mix_port) as stream:
            for i in range(0, count, 64):
                await stream.send(b"".join(frames[i : i + 64]))
            await done.wait()
        elapsed = time.perf_counter() - start
        tg.cancel_scope.cancel()
    assert node.counters["forwarded"] == count, dict(node.counters)
    return {
        "name": f"mixnode_forward_{size.serde_name}",
        "packets": count,
        "packet_bytes": size.size,
        "elapsed_s": round(elapsed, 3),
        "packets_per_s": round(count / elapsed),
        "us_per_packet": round(elapsed / count * 1e6, 1),
    }


def run_processor(size: PacketSize, count: int) -> dict[str, object]:
    spec = NodeSpec.generate(1, NodeRole.MIXNODE, layer=1, mix_port=1789)
    frames = [Frame.for_packet(f[3:]) for f in build_frames(spec, 1790, size, count)]
    processor = PacketProcessor(
        SphinxKey.from_private(spec.sphinx.private_bytes, SphinxKeyRotation.ODD)
    )
    start = time.perf_counter()
    for frame in frames:
        decision = processor.process(frame)
        assert isinstance(decision, Forward)
        decision.frame.to_bytes()
    elapsed = time.perf_counter() - start
    return {
        "name": f"processor_only_{size.serde_name}",
        "packets": count,
        "packet_bytes": size.size,
        "elapsed_s": round(elapsed, 3),
        "packets_per_s": round(count / elapsed),
        "us_per_packet": round(elapsed / count * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packets", type=int, default=3000)
    parser.add_argument("--backend", default="asyncio")
    args = parser.parse_args()
    for size in (PacketSize.REGULAR, PacketSize.ACK):
        print(json.dumps(run_processor(size, args.packets)), flush=True)
        result = anyio.run(run_node, size, args.packets, backend=args.backend)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
