"""MixnetClient end to end: real WebSockets, real gateway protocol, real Sphinx mixing."""

from __future__ import annotations

import random
from dataclasses import fields
from pathlib import Path

import anyio
import pytest

from smolmix_cli.mixnet.client.client import (
    ClientConfig,
    DeliveryFailed,
    MixnetClient,
    NoReplySurbs,
    ReceivedMessage,
    choose_gateway,
    gateway_url,
)
from smolmix_cli.mixnet.client.core import CoreConfig, InvalidConfig
from smolmix_cli.mixnet.client.key_store import KeyStore
from smolmix_cli.mixnet.packet.size import PacketSize
from smolmix_cli.mixnet.topology.topology import NoUsableRoute
from tests.mixnet.loopback_net import loopback_net

FAST = ClientConfig.fast(keepalive_interval=None)


pytestmark = pytest.mark.anyio_backends("asyncio", "trio")


@pytest.mark.anyio
async def test_two_clients_exchange_100k_and_a_reply_through_surbs() -> None:
    async with loopback_net() as net:
        gw_a = net.sim.gateways[0].node.identity
        gw_b = net.sim.gateways[1].node.identity
        async with (
            MixnetClient.start(net.topology, gateway=gw_a, config=FAST) as alice,
            MixnetClient.start(net.topology, gateway=gw_b, config=FAST) as bob,
        ):
            assert alice.address.gateway == gw_a and bob.address.gateway == gw_b
            request = random.Random(1).randbytes(100 * 1024)
            mid = await alice.send(bob.address, request, reply_surbs=20)
            got = await bob.receive(timeout=30)
            assert got.data == request and got.sender_tag is not None and not got.via_reply
            await alice.wait_delivered(mid, timeout=30)
            assert bob.reply_surbs_available(got.sender_tag) == 20

            reply = random.Random(2).randbytes(5000)
            reply_id = await bob.send_reply(got.sender_tag, reply)
            answer = await alice.receive(timeout=30)
            assert answer == ReceivedMessage(reply, None, True)
            await bob.wait_delivered(reply_id, timeout=30)
            assert bob.reply_surbs_available(got.sender_tag) < 20

            a, b = alice.stats, bob.stats
            assert a.messages_delivered == 1 and b.messages_delivered == 1
            assert (
                a.real_packets_sent == a.acks_received > 60
            )  # 100 KiB + 20 SURBs in ~1.6 KB fragments
            assert a.retransmissions == 0 and a.cover_packets_sent == 0
            assert b.messages_received == 1 and a.messages_received == 1
            assert a.gateway_connects == 1 and a.bandwidth_remaining > 0

            with pytest.raises(NoReplySurbs):
                await bob.send_reply(b"\x01" * 16, b"nobody gave me surbs")

            # Bob asks Alice for more SURBs; they arrive under the same tag.
            before = bob.reply_surbs_available(got.sender_tag)
            await bob.request_reply_surbs(got.sender_tag, 30)
            with anyio.fail_after(30):
                while bob.reply_surbs_available(got.sender_tag) != before - 1 + 30:
                    await anyio.sleep(0.01)
            assert alice.stats.surb_requests_served == 1


@pytest.mark.anyio
async def test_lost_acks_are_retransmitted_until_delivered() -> None:
    async with loopback_net() as net:
        dropped = 0

        def drop_two_acks(packet: object) -> bool:
            nonlocal dropped
            from smolmix_cli.mixnet.packet.mix_packet import MixPacket

            assert isinstance(packet, MixPacket)
            if len(packet.packet) == PacketSize.ACK.size and dropped < 2:
                dropped += 1
                return True
            return False

        net.drop = drop_two_acks
        config = ClientConfig.fast(keepalive_interval=None, ack_wait_addition=0.2)
        async with (
            MixnetClient.start(net.topology, config=config) as alice,
            MixnetClient.start(net.topology, config=config) as bob,
        ):
            mid = await alice.send(bob.address, b"are you there?")
            await alice.wait_delivered(mid, timeout=10)
            assert alice.stats.retransmissions == 2
            assert (await bob.receive(timeout=5)).data == b"are you there?"
            with pytest.raises(TimeoutError):
                await bob.receive(timeout=0.3)  # duplicates are not delivered twice


@pytest.mark.anyio
async def test_delivery_failure_is_reported() -> None:
    async with loopback_net() as net:
        net.drop = lambda packet: len(packet.packet) == PacketSize.ACK.size
        config = ClientConfig.fast(
            keepalive_interval=None, ack_wait_addition=0.05, max_retransmissions=2
        )
        async with (
            MixnetClient.start(net.topology, config=config) as alice,
            MixnetClient.start(net.topology, config=config) as bob,
        ):
            mid = await alice.send(bob.address, b"x")
            with pytest.raises(DeliveryFailed):
                await alice.wait_delivered(mid, timeout=10)
            assert alice.stats.messages_failed == 1 and alice.stats.retransmissions == 2


