"""Memory under a long mixed workload through one session: bounded, not leaking (issue 20 item 7).

Behind the `soak` marker (deselected unless `-m soak` asks for it). One hour by default;
SMOLMIX_SOAK_SECONDS sets another duration and SMOLMIX_SOAK_OUT a JSON-lines file for the
samples (bench/README.md publishes the curve). Every operation's result is checked (page text,
sha256 of `/bytes/N`, the echoed WebSocket line, the A record).

The bounds, per process, after WARMUP_OPS operations:
- growth: the least-squares slope of RSS against the operation count stays under
  MAX_SLOPE_KB_PER_KOP per 1,000 operations. The network's replay caches fill towards their
  bound (docs/local-network.md) within the first hour, so the network's slope is only asserted
  once they are full; in shorter runs its peak bound below is what holds it.
- peak: RSS stays under PEAK_MB (the network's figure includes every replay cache full).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.soak.runner import Soak, growth, jsonl

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("SMOLMIX_SOAK_SECONDS", "3600"))
OUT = os.environ.get("SMOLMIX_SOAK_OUT")
WARMUP_OPS = 200
MAX_SLOPE_KB_PER_KOP = {"network": 2048, "session": 1024}
PEAK_MB = {"network": 200, "session": 120}


def test_memory_stays_bounded_under_an_hour_of_mixed_traffic(tmp_path: Path) -> None:
    out_path = Path(OUT) if OUT else tmp_path / "soak.jsonl"
    with jsonl(out_path) as out, Soak(SECONDS, out=out) as soak:
        soak.run()
    assert not soak.failures, json.dumps(soak.failures[:5], indent=1)
    assert soak.ops > WARMUP_OPS, f"only {soak.ops} operations in {SECONDS:g} s"
    for name in ("network", "session"):
        g = growth(soak.samples, name, WARMUP_OPS)
        print(json.dumps(g.__dict__))
        assert g.peak_kb < PEAK_MB[name] * 1024, g
        assert g.slope_kb_per_kop < MAX_SLOPE_KB_PER_KOP[name], g
