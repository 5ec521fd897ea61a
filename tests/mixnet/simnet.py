"""An in-process mixnet for client tests: real Sphinx processing, no sockets.

Fresh node keys, a Topology naming them, and `route()` that carries a MixPacket
hop by hop with `SphinxNode` to its final gateway, which does what a gateway
does (spec 2.9): ack-size packets push their 21-byte plaintext; otherwise the
first 405 bytes become the SURB-ACK, which is routed on, and the rest is
pushed to the destination client.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.keys import Ed25519KeyPair, X25519KeyPair
from smolmix_cli.mixnet.message.ack import SurbAck
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.mixnet.packet.payload import SURB_ACK_SIZE
from smolmix_cli.mixnet.packet.size import PacketSize, PacketType
from smolmix_cli.mixnet.packet.sphinx import FinalHop, SphinxNode
from smolmix_cli.mixnet.topology.topology import (
    EntryDetails,
    Node,
    NodeRole,
    RewardedSet,
    SupportedRoles,
    Topology,
)


@dataclass
class SimNode:
    node: Node
    sphinx: SphinxNode
    identity: Ed25519KeyPair


@dataclass(frozen=True)
class Push:
    """A message a gateway pushes to one of its clients."""

    gateway: bytes
    client: bytes
    plaintext: bytes


@dataclass
class SimNet:
    topology: Topology
    nodes: dict[str, SimNode]
    gateways: list[SimNode]
    hops_processed: int = 0
    dropped: int = 0
    seen_final: list[FinalHop] = field(default_factory=list)

    def route(
        self, packet: MixPacket, drop: Callable[[MixPacket], bool] | None = None
    ) -> list[Push]:
        """Everything the gateways push because of `packet` (its ack included)."""
        out: list[Push] = []
        todo = [packet]
        while todo:
            current = todo.pop()
            if drop is not None and drop(current):
                self.dropped += 1
                continue
            address, data = str(current.next_hop), current.packet
            while True:
                sim = self.nodes[address]
                result = sim.sphinx.process(data)
                self.hops_processed += 1
                if isinstance(result, FinalHop):
                    break
                address = str(NodeAddress.from_bytes(result.next_hop))
                data = result.packet
            plaintext = result.plaintext()
            gateway = sim.node.identity
            if len(data) == PacketSize.ACK.size:
                out.append(Push(gateway, result.destination, plaintext))
                continue
            ack = SurbAck.from_bytes(plaintext[:SURB_ACK_SIZE])
            out.append(Push(gateway, result.destination, plaintext[SURB_ACK_SIZE:]))
            todo.append(MixPacket(ack.first_hop, ack.packet, PacketType.MIX, current.key_rotation))
        return out


def build_simnet(
    per_layer: int = 2, gateways: int = 2, seed: int = 1, ws_port: int = 9000
) -> SimNet:
    rng = random.Random(seed)
    nodes: dict[str, SimNode] = {}
    by_id: dict[int, Node] = {}
    layers: dict[int, list[int]] = {1: [], 2: [], 3: []}
    gateway_ids: list[int] = []
    node_id = 0

    def make(role: NodeRole, layer: int | None, perf: Decimal) -> SimNode:
        nonlocal node_id
        node_id += 1
        sphinx_key = X25519KeyPair.from_private_bytes(rng.randbytes(32))
        identity = Ed25519KeyPair.from_private_bytes(rng.randbytes(32))
        ip = ipaddress.IPv4Address(f"127.0.{node_id // 250}.{node_id % 250 + 1}")
        entry = (
            EntryDetails(hostname=None, ws_port=ws_port, wss_port=None)
            if role is not NodeRole.MIXNODE
            else None
        )
        node = Node(
            node_id=node_id,
            identity=identity.public_bytes,
            sphinx_key=sphinx_key.public_bytes,
            ip_addresses=(ip,),
            mix_port=1789,
            role=role,
            layer=layer,
            performance=perf,
            supported_roles=SupportedRoles(
                mixnode=role is NodeRole.MIXNODE, entry=entry is not None
            ),
            entry=entry,
        )
        sim = SimNode(node, SphinxNode(sphinx_key.private_bytes), identity)
        nodes[str(node.address)] = sim
        by_id[node_id] = node
        return sim

    for layer in (1, 2, 3):
        for _ in range(per_layer):
            layers[layer].append(make(NodeRole.MIXNODE, layer, Decimal("0.9")).node.node_id)
    gws = []
    for i in range(gateways):
        sim = make(NodeRole.ENTRY_GATEWAY, None, Decimal("0.95") - Decimal(i) / 100)
        gateway_ids.append(sim.node.node_id)
        gws.append(sim)
    rewarded = RewardedSet(
        epoch_id=1,
        entry_gateways=tuple(gateway_ids),
        layer1=tuple(layers[1]),
        layer2=tuple(layers[2]),
        layer3=tuple(layers[3]),
    )
    return SimNet(Topology(rewarded, by_id, rotation_id=0), nodes, gws)
