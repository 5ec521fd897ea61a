"""Memory under a long mixed workload through one session: bounded, not leaking (issue 20 item 7).

Behind the `soak` marker (deselected unless `-m soak` asks for it). One hour by default;
SMOLMIX_SOAK_SECONDS sets another duration, SMOLMIX_SOAK_WARMUP_OPS the warm-up (default 1000
operations) and SMOLMIX_SOAK_OUT a JSON-lines file for the samples (bench/README.md publishes
the curve). Every operation's result is checked (page text, sha256 of `/bytes/N`, the echoed
WebSocket line, the A record) and none may fail.

The bounds, per process (docs/local-network.md says where they come from):
- peak RSS: the session under SESSION_PEAK_MB; the network under NETWORK_PEAK_MB, which
  includes its five replay caches full (200,000 tags of ~130 B each per node and rotation).
- growth: the least-squares slope of RSS against the operation count, past the warm-up and
  over the second half of the run at least, under MAX_SLOPE_KB_PER_KOP per 1,000 operations.
  The session's bounded tables are full by then. The network's replay caches fill for longer
  (about 2,500 operations of this mix): its slope is fitted once every mix node has processed
  as many packets as its cache holds, and only asserted when that leaves REPLAY_FULL_WINDOW
  operations of run (the hour does on a 2-core machine; shorter runs print that it did not).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from smolmix_cli.testnet.nodes.replay import DEFAULT_CAPACITY
from tests.soak.runner import Growth, Soak, growth, jsonl

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("SMOLMIX_SOAK_SECONDS", "3600"))
WARMUP_OPS = int(os.environ.get("SMOLMIX_SOAK_WARMUP_OPS", "1000"))
OUT = os.environ.get("SMOLMIX_SOAK_OUT")
SESSION_PEAK_MB = 100
NETWORK_PEAK_MB = 250
MAX_SLOPE_KB_PER_KOP = 1024
REPLAY_FULL_WINDOW = 300


def _report(g: Growth) -> None:
    print(json.dumps(g.__dict__))


def test_memory_stays_bounded_under_an_hour_of_mixed_traffic(tmp_path: Path) -> None:
    out_path = Path(OUT) if OUT else tmp_path / "soak.jsonl"
    with jsonl(out_path) as out, Soak(SECONDS, out=out) as soak:
        soak.run()
    assert not soak.failures, json.dumps(soak.failures[:5], indent=1)
    assert soak.ops >= 2 * WARMUP_OPS, f"{soak.ops} operations: too short a run to tell"
    fit_from = max(WARMUP_OPS, soak.ops // 2)

    session = growth(soak.samples, "session", fit_from)
    _report(session)
    assert session.peak_kb < SESSION_PEAK_MB * 1024, session
    assert session.slope_kb_per_kop < MAX_SLOPE_KB_PER_KOP, session

    network_all = growth(soak.samples, "network", 0)
    _report(network_all)
    assert network_all.peak_kb < NETWORK_PEAK_MB * 1024, network_all
    full = [s.ops for s in soak.samples if (s.mix_received_min or 0) >= DEFAULT_CAPACITY]
    if not full or soak.ops - full[0] < REPLAY_FULL_WINDOW:
        print(f"replay caches not full for {REPLAY_FULL_WINDOW} operations: slope not asserted")
        return
    network = growth(soak.samples, "network", fit_from, mix_received_from=DEFAULT_CAPACITY)
    _report(network)
    assert network.slope_kb_per_kop < MAX_SLOPE_KB_PER_KOP, network
