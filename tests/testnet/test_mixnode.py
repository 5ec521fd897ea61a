"""MixNode over real loopback sockets: Sphinx forwarding, delays, replay, loss, bad input."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from smolmix_cli.mixnet.keys import X25519KeyPair
from smolmix_cli.mixnet.packet.size import FrameVersion, PacketSize, SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import FinalHop, ForwardHop, SphinxNode
from smolmix_cli.mixnet.topology.topology import NodeRole
from smolmix_cli.testnet.nodes.mixnode import MixNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from tests.testnet.nodes_util import FrameSink, frame_bytes, hops, make_packet, send_raw

pytestmark = [pytest.mark.anyio, pytest.mark.anyio_backends("asyncio", "trio")]


def mix_specs(count: int = 3) -> list[NodeSpec]:
    return [NodeSpec.generate(i + 1, NodeRole.MIXNODE, layer=min(i + 1, 3)) for i in range(count)]


@asynccontextmanager
async def running(
    nodes: list[MixNode], sink: FrameSink | None = None
) -> AsyncIterator[anyio.abc.TaskGroup]:
    async with anyio.create_task_group() as tg:
        if sink is not None:
            await tg.start(sink.serve)
        for node in nodes:
            await tg.start(node.serve)
        yield tg
        tg.cancel_scope.cancel()


async def test_packet_crosses_three_mix_nodes_to_the_next_hop() -> None:
    sink = FrameSink()
    nodes = [MixNode(s) for s in mix_specs()]
    async with running(nodes, sink):
        route = [*hops([n.spec for n in nodes]), sink.route_hop]
        await send_raw(nodes[0].spec.mix_port, frame_bytes(make_packet(route, b"through three")))
        [arrival] = await sink.wait_for(1)
    final = SphinxNode(sink.key.private_bytes).process(arrival.frame.packet)
    assert isinstance(final, FinalHop)
    assert final.plaintext() == b"through three"
    for node in nodes:
        assert node.counters["received"] == 1
        assert node.counters["forwarded"] == 1


async def test_sphinx_delay_is_honoured_and_zero_delay_is_immediate() -> None:
    sink = FrameSink()
    node = MixNode(mix_specs(1)[0])
    async with running([node], sink):
        route = [node.spec.route_hop, sink.route_hop]
        slow = frame_bytes(make_packet(route, b"slow", delays=[200_000_000]))
        fast = frame_bytes(make_packet(route, b"fast", delays=[0]))
        sent = anyio.current_time()
        await send_raw(node.spec.mix_port, slow + fast)
        arrivals = await sink.wait_for(2)
    texts = [SphinxNode(sink.key.private_bytes).process(a.frame.packet) for a in arrivals]
    plain = [t.plaintext() for t in texts if isinstance(t, FinalHop)]
    assert plain == [b"fast", b"slow"]  # the zero-delay packet overtakes the held one
    assert arrivals[1].at - sent >= 0.2
    assert node.counters["delayed"] == 1


async def test_replayed_packet_is_dropped_and_counted() -> None:
    sink = FrameSink()
    node = MixNode(mix_specs(1)[0])
    async with running([node], sink):
        data = frame_bytes(make_packet([node.spec.route_hop, sink.route_hop]))
        await send_raw(node.spec.mix_port, data + data)
        await send_raw(node.spec.mix_port, data)  # and again on a new connection
        await sink.wait_for(1)
        with anyio.fail_after(3):
            while node.counters["dropped_replay"] < 2:
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)
    assert len(sink.arrivals) == 1
    assert node.counters["forwarded"] == 1


async def test_loss_fraction_drops_about_that_share() -> None:
    sink = FrameSink()
    node = MixNode(mix_specs(1)[0], loss=0.25, rng=random.Random(7))
    total = 200
    async with running([node], sink):
        route = [node.spec.route_hop, sink.route_hop]
        data = b"".join(
            frame_bytes(make_packet(route, b"%d" % i, size=PacketSize.ACK)) for i in range(total)
        )
        await send_raw(node.spec.mix_port, data)
        with anyio.fail_after(5):
            while node.counters["received"] < total:
                await anyio.sleep(0.01)
        delivered = total - node.counters["dropped_loss"]
        await sink.wait_for(delivered)
    assert 25 <= node.counters["dropped_loss"] <= 75
    assert len(sink.arrivals) == delivered


async def test_bad_input_is_counted_and_the_node_keeps_forwarding() -> None:
    sink = FrameSink()
    node = MixNode(mix_specs(1)[0])
    async with running([node], sink):
        port = node.spec.mix_port
        route = [node.spec.route_hop, sink.route_hop]
        good = make_packet(route, b"after the abuse")
        # unparseable streams are closed
        assert await send_raw(port, b"\x07\x09\x00" + bytes(100), wait_close=True)  # size tag 9
        assert await send_raw(port, b"\x05\x01\x00" + bytes(100), wait_close=True)  # version 5
        assert await send_raw(port, b"\x09\x01\x00" + bytes(100), wait_close=True)  # version 9
        assert await send_raw(port, b"\x07\x01\x01" + bytes(100), wait_close=True)  # type 1
        assert await send_raw(port, b"\x08\x01\x00\x03" + bytes(100), wait_close=True)  # rotation 3
        # parseable frames with a bad packet: dropped, connection stays usable
        garbage = frame_bytes(random.Random(1).randbytes(PacketSize.REGULAR.size))
        tampered = bytearray(good)
        tampered[40] ^= 1  # inside the MAC
        await send_raw(port, garbage + frame_bytes(bytes(tampered)))
        # a truncated frame at end of stream
        await send_raw(port, frame_bytes(good)[:1000])
        # a packet for another node's key
        other = make_packet([mix_specs(1)[0].route_hop, sink.route_hop])
        await send_raw(port, frame_bytes(other))
        with anyio.fail_after(3):
            while node.counters["dropped_bad_mac"] < 3 or node.counters["dropped_truncated"] < 1:
                await anyio.sleep(0.01)
        await send_raw(port, frame_bytes(good))
        [arrival] = await sink.wait_for(1)
    result = SphinxNode(sink.key.private_bytes).process(arrival.frame.packet)
    assert isinstance(result, FinalHop) and result.plaintext() == b"after the abuse"
    assert node.counters["dropped_malformed"] == 5
    assert node.counters["connections_closed_malformed"] == 5
    assert node.counters["forwarded"] == 1


async def test_final_hop_at_a_mix_node_is_dropped() -> None:
    node = MixNode(mix_specs(1)[0])
    async with running([node]):
        await send_raw(node.spec.mix_port, frame_bytes(make_packet([node.spec.route_hop])))
        with anyio.fail_after(3):
            while node.counters["dropped_unexpected_final"] < 1:
                await anyio.sleep(0.01)
    assert node.counters["forwarded"] == 0


async def test_frame_version_and_rotation_label_are_kept_and_select_the_key() -> None:
    primary = X25519KeyPair.generate()
    secondary = X25519KeyPair.generate()
    base = mix_specs(1)[0]
    # rotation id 3 is odd: primary answers ODD, secondary EVEN
    spec = NodeSpec(
        base.node_id,
        base.role,
        base.identity,
        primary,
        layer=1,
        rotation_id=3,
        sphinx_secondary=secondary,
    )
    sink = FrameSink()
    node = MixNode(spec)
    async with running([node], sink):
        hop = node.spec.route_hop
        with_secondary = make_packet(
            [type(hop)(hop.address, secondary.public_bytes), sink.route_hop], b"even"
        )
        with_primary = make_packet([hop, sink.route_hop], b"odd")
        port = node.spec.mix_port
        await send_raw(
            port, frame_bytes(with_secondary, FrameVersion.KEY_ROTATION, SphinxKeyRotation.EVEN)
        )
        await send_raw(
            port, frame_bytes(with_primary, FrameVersion.KEY_ROTATION, SphinxKeyRotation.EVEN)
        )
        await send_raw(
            port, frame_bytes(with_primary, FrameVersion.KEY_ROTATION, SphinxKeyRotation.ODD)
        )
        arrivals = await sink.wait_for(2)
    assert node.counters["dropped_bad_mac"] == 1  # primary-key packet labelled EVEN
    labels = sorted((a.frame.version, a.frame.key_rotation) for a in arrivals)
    assert labels == [
        (FrameVersion.KEY_ROTATION, SphinxKeyRotation.ODD),
        (FrameVersion.KEY_ROTATION, SphinxKeyRotation.EVEN),
    ]


async def test_unknown_rotation_tries_both_keys_and_missing_parity_is_refused() -> None:
    secondary = X25519KeyPair.generate()
    base = mix_specs(1)[0]
    with_secondary = NodeSpec(
        base.node_id, base.role, base.identity, base.sphinx, layer=1, sphinx_secondary=secondary
    )
    sink = FrameSink()
    two_keys = MixNode(with_secondary)
    one_key = MixNode(mix_specs(1)[0])  # rotation 1 (odd), no secondary
    async with running([two_keys, one_key], sink):
        hop = two_keys.spec.route_hop
        packet = make_packet([type(hop)(hop.address, secondary.public_bytes), sink.route_hop])
        await send_raw(two_keys.spec.mix_port, frame_bytes(packet))  # v7: unknown rotation
        await sink.wait_for(1)
        other = make_packet([one_key.spec.route_hop, sink.route_hop])
        await send_raw(
            one_key.spec.mix_port,
            frame_bytes(other, FrameVersion.KEY_ROTATION, SphinxKeyRotation.EVEN),
        )
        with anyio.fail_after(3):
            while one_key.counters["dropped_key_rotation"] < 1:
                await anyio.sleep(0.01)
    assert two_keys.counters["forwarded"] == 1
    assert sink.arrivals[0].frame.version is FrameVersion.INITIAL


async def test_link_reconnects_after_the_next_hop_restarts() -> None:
    sink = FrameSink()
    node = MixNode(mix_specs(1)[0])
    async with anyio.create_task_group() as tg:
        await tg.start(node.serve)
        await tg.start(sink.serve)
        route = [node.spec.route_hop, sink.route_hop]
        await send_raw(node.spec.mix_port, frame_bytes(make_packet(route, b"one")))
        await sink.wait_for(1)
        sink.stop()
        await anyio.sleep(0.05)
        port = sink.port
        sink2 = FrameSink(key=sink.key, port=port)
        await tg.start(sink2.serve)
        with anyio.fail_after(5):
            while not sink2.arrivals:
                await send_raw(node.spec.mix_port, frame_bytes(make_packet(route, b"two")))
                await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    assert node.counters["link_connects"] >= 2


async def test_stop_ends_serve() -> None:
    node = MixNode(mix_specs(1)[0])
    with anyio.fail_after(3):
        async with anyio.create_task_group() as tg:
            spec = await tg.start(node.serve)
            assert spec.mix_port != 0
            node.stop()
    with pytest.raises(OSError):
        await anyio.connect_tcp("127.0.0.1", spec.mix_port)


async def test_forward_hop_result_matches_direct_processing() -> None:
    # the node's output is exactly what SphinxNode computes for that hop
    spec = mix_specs(1)[0]
    sink = FrameSink()
    node = MixNode(spec)
    async with running([node], sink):
        packet = make_packet([node.spec.route_hop, sink.route_hop])
        expected = SphinxNode(spec.sphinx.private_bytes).process(packet)
        await send_raw(node.spec.mix_port, frame_bytes(packet))
        [arrival] = await sink.wait_for(1)
    assert isinstance(expected, ForwardHop)
    assert arrival.frame.packet == expected.packet


async def test_inbound_connections_are_bounded() -> None:
    sink = FrameSink()
    node = MixNode(mix_specs(1)[0], max_connections=1)
    async with running([node], sink):
        route = [node.spec.route_hop, sink.route_hop]
        async with await anyio.connect_tcp("127.0.0.1", node.spec.mix_port) as held:
            await held.send(frame_bytes(make_packet(route, b"held")))
            await sink.wait_for(1)
            assert await send_raw(node.spec.mix_port, b"", wait_close=True)
            assert node.counters["connections_refused"] == 1
        with anyio.fail_after(3):
            while len(sink.arrivals) < 2:
                await send_raw(node.spec.mix_port, frame_bytes(make_packet(route, b"next")))
                await anyio.sleep(0.05)
