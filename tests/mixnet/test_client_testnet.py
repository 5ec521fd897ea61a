"""MixnetClients through the local network's real nodes: GatewayNodes and MixNodes on loopback."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import pytest

from smolmix_cli.mixnet.client.client import ClientConfig, MixnetClient, ReceivedMessage
from smolmix_cli.mixnet.topology.topology import NodeRole, RewardedSet, Topology
from smolmix_cli.testnet.nodes.gateway import GatewayNode
from smolmix_cli.testnet.nodes.mixnode import MixNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from tests.self_signed import TLSPair, self_signed_tls

pytestmark = pytest.mark.anyio_backends("asyncio", "trio")


@dataclass
class Net:
    topology: Topology
    gateways: list[GatewayNode]
    mixnodes: list[MixNode]
    tls: TLSPair | None


@asynccontextmanager
async def running_net(
    *, tls: bool = False, loss: float = 0.0, enforce_zk_nyms: tuple[bool, ...] = ()
) -> AsyncIterator[Net]:
    pair = self_signed_tls() if tls else None
    specs = [NodeSpec.generate(i + 1, NodeRole.MIXNODE, layer=i + 1) for i in range(3)]
    gw_specs = [
        NodeSpec.generate(
            10 + i,
            NodeRole.ENTRY_GATEWAY,
            hostname="localhost" if tls else None,
            wss_port=0 if tls else None,
        )
        for i in range(2)
    ]
    async with anyio.create_task_group() as tg:
        mixnodes = [MixNode(s, loss=loss, rng=random.Random(s.node_id)) for s in specs]
        started = [await tg.start(m.serve) for m in mixnodes]
        gateways = [
            GatewayNode(
                s,
                ssl_context=pair.server if pair else None,
                ping_interval_s=None,
                enforce_zk_nyms=i < len(enforce_zk_nyms) and enforce_zk_nyms[i],
            )
            for i, s in enumerate(gw_specs)
        ]
        started_gw = [await tg.start(g.serve) for g in gateways]
        nodes = {s.node_id: s.to_topology_node() for s in started + started_gw}
        rewarded = RewardedSet(
            epoch_id=1,
            entry_gateways=tuple(s.node_id for s in started_gw),
            layer1=(started[0].node_id,),
            layer2=(started[1].node_id,),
            layer3=(started[2].node_id,),
        )
        topology = Topology(rewarded, nodes, rotation_id=started[0].rotation_id)
        try:
            yield Net(topology, gateways, mixnodes, pair)
        finally:
            for node in [*gateways, *mixnodes]:
                node.stop()
            tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("tls", [False, True])
async def test_100k_message_and_reply_through_the_local_network(tls: bool) -> None:
    config = ClientConfig.fast(keepalive_interval=None)
    async with running_net(tls=tls) as net:
        ctx = net.tls.client if net.tls else None
        gw_a = net.gateways[0].spec.identity.public_bytes
        gw_b = net.gateways[1].spec.identity.public_bytes
        async with (
            MixnetClient.start(net.topology, gateway=gw_a, config=config, ssl_context=ctx) as alice,
            MixnetClient.start(net.topology, gateway=gw_b, config=config, ssl_context=ctx) as bob,
        ):
            request = random.Random(7).randbytes(100 * 1024)
            mid = await alice.send(bob.address, request, reply_surbs=10)
            got = await bob.receive(timeout=60)
            assert got.data == request and got.sender_tag is not None
            await alice.wait_delivered(mid, timeout=60)

            reply = b"thanks, got %d bytes" % len(got.data)
            reply_id = await bob.send_reply(got.sender_tag, reply)
            assert await alice.receive(timeout=30) == ReceivedMessage(reply, None, True)
            await bob.wait_delivered(reply_id, timeout=30)

            fragments = alice.stats.real_packets_sent
            assert fragments > 60 and alice.stats.acks_received == fragments
            # Every packet crossed all three mix layers (data and its ack both).
            for node in net.mixnodes:
                assert node.counters["forwarded"] >= 2 * fragments
            assert net.gateways[1].counters["final_hop"] >= fragments
            assert net.gateways[0].counters["client_packets_forwarded"] >= fragments


@pytest.mark.anyio
async def test_shaped_traffic_with_mix_delays_and_cover() -> None:
    """Nym's traffic shape (Poisson, loop cover, per-hop delays), scaled down in time."""
    config = ClientConfig(
        average_packet_delay=0.005,
        average_ack_delay=0.005,
        message_sending_average_delay=0.005,
        loop_cover_traffic_average_delay=0.05,
        keepalive_interval=None,
    )
    async with (
        running_net() as net,
        MixnetClient.start(net.topology, config=config) as alice,
        MixnetClient.start(net.topology, config=config) as bob,
    ):
        data = random.Random(8).randbytes(10_000)
        mid = await alice.send(bob.address, data)
        assert (await bob.receive(timeout=30)).data == data
        await alice.wait_delivered(mid, timeout=30)
        await anyio.sleep(0.3)
        stats = alice.stats
        assert stats.cover_packets_sent > 20 and stats.cover_received > 10
        assert stats.messages_delivered == 1
        for node in net.mixnodes:
            assert node.counters["delayed"] > 0


