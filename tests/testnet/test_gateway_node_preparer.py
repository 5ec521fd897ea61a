"""The client's own packet builder and receive path over a local network of real nodes.

MessagePreparer (fragments, SURB-ACKs, Sphinx 259, MixPacket v2 labelled with the
rotation parity) -> sender's gateway -> three mix nodes -> recipient's gateway ->
MessageReceiver reassembles; every SURB-ACK comes back to the sender's gateway and
decrypts to the fragment it acknowledges. Loop cover traffic (Sphinx 258) is
recognised as cover at the sender.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.keys import X25519KeyPair
from smolmix_cli.mixnet.message.message import PlainMessage
from smolmix_cli.mixnet.message.preparer import MessagePreparer
from smolmix_cli.mixnet.message.receiver import (
    AckReceived,
    CoverReceived,
    MessageReceived,
    MessageReceiver,
)
from smolmix_cli.mixnet.topology.topology import NodeRole, RewardedSet, Topology
from smolmix_cli.testnet.nodes.gateway import GatewayNode
from smolmix_cli.testnet.nodes.mixnode import MixNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from tests.testnet.gw_client import GwClient

pytestmark = pytest.mark.anyio

ENTRY, EXIT = 10, 11


@asynccontextmanager
async def local_net() -> AsyncIterator[tuple[Topology, dict[int, MixNode | GatewayNode]]]:
    nodes: dict[int, MixNode | GatewayNode] = {
        i: MixNode(NodeSpec.generate(i, NodeRole.MIXNODE, layer=i)) for i in (1, 2, 3)
    }
    nodes[ENTRY] = GatewayNode(NodeSpec.generate(ENTRY, NodeRole.ENTRY_GATEWAY))
    nodes[EXIT] = GatewayNode(NodeSpec.generate(EXIT, NodeRole.EXIT_GATEWAY))
    async with anyio.create_task_group() as tg:
        specs = [await tg.start(node.serve) for node in nodes.values()]
        topology = Topology(
            RewardedSet(1, (ENTRY,), (EXIT,), (1,), (2,), (3,)),
            {s.node_id: s.to_topology_node() for s in specs},
            rotation_id=specs[0].rotation_id,
        )
        yield topology, nodes
        tg.cancel_scope.cancel()


class Party:
    """A client's keys: identity, encryption key, ack key, and its gateway."""

    def __init__(self, gateway: NodeSpec) -> None:
        self.identity = Ed25519PrivateKey.generate()
        self.encryption = X25519KeyPair.generate()
        self.ack_key = random.randbytes(16)
        self.gateway = gateway
        self.address = Recipient(
            self.identity.public_key().public_bytes_raw(),
            self.encryption.public_bytes,
            gateway.identity.public_bytes,
        )
        self.gw_client = GwClient(gateway.identity.public_bytes, identity=self.identity)
        self.receiver = MessageReceiver(self.encryption.private_bytes, self.ack_key)

    @property
    def url(self) -> str:
        return self.gateway.ws_url() or ""


async def test_message_and_acks_over_the_local_network() -> None:
    async with local_net() as (topology, nodes):
        alice, bob = Party(nodes[ENTRY].spec), Party(nodes[EXIT].spec)
        preparer = MessagePreparer(
            alice.address,
            alice.ack_key,
            rng=random.Random(9),
            average_packet_delay_ns=2_000_000,
            average_ack_delay_ns=2_000_000,
        )
        data = random.Random(1).randbytes(5000)
        prepared = preparer.prepare_message(PlainMessage(data), bob.address, topology)
        assert len(prepared) >= 3
        async with alice.gw_client.connect(alice.url) as a, bob.gw_client.connect(bob.url) as b:
            for fragment in prepared:
                await a.send(fragment.mix_packet.to_v2_bytes())
            cover = preparer.cover_packet(topology)
            await a.send(cover.mix_packet.to_v2_bytes())
            pushed_to_bob = await b.wait_pushes(len(prepared))
            pushed_to_alice = await a.wait_pushes(len(prepared) + 2)  # acks + cover + its ack
    bob_events = [bob.receiver.on_push(p, 0.0) for p in pushed_to_bob]
    [received] = [e for e in bob_events if isinstance(e, MessageReceived)]
    assert received.message == PlainMessage(data)
    alice_events = [alice.receiver.on_push(p, 0.0) for p in pushed_to_alice]
    acked = {e.fragment_id for e in alice_events if isinstance(e, AckReceived)}
    assert {f.fragment_id for f in prepared} | {cover.fragment_id} == acked
    assert sum(isinstance(e, CoverReceived) for e in alice_events) == 1
    assert all(len(p) == 1643 for p in pushed_to_bob)  # regular packet minus the SURB-ACK
