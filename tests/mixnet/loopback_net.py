"""A whole (small) mixnet in the test process: loopback gateways plus in-process Sphinx mixing.

Clients connect over real WebSockets to `LoopbackGateway`s that run the real
gateway protocol; every forwarded MixPacket goes through the SimNet's real
SphinxNodes, and what comes out at a gateway is pushed to its client (or stored
while the client is away). Only the TCP hops between mix nodes are skipped.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.gateway.frames import RequestKind
from smolmix_cli.mixnet.gateway.session import ForwardPacket
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.mixnet.topology.topology import EntryDetails, Topology
from tests.mixnet.gateway_server import LoopbackGateway, run_gateway
from tests.mixnet.simnet import SimNet, build_simnet


@dataclass
class LoopbackNet:
    sim: SimNet
    gateways: list[LoopbackGateway]
    topology: Topology
    drop: Callable[[MixPacket], bool] | None = None
    forwarded: int = 0
    undeliverable: int = 0
    _send: MemoryObjectSendStream[ForwardPacket] | None = field(default=None, repr=False)

    def gateway_by_identity(self, identity: bytes) -> LoopbackGateway:
        for gw in self.gateways:
            if gw.registry.identity_public == identity:
                return gw
        raise KeyError(identity.hex())

    def _on_forward(self, packet: ForwardPacket) -> None:
        assert self._send is not None
        self._send.send_nowait(packet)

    async def _relay(self, receive: MemoryObjectReceiveStream[ForwardPacket]) -> None:
        async for forward in receive:
            self.forwarded += 1
            if forward.kind is RequestKind.FORWARD_SPHINX_V2:
                packet = MixPacket.from_v2_bytes(forward.mix_packet)
            else:
                packet = MixPacket.from_v1_bytes(forward.mix_packet)
            for push in self.sim.route(packet, self.drop):
                gateway = self.gateway_by_identity(push.gateway)
                if push.client not in gateway.registry.clients:
                    self.undeliverable += 1
                    continue
                await gateway.push(push.client, push.plaintext)


@asynccontextmanager
async def loopback_net(gateways: int = 2, seed: int = 3) -> AsyncIterator[LoopbackNet]:
    sim = build_simnet(gateways=gateways, seed=seed)
    send, receive = anyio.create_memory_object_stream[ForwardPacket](math.inf)
    net = LoopbackNet(sim, [], sim.topology)
    net._send = send
    async with anyio.create_task_group() as tg, AsyncExitStack() as stack:
        nodes = dict(sim.topology.nodes)
        for sim_gw in sim.gateways:
            identity = Ed25519PrivateKey.from_private_bytes(sim_gw.identity.private_bytes)
            gw = await stack.enter_async_context(
                run_gateway(LoopbackGateway(identity, net._on_forward))
            )
            net.gateways.append(gw)
            node = sim_gw.node
            nodes[node.node_id] = dataclasses.replace(
                node, entry=EntryDetails(hostname="127.0.0.1", ws_port=gw.port, wss_port=None)
            )
        net.topology = dataclasses.replace(sim.topology, nodes=nodes)
        tg.start_soon(net._relay, receive)
        try:
            yield net
        finally:
            tg.cancel_scope.cancel()
