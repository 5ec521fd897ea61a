"""Two NetStacks on a virtual clock: protocol time and CPU per transfer, without the shell.

The stacks of `bench/netstack.py` (MTU 1420, default TcpConfig) joined by the SimLink of
`tests/netstack/relay.py`: the same IP packets and the same per-batch polling, but time
jumps to the next event, so `virtual_s` is what the protocol alone needs at the given
one-way delay (no CPU cost), and `cpu_s` is what both stacks cost in CPU without the
anyio shell or a relay. Segments sent at one instant arrive as one batch.

    python bench/netstack_sim.py [--seeds 11] [--one-way-ms 0.1] [--mib 1]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smolmix_cli.netstack.iface.stack import NetStack
from tests.netstack.relay import Impairment, SimLink

A, B = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")


def transfer(size: int, loss: float, seed: int, one_way: float) -> dict[str, float]:
    sa, sb = NetStack([A], mtu=1420), NetStack([B], mtu=1420)
    link = SimLink(
        sa,
        sb,
        Impairment(seed=seed, loss=loss, base_delay=one_way),
        Impairment(seed=seed + 1, loss=loss, base_delay=one_way),
    )
    client, server = link.open_tcp(B, 80)
    data = random.Random(seed).randbytes(size)
    state = {"sent": 0, "got": 0}

    def app(now: float) -> bool:
        if state["sent"] < size:
            state["sent"] += client.send(data[state["sent"] : state["sent"] + 65536], now)
        while chunk := server.recv(1 << 20, now):
            state["got"] += len(chunk)
        return state["got"] >= size

    start, packets0, cpu0 = link.now, link.packets, time.process_time()
    link.run(app, 600.0)
    stats = client.conn.stats
    return {
        "virtual_s": link.now - start,
        "cpu_s": time.process_time() - cpu0,
        "packets": link.packets - packets0,
        "retransmits": stats.retransmits,
        "rto_events": stats.rto_events,
        "tlp_probes": stats.tlp_probes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=11)
    parser.add_argument("--one-way-ms", type=float, default=0.1, help="one-way delay (RTT/2)")
    parser.add_argument("--mib", type=float, default=1.0)
    args = parser.parse_args()
    size = int(args.mib * (1 << 20))
    for name, loss in (("lossless", 0.0), ("loss_1pct", 0.01), ("loss_5pct", 0.05)):
        runs = [
            transfer(size, loss, seed, args.one_way_ms / 1000) for seed in range(1, args.seeds + 1)
        ]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            json.dumps(
                {
                    "name": f"netstack_sim.{name}",
                    "size_bytes": size,
                    "one_way_ms": args.one_way_ms,
                    "seeds": args.seeds,
                    "virtual_s_median": round(med["virtual_s"], 4),
                    "virtual_s_max": round(max(r["virtual_s"] for r in runs), 4),
                    "cpu_s_median": round(med["cpu_s"], 4),
                    "packets_median": med["packets"],
                    "retransmits_median": med["retransmits"],
                    "rto_events_total": sum(r["rto_events"] for r in runs),
                    "tlp_probes_total": sum(r["tlp_probes"] for r in runs),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
