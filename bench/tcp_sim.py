"""Recovery quality of the sans-io TCP engine on a virtual-clock impaired link.

Prints one JSON line per scenario: virtual completion time (from the first
data write to the reader seeing EOF, base RTT 1 ms, no bandwidth limit unless
--rate) over several seeds, plus retransmission counters and the wall-clock
CPU cost of the simulation. A good TCP should need only a few RTTs more than
the lossless case, never seconds of RTO stalls.

    python bench/tcp_sim.py [--seeds 10] [--wire] [--rate BYTES_PER_S] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smolmix_cli.netstack.tcp import TcpConfig
from smolmix_cli.netstack.tcp_sim import BulkSender, LinkParams, Reader, SimLink

SCENARIOS: list[tuple[str, LinkParams, int]] = [
    ("lossless_1MiB", LinkParams(), 1 << 20),
    ("loss1_1MiB", LinkParams(loss=0.01), 1 << 20),
    ("loss5_1MiB", LinkParams(loss=0.05), 1 << 20),
    ("exp20ms_256KiB", LinkParams(exp_delay=0.02), 256 << 10),
    ("exp100ms_256KiB", LinkParams(exp_delay=0.1), 256 << 10),
]


def run_one(
    params: LinkParams, size: int, seed: int, wire: bool, reverse: bool
) -> dict[str, float]:
    link = SimLink(params, seed=seed, wire=wire)
    cfg = TcpConfig(time_wait=1.0)
    a, b = link.connect(cfg, cfg)
    sender, receiver = (b, a) if reverse else (a, b)
    data = os.urandom(size)
    app_s = BulkSender(sender, data)
    app_r = Reader(receiver)
    link.add_app(app_s)
    link.add_app(app_r)
    t0 = link.now
    w0 = time.perf_counter()
    link.run_until(lambda: app_r.eof_at is not None, 600.0)
    wall = time.perf_counter() - w0
    if bytes(app_r.buf) != data:
        raise SystemExit(f"data mismatch at seed {seed}")
    assert app_r.eof_at is not None
    st = sender.stats
    return {
        "t": app_r.eof_at - t0,
        "wall": wall,
        "retrans": st.retransmits,
        "rto": st.rto_events,
        "tlp": st.tlp_probes,
        "recoveries": st.recoveries,
        "undos": st.undos,
        "segs_out": st.segments_out,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--wire", action="store_true", help="round-trip every segment via the codec")
    ap.add_argument("--rate", type=float, default=None, help="link rate, bytes/s per direction")
    ap.add_argument("--only", default=None)
    ap.add_argument("--reverse", action="store_true", help="send from the accepting side")
    args = ap.parse_args()
    for name, params, size in SCENARIOS:
        if args.only and args.only not in name:
            continue
        params.rate = args.rate
        runs = [run_one(params, size, seed, args.wire, args.reverse) for seed in range(args.seeds)]
        ts = sorted(r["t"] for r in runs)
        wall = sum(r["wall"] for r in runs)
        print(
            json.dumps(
                {
                    "name": f"tcp_sim.{name}",
                    "seeds": args.seeds,
                    "base_rtt_ms": params.one_way * 2000,
                    "bytes": size,
                    "median_s": round(statistics.median(ts), 4),
                    "p90_s": round(ts[int(0.9 * (len(ts) - 1))], 4),
                    "max_s": round(ts[-1], 4),
                    "mean_retransmits": round(statistics.mean(r["retrans"] for r in runs), 1),
                    "mean_rto_events": round(statistics.mean(r["rto"] for r in runs), 2),
                    "mean_tlp_probes": round(statistics.mean(r["tlp"] for r in runs), 1),
                    "mean_undos": round(statistics.mean(r["undos"] for r in runs), 1),
                    "mean_segments_out": round(statistics.mean(r["segs_out"] for r in runs), 1),
                    "sim_cpu_MBps": round(size * len(runs) / wall / 1e6, 2),
                    "wire": args.wire,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
