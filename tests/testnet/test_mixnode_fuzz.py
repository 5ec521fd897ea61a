"""Long fuzz runs (marker `fuzz`: only under `--hypothesis-profile=fuzz`): random streams at a
live node's mix port, after which a valid packet must still be forwarded."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.packet.size import PacketSize
from smolmix_cli.mixnet.topology.topology import NodeRole
from smolmix_cli.testnet.nodes.mixnode import MixNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from tests.testnet.nodes_util import FrameSink, frame_bytes, make_packet

pytestmark = pytest.mark.fuzz

_header = st.tuples(st.sampled_from([7, 8]), st.sampled_from([1, 2]), st.sampled_from([0, 2]))
_chunk = st.one_of(
    st.binary(max_size=3000),
    _header.map(bytes),  # plausible frame headers followed by whatever comes next
    st.builds(
        lambda size, body: bytes([7, size, 0]) + body,
        st.sampled_from([1, 2]),
        st.binary(min_size=380, max_size=2500),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_chunk, max_size=6), min_size=1, max_size=4))
def test_random_streams_never_stop_the_node(connections: list[list[bytes]]) -> None:
    async def scenario() -> None:
        sink = FrameSink()
        node = MixNode(NodeSpec.generate(1, NodeRole.MIXNODE, layer=1))
        async with anyio.create_task_group() as tg:
            await tg.start(sink.serve)
            await tg.start(node.serve)
            for chunks in connections:
                try:
                    async with await anyio.connect_tcp("127.0.0.1", node.spec.mix_port) as s:
                        for chunk in chunks:
                            await s.send(chunk)
                except (anyio.BrokenResourceError, OSError):
                    pass  # the node may close an unparseable stream while we write
            good = make_packet([node.spec.route_hop, sink.route_hop], size=PacketSize.ACK)
            async with await anyio.connect_tcp("127.0.0.1", node.spec.mix_port) as s:
                await s.send(frame_bytes(good))
            await sink.wait_for(1)
            tg.cancel_scope.cancel()
        assert node.counters["forwarded"] >= 1
        assert node.counters["internal_errors"] == 0

    anyio.run(scenario)