@pytest.mark.anyio
async def test_traffic_shaping_and_cover_run_in_real_time() -> None:
    async with loopback_net() as net:
        config = ClientConfig(
            average_packet_delay=0.0,
            average_ack_delay=0.0,
            message_sending_average_delay=0.01,
            loop_cover_traffic_average_delay=0.05,
            keepalive_interval=None,
        )
        async with (
            MixnetClient.start(net.topology, config=config) as alice,
            MixnetClient.start(net.topology, config=FAST) as bob,
        ):
            await anyio.sleep(0.3)
            mid = await alice.send(bob.address, b"shaped")
            assert (await bob.receive(timeout=10)).data == b"shaped"
            await alice.wait_delivered(mid, timeout=10)
            await anyio.sleep(0.2)
            stats = alice.stats
            assert stats.cover_packets_sent > 10 and stats.cover_received > 5
            assert stats.real_packets_sent == 1
            # Bob sends nothing on his own.
            assert bob.stats.packets_sent == 0


@pytest.mark.anyio
async def test_persistent_keys_keep_the_address_and_survive_gateway_drops(
    tmp_path: Path,
) -> None:
    async with loopback_net() as net:
        store_dir = tmp_path / "alice"
        async with MixnetClient.start(
            net.topology, key_store=KeyStore.open(store_dir), config=FAST
        ) as alice:
            first_address = alice.address
        gateway = net.gateway_by_identity(first_address.gateway)
        assert gateway.registered == [first_address.identity]
        async with (
            MixnetClient.start(
                net.topology, key_store=KeyStore.open(store_dir), config=FAST
            ) as alice,
            MixnetClient.start(net.topology, config=FAST) as bob,
        ):
            assert alice.address == first_address
            assert gateway.authenticated == [first_address.identity]  # no second registration
            # The gateway drops Alice; Bob's message waits at the gateway, Alice reconnects.
            await gateway.drop_client(first_address.identity)
            mid = await bob.send(alice.address, b"while you were out")
            assert (await alice.receive(timeout=10)).data == b"while you were out"
            await bob.wait_delivered(mid, timeout=10)
            assert alice.stats.gateway_connection_losses == 1
            assert alice.stats.gateway_connects >= 2
            # Reconnected with the stored key, never registered again.
            assert gateway.registered.count(first_address.identity) == 1


def test_gateway_choice_and_url() -> None:
    from tests.mixnet.simnet import build_simnet

    sim = build_simnet(gateways=3)
    best = sim.gateways[0].node  # performance 0.95, the others lower
    assert choose_gateway(sim.topology) in [g.node for g in sim.gateways]
    other = sim.gateways[2].node
    assert choose_gateway(sim.topology, explicit=other.identity) == other
    assert choose_gateway(sim.topology, remembered=other.identity) == other
    assert choose_gateway(sim.topology, remembered=b"\x00" * 32) != sim.topology.layer(1)[0]
    with pytest.raises(NoUsableRoute):
        choose_gateway(sim.topology, explicit=b"\x00" * 32)
    mix = sim.topology.layer(1)[0]
    with pytest.raises(NoUsableRoute):
        choose_gateway(sim.topology, explicit=mix.identity)
    assert gateway_url(best) == f"ws://{best.ip_addresses[0]}:9000/"
    import dataclasses

    from smolmix_cli.mixnet.topology.topology import EntryDetails

    tls = dataclasses.replace(best, entry=EntryDetails("gw.example", 9000, 9001))
    assert gateway_url(tls) == "wss://gw.example:9001/"

    # A gateway that also mixes is passed over while another gateway exists.
    from smolmix_cli.mixnet.topology.topology import SupportedRoles

    nodes = dict(sim.topology.nodes)
    nodes[best.node_id] = dataclasses.replace(
        best, supported_roles=SupportedRoles(mixnode=True, entry=True)
    )
    mixed = dataclasses.replace(sim.topology, nodes=nodes)
    for seed in range(20):
        assert choose_gateway(mixed, rng=random.Random(seed)) != nodes[best.node_id]


@pytest.mark.anyio
async def test_gateway_outage_pauses_retransmission_instead_of_failing() -> None:
    async with loopback_net() as net:
        config = ClientConfig.fast(
            keepalive_interval=None, ack_wait_addition=0.1, max_retransmissions=1
        )
        async with (
            MixnetClient.start(net.topology, config=config) as alice,
            MixnetClient.start(net.topology, config=FAST) as bob,
        ):
            gateway = net.gateway_by_identity(alice.address.gateway)
            gateway.refuse = True
            await gateway.drop_client(alice.address.identity)
            with anyio.fail_after(5):
                while alice.stats.gateway_connection_losses == 0:
                    await anyio.sleep(0.01)
            mid = await alice.send(bob.address, b"sent during the outage")
            await anyio.sleep(1.0)  # ten ack waits: without the pause the message would fail
            gateway.refuse = False
            await alice.wait_delivered(mid, timeout=20)
            assert (await bob.receive(timeout=5)).data == b"sent during the outage"
            assert alice.stats.retransmissions == 0 and alice.stats.messages_failed == 0


