"""Memory under a long mixed workload through one session: bounded, not leaking (issue 20 item 7).

Behind the `soak` marker (deselected unless `-m soak` asks for it). One hour by default;
SMOLMIX_SOAK_SECONDS sets another duration, SMOLMIX_SOAK_WARMUP_OPS the warm-up (default 1000
operations) and SMOLMIX_SOAK_OUT a JSON-lines file for the samples (bench/README.md publishes
the curve). Every operation's result is checked (page text, sha256 of `/bytes/N`, the echoed
WebSocket line, the A record) and none may fail.

The network runs with `--replay-capacity 20000`: its replay caches, which hold the most and fill
slowest (200,000 tags per node by default, about 2,700 operations of this mix on a mix node
and twice that on a gateway), are then full within the warm-up, and what grows after it is not
a bounded table filling. docs/local-network.md lists every table and its bound.

The bounds, per process, past the warm-up (and past the first half of the run):
- growth: the least-squares slope of RSS against the operation count is under
  MAX_SLOPE_KB_PER_KOP per 1,000 operations, 2 KB per operation: the leaks the soak found were
  9 KB (reply SURBs kept by the exit) and 13 KB (reply keys kept by the session) per
  operation, while a flat process still shows steps of a MB or two (allocator arenas);
- peak RSS: under PEAK_MB (measured: network ~85 MiB, session ~60 MiB).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.soak.runner import Soak, growth, jsonl

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("SMOLMIX_SOAK_SECONDS", "3600"))
WARMUP_OPS = int(os.environ.get("SMOLMIX_SOAK_WARMUP_OPS", "1000"))
OUT = os.environ.get("SMOLMIX_SOAK_OUT")
REPLAY_CAPACITY = 20_000
MAX_SLOPE_KB_PER_KOP = 2048
PEAK_MB = {"network": 150, "session": 100}


def test_memory_stays_bounded_under_an_hour_of_mixed_traffic(tmp_path: Path) -> None:
    out_path = Path(OUT) if OUT else tmp_path / "soak.jsonl"
    with jsonl(out_path) as out, Soak(SECONDS, out=out, replay_capacity=REPLAY_CAPACITY) as soak:
        soak.run()
    assert not soak.failures, json.dumps(soak.failures[:5], indent=1)
    assert soak.ops >= 2 * WARMUP_OPS, f"{soak.ops} operations: too short a run to tell"
    fit_from = max(WARMUP_OPS, soak.ops // 2)
    # every gateway's cache too (a gateway sees about half a mix node's packets)
    caches_full = 2 * REPLAY_CAPACITY
    for name in ("network", "session"):
        g = growth(soak.samples, name, fit_from, mix_received_from=caches_full)
        print(json.dumps(g.__dict__))
        assert g.peak_kb < PEAK_MB[name] * 1024, g
        assert g.slope_kb_per_kop < MAX_SLOPE_KB_PER_KOP, g
