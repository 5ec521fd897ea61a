"""Client-side costs: WebSocket echo over loopback, message preparation, and a whole
MixnetClient round through real local nodes (GatewayNode + three MixNodes, no mix delays).

Prints one JSON line per measurement.
Usage: python bench/mixnet_client.py [--size-kib N] [--rounds R] [--backend asyncio|trio]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from typing import Any

import anyio
import anyio.abc

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.client.client import ClientConfig, MixnetClient
from smolmix_cli.mixnet.client.core import ClientCore, CoreConfig
from smolmix_cli.mixnet.client.key_store import ClientKeys
from smolmix_cli.mixnet.message.preparer import MessagePreparer
from smolmix_cli.mixnet.message.receiver import MessageReceiver
from smolmix_cli.mixnet.topology.topology import NodeRole, RewardedSet, Topology
from smolmix_cli.testnet.nodes.gateway import GatewayNode
from smolmix_cli.testnet.nodes.mixnode import MixNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from smolmix_cli.websocket import (
    WebSocketClosed,
    WebSocketConnection,
    connect_websocket,
    serve_websocket_connection,
)

FRAME = 2452  # a ForwardSphinxV2 binary frame for a regular packet (spec 3.6)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def bench_websocket(count: int) -> None:
    async def echo(stream: anyio.abc.SocketStream) -> None:
        conn = await serve_websocket_connection(stream)
        try:
            while True:
                message = await conn.receive()
                assert isinstance(message, bytes)
                await conn.send_binary(message)
        except WebSocketClosed:
            pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo)
        client: WebSocketConnection = await connect_websocket(f"ws://127.0.0.1:{port}/")
        payload = os.urandom(FRAME)
        start = time.perf_counter()

        async def sender() -> None:
            for _ in range(count):
                await client.send_binary(payload)

        tg.start_soon(sender)
        for _ in range(count):
            await client.receive()
        elapsed = time.perf_counter() - start
        await client.aclose()
        tg.cancel_scope.cancel()
    emit(
        name="websocket_echo_loopback",
        messages=count,
        message_bytes=FRAME,
        messages_per_s=round(count / elapsed),
        mib_per_s_each_way=round(count * FRAME / elapsed / 2**20, 2),
    )


def bench_prepare(topology: Topology, size: int) -> None:
    keys = ClientKeys.generate()
    gateway = topology.gateways()[0].identity
    me = Recipient(keys.identity.public_bytes, keys.encryption.public_bytes, gateway)
    core = ClientCore(
        MessagePreparer(me, keys.ack_key),
        MessageReceiver(keys.encryption.private_bytes, keys.ack_key),
        topology,
        config=CoreConfig(poisson=False, cover=False),
    )
    data = os.urandom(size)
    start = time.perf_counter()
    core.send_message(me, data, now=0.0)
    fragments = 0
    while core.poll_transmit(0.0) is not None:  # each: Sphinx data packet + SURB-ACK packet
        fragments += 1
    elapsed = time.perf_counter() - start
    emit(
        name="client_prepare_message",
        message_bytes=size,
        fragments=fragments,
        ms=round(elapsed * 1000, 1),
        fragments_per_s=round(fragments / elapsed),
    )


async def bench_end_to_end(size: int, rounds: int) -> None:
    specs = [NodeSpec.generate(i + 1, NodeRole.MIXNODE, layer=i + 1) for i in range(3)]
    gw_specs = [NodeSpec.generate(10 + i, NodeRole.ENTRY_GATEWAY) for i in range(2)]
    async with anyio.create_task_group() as tg:
        mixnodes = [MixNode(s) for s in specs]
        started = [await tg.start(m.serve) for m in mixnodes]
        gateways = [GatewayNode(s, ping_interval_s=None) for s in gw_specs]
        started_gw = [await tg.start(g.serve) for g in gateways]
        topology = Topology(
            RewardedSet(
                epoch_id=1,
                entry_gateways=tuple(s.node_id for s in started_gw),
                layer1=(started[0].node_id,),
                layer2=(started[1].node_id,),
                layer3=(started[2].node_id,),
            ),
            {s.node_id: s.to_topology_node() for s in started + started_gw},
            rotation_id=started[0].rotation_id,
        )
        bench_prepare(topology, size)
        config = ClientConfig.fast(keepalive_interval=None)
        a_gw, b_gw = (s.identity.public_bytes for s in started_gw)
        async with (
            MixnetClient.start(topology, gateway=a_gw, config=config) as alice,
            MixnetClient.start(topology, gateway=b_gw, config=config) as bob,
        ):
            data = random.Random(1).randbytes(size)
            for i in range(rounds):
                start = time.perf_counter()
                mid = await alice.send(bob.address, data)
                got = await bob.receive(timeout=120)
                received = time.perf_counter() - start
                await alice.wait_delivered(mid, timeout=120)
                acked = time.perf_counter() - start
                assert got.data == data
                emit(
                    name="client_end_to_end_local_nodes",
                    round=i,
                    message_bytes=size,
                    received_ms=round(received * 1000, 1),
                    all_acked_ms=round(acked * 1000, 1),
                    kib_per_s=round(size / 1024 / received, 1),
                )
        for node in [*gateways, *mixnodes]:
            node.stop()
        tg.cancel_scope.cancel()


async def main_async(args: argparse.Namespace) -> None:
    await bench_websocket(args.ws_messages)
    await bench_end_to_end(args.size_kib * 1024, args.rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-kib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ws-messages", type=int, default=5000)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    anyio.run(main_async, args, backend=args.backend)


if __name__ == "__main__":
    main()