@pytest.mark.anyio
async def test_lossy_mix_nodes_are_overcome_by_retransmission() -> None:
    """Each mix node drops 15 % of packets; SURB-ACKs and retransmission deliver anyway."""
    config = ClientConfig.fast(
        keepalive_interval=None,
        ack_wait_addition=0.3,
        max_retransmissions=40,
        reauthenticate_after_register=True,
    )
    async with (
        running_net(loss=0.15) as net,
        MixnetClient.start(net.topology, config=config) as alice,
        MixnetClient.start(net.topology, config=config) as bob,
    ):
        data = random.Random(9).randbytes(30_000)
        mid = await alice.send(bob.address, data)
        assert (await bob.receive(timeout=60)).data == data
        await alice.wait_delivered(mid, timeout=60)
        assert sum(node.counters["dropped_loss"] for node in net.mixnodes) > 0
        assert alice.stats.retransmissions > 0
        assert alice.stats.gateway_connects == 2  # registered, then authenticated
        with pytest.raises(TimeoutError):
            await bob.receive(timeout=0.5)  # retransmitted fragments never duplicate it


@pytest.mark.anyio
async def test_a_zk_nym_only_gateway_is_skipped_for_the_next_one() -> None:
    """The remembered gateway now refuses free bandwidth (its operator set
    enforce_zk_nyms): the client says so, keeps that gateway's key, and lands on the
    other gateway, where traffic flows."""
    from smolmix_cli.mixnet.client.key_store import KeyStore
    from smolmix_cli.mixnet.gateway.session_events import CredentialsRequired

    config = ClientConfig.fast(keepalive_interval=None)
    async with running_net(enforce_zk_nyms=(True, False)) as net:
        refusing = net.gateways[0].spec.identity.public_bytes
        good = net.gateways[1].spec.identity.public_bytes
        store = KeyStore.ephemeral()
        store.set_active_gateway(refusing)
        phases: list[str] = []
        async with (
            MixnetClient.start(
                net.topology, key_store=store, config=config, on_phase=phases.append
            ) as alice,
            MixnetClient.start(net.topology, gateway=good, config=config) as bob,
        ):
            assert alice.address.gateway == good
            [(first, why), (second, outcome)] = alice.gateways_tried
            assert "zk-nym" in why and outcome == "connected"
            assert net.gateways[0].spec.ws_url() in first
            assert net.gateways[1].spec.ws_url() in second
            assert store.active_gateway == good
            # Registered before the claim was refused: that key is kept, not wiped.
            assert store.gateway_key(refusing) is not None
            assert any("skipped" in p and "zk-nym" in p for p in phases)
            await alice.send(bob.address, b"via the second gateway")
            got = await bob.receive(timeout=20)
            assert got.data == b"via the second gateway"

        # Pinned to the refusing gateway alone, the refusal is the error, typed.
        from smolmix_cli.mixnet.gateway.client import GatewayUnavailable

        with pytest.raises(GatewayUnavailable) as info:
            async with MixnetClient.start(net.topology, gateway=refusing, config=config):
                pass
        assert isinstance(info.value.__cause__, CredentialsRequired)
