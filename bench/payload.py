"""nym-sphinx layer throughput: fragmenting, reassembling, and preparing packets.

Prints one JSON object per measurement. Run from the repository root:
    .venv/bin/python bench/payload.py
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smolmix_cli.mixnet.address import NodeAddress, Recipient
from smolmix_cli.mixnet.keys import Ed25519KeyPair, X25519KeyPair
from smolmix_cli.mixnet.message.fragment import Fragment
from smolmix_cli.mixnet.message.message import PlainMessage, split_message
from smolmix_cli.mixnet.message.preparer import MessagePreparer
from smolmix_cli.mixnet.message.reassembly import Reassembler
from smolmix_cli.mixnet.topology.topology import (
    Node,
    NodeRole,
    RewardedSet,
    Topology,
)


def _timed(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _topology() -> tuple[Topology, Recipient]:
    nodes = {}
    for node_id, layer in ((11, 1), (12, 2), (13, 3), (1, None)):
        nodes[node_id] = Node(
            node_id=node_id,
            identity=Ed25519KeyPair.generate().public_bytes,
            sphinx_key=X25519KeyPair.generate().public_bytes,
            ip_addresses=(NodeAddress.from_host_port("127.0.0.1", 1789).ip,),
            mix_port=1789 + node_id,
            role=NodeRole.MIXNODE if layer else NodeRole.ENTRY_GATEWAY,
            layer=layer,
        )
    rewarded = RewardedSet(
        1, entry_gateways=(1,), exit_gateways=(1,), layer1=(11,), layer2=(12,), layer3=(13,)
    )
    recipient = Recipient(
        Ed25519KeyPair.generate().public_bytes,
        X25519KeyPair.generate().public_bytes,
        nodes[1].identity,
    )
    return Topology(rewarded, nodes, 10), recipient


def main() -> None:
    rng = random.Random(1)
    mib = rng.randbytes(1 << 20)
    t = _timed(lambda: split_message(PlainMessage(mib), rng), 5)
    print(json.dumps({"name": "split_1MiB", "seconds": round(t, 5), "MiB_per_s": round(1 / t, 1)}))
    fragments = split_message(PlainMessage(mib), rng)
    rng.shuffle(fragments)
    wire = [f.to_bytes() for f in fragments]

    def reassemble() -> None:
        reassembler = Reassembler()
        for raw in wire:
            reassembler.insert(Fragment.from_bytes(raw), 0.0)

    t = _timed(reassemble, 5)
    print(
        json.dumps(
            {
                "name": "parse_and_reassemble_1MiB_shuffled",
                "seconds": round(t, 5),
                "MiB_per_s": round(1 / t, 1),
            }
        )
    )

    topology, recipient = _topology()
    preparer = MessagePreparer(recipient, rng.randbytes(16), rng=rng)
    sample = split_message(PlainMessage(rng.randbytes(64 * 1611)), rng)
    t = _timed(lambda: [preparer.prepare_fragment(f, recipient, topology) for f in sample], 3)
    per = t / len(sample)
    print(
        json.dumps(
            {
                "name": "prepare_fragment_regular_259",
                "ms_per_packet": round(per * 1000, 3),
                "packets_per_s": round(1 / per, 1),
            }
        )
    )
    t = _timed(lambda: [preparer.cover_packet(topology) for _ in range(64)], 3)
    print(
        json.dumps(
            {
                "name": "cover_packet_258",
                "ms_per_packet": round(t / 64 * 1000, 3),
                "packets_per_s": round(64 / t, 1),
            }
        )
    )
    t = _timed(lambda: preparer.reply_surbs(64, topology), 3)
    print(
        json.dumps(
            {
                "name": "reply_surb_build_259",
                "ms_per_surb": round(t / 64 * 1000, 3),
                "surbs_per_s": round(64 / t, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
