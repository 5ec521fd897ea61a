"""A mix node of the local network (one of layers 1..3).

Everything it does lives in `PacketNode`: it receives framed Sphinx packets, drops
replays, malformed and (optionally, for reliability tests) a random fraction of
packets, holds each for the delay its sender encoded and forwards it to the next hop.
Final-hop packets have no business at a mix node and are dropped and counted.
"""

from __future__ import annotations

from smolmix_cli.testnet.nodes.packet_node import PacketNode


class MixNode(PacketNode):
    """`MixNode(spec, *, loss=0.0, rng=None, max_queue=...)`; `await tg.start(node.serve)`."""

    accept_final = False
