"""Memory of the local network and of a session under a long mixed workload (JSON lines).

Runs tests/soak/runner.py's workload (the real CLI through one `smolmix session`: small
fetches, `/bytes/N` checked by sha256, WebSocket echoes, DNS lookups) for `--seconds` and
prints every RSS sample and failure as one JSON object, then a summary with the growth per
1,000 operations after `--warmup` operations. `--trace DIR` runs both processes under
tracemalloc and writes a snapshot of each every `--snapshot-every` operations, for
`tests/soak/trace_diff.py`. `--table FILE` prints an earlier run's curve as a Markdown table
(bench/README.md). Run from the repository root:

    .venv/bin/python bench/soak.py --seconds 3600 > soak.jsonl
    .venv/bin/python bench/soak.py --table soak.jsonl --every 250
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.soak.runner import Sample, Soak, growth


def table(path: Path, every: int) -> None:
    """One row per `every` operations (and the last sample) of a run's JSON lines."""
    samples = [
        Sample(**{k: v for k, v in record["sample"].items() if k != "counts"})
        for line in path.read_text().splitlines()
        if "sample" in (record := json.loads(line))
    ]
    print("| operations | minutes | network RSS (MiB) | session RSS (MiB) |")
    print("|---|---|---|---|")
    mark = 0
    for i, s in enumerate(samples):
        if s.ops >= mark or i == len(samples) - 1:
            net = f"{s.network_kb / 1024:.1f}" if s.network_kb else "-"
            ses = f"{s.session_kb / 1024:.1f}" if s.session_kb else "-"
            print(f"| {s.ops} | {s.t / 60:.1f} | {net} | {ses} |")
            mark = (s.ops // every + 1) * every


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3600)
    parser.add_argument("--max-ops", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=200, help="operations before the fit")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--replay-capacity", type=int, default=None, help="testnet up's")
    parser.add_argument("--trace", type=Path, default=None)
    parser.add_argument("--snapshot-every", type=int, default=250)
    parser.add_argument("--table", type=Path, default=None, help="JSON lines of an earlier run")
    parser.add_argument("--every", type=int, default=250, help="operations per table row")
    opts = parser.parse_args()
    if opts.table is not None:
        table(opts.table, opts.every)
        return
    # Stopped by a signal, it still stops its network and session (SIGINT is ignored in a
    # background job unless set back).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def snapshots(soak: Soak) -> None:
        if soak.ops % opts.snapshot_every == 0:
            soak.snapshot(f"op{soak.ops:06d}")

    with Soak(
        opts.seconds,
        out=sys.stdout,
        sample_every=opts.sample_every,
        seed=opts.seed,
        trace_dir=opts.trace,
        replay_capacity=opts.replay_capacity,
    ) as soak:
        if opts.trace is not None:
            soak.snapshot("op000000")
        soak.run(every_op=snapshots if opts.trace else None, max_ops=opts.max_ops)
        summary: dict[str, object] = {
            "summary": {
                "seconds": soak.samples[-1].t,
                "ops": soak.ops,
                "counts": soak.counts,
                "failures": len(soak.failures),
                "warmup_ops": opts.warmup,
            }
        }
        for name in ("network", "session"):
            try:
                summary["summary"][name] = growth(soak.samples, name, opts.warmup).__dict__  # type: ignore[index]
            except ValueError as e:
                summary["summary"][name] = str(e)  # type: ignore[index]
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