@pytest.mark.anyio
async def test_topology_refresh_comes_early_for_a_predicted_key_rotation() -> None:
    import dataclasses
    import time

    from smolmix_cli.mixnet.topology.topology import ROTATION_REFRESH_MARGIN, Topology

    async with loopback_net() as net:
        # key-rotation-info says the next rotation starts in 0.3 s; the interval is long
        soon = time.time() + 0.3 - ROTATION_REFRESH_MARGIN
        first = dataclasses.replace(net.topology, next_rotation_at=soon)
        after = dataclasses.replace(net.topology, rotation_id=11, next_rotation_at=soon + 3600)
        calls: list[float] = []

        async def source() -> Topology:
            calls.append(time.time())
            return after

        config = ClientConfig.fast(keepalive_interval=None, topology_refresh_interval=60.0)
        async with MixnetClient.start(first, config=config, topology_source=source) as alice:
            with anyio.fail_after(5):
                while alice.topology_refreshes < 1:
                    await anyio.sleep(0.01)
            assert alice._core.topology.rotation_id == 11
            await anyio.sleep(0.5)
            assert len(calls) == 1  # then back to the interval, no busy loop


@pytest.mark.anyio
async def test_topology_refresh_keeps_only_usable_topologies() -> None:
    import dataclasses

    from smolmix_cli.mixnet.topology.topology import RewardedSet, Topology

    async with loopback_net() as net:
        good = dataclasses.replace(net.topology, rotation_id=7)
        empty = Topology(RewardedSet(epoch_id=2), {}, 0)
        answers: list[Topology | Exception] = [empty, good, NoUsableRoute("directory down")]

        async def source() -> Topology:
            answer = answers.pop(0) if answers else good
            if isinstance(answer, Exception):
                raise answer
            return answer

        config = ClientConfig.fast(keepalive_interval=None, topology_refresh_interval=0.05)
        async with (
            MixnetClient.start(net.topology, config=config, topology_source=source) as alice,
            MixnetClient.start(net.topology, config=FAST) as bob,
        ):
            with anyio.fail_after(5):
                while alice.topology_refreshes < 2:
                    await anyio.sleep(0.01)
            assert alice.topology_refresh_failures == 2  # the empty one and the error
            assert alice._core.topology.rotation_id == 7
            mid = await alice.send(bob.address, b"after refresh")
            assert (await bob.receive(timeout=10)).data == b"after refresh"
            await alice.wait_delivered(mid, timeout=10)


def test_client_config_is_the_core_config_with_nyms_defaults() -> None:
    # The client's settings extend the core's (one definition each, nothing copied that
    # could drift); the client hands its config to the core as it is.
    assert issubclass(ClientConfig, CoreConfig)
    assert {f.name for f in fields(CoreConfig)} < {f.name for f in fields(ClientConfig)}
    assert {f.name: getattr(ClientConfig(), f.name) for f in fields(ClientConfig)} == {
        "poisson": True,
        "cover": True,
        "poisson_cover": True,
        "message_sending_average_delay": 0.020,
        "loop_cover_traffic_average_delay": 0.200,
        "ack_wait_multiplier": 1.5,
        "ack_wait_addition": 1.5,
        "ack_wait_floor": None,
        "loss_detection_window": None,
        "max_retransmissions": 20,
        "reply_retransmission_reserve": 0,
        "reply_surb_request_threshold": 0,
        "reply_surb_request_amount": 20,
        "max_reply_surbs_per_request": 500,
        "max_reply_surbs_per_tag": 1000,
        "max_reply_surb_tags": 64,
        "reply_surb_tag_idle": 600.0,
        "average_packet_delay": 0.015,
        "average_ack_delay": 0.015,
        "packet_size": PacketSize.REGULAR,
        "connect_timeout": 10.0,
        "reconnect_max_delay": 30.0,
        "max_reconnect_attempts": None,
        "keepalive_interval": 30.0,
        "reauthenticate_after_register": False,
        "topology_refresh_interval": 300.0,
        "gateway_attempts": 10,
        "gateway_budget": 30.0,
        "gateway_attempt_timeout": 6.0,
    }
    with pytest.raises(InvalidConfig):
        ClientConfig(ack_wait_addition=-1.0)  # the core's checks run where the config is made
