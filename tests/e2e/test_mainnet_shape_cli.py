"""A cold `smolmix fetch` on the mainnet-shaped local network, all through the real CLI.

Nothing is pinned: the client chooses its entry gateway and exit from ~250 listed
nodes, some dead or refusing. The fault mix keeps at most two bad gateways among
the usable ones (the client tries three) and two dead exits (it tries five), so
the fetch must always succeed; the default mix is the acceptance test's.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.cli_net import foreground_testnet, run_cli, smolmix

SHAPE = (
    "--shape", "mainnet", "--mix-delay-ms", "0", "--slow-exit-delay", "1",
    "--fault", "dead-exit=1", "--fault", "silent=1", "--fault", "v9-only=0",
    "--fault", "zk-nym=1", "--fault", "close-after-hello=0", "--fault", "full=0",
)  # fmt: skip


def test_a_cold_fetch_on_the_mainnet_shape(tmp_path: Path) -> None:
    state = tmp_path / "net"
    started = time.monotonic()
    with foreground_testnet(state, *SHAPE, stdout=subprocess.DEVNULL) as (proc, network):
        assert network.exists(), proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - started < 15
        pinned = json.loads(network.read_text())
        assert pinned["entry_gateway"] is None and pinned["exits"] == []

        began = time.monotonic()
        result = smolmix(network, "fetch", "-sS", "http://demo.smolmix.test/", timeout=90)
        took = time.monotonic() - began
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert b"<html" in result.stdout.lower()
        assert took < 45, f"cold fetch took {took:.1f} s"

        status = run_cli(["testnet", "status", "--dir", str(state), "--json"])
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["shape"]["name"] == "mainnet" and report["shape"]["decoys"] == 230
        faults = {n["fault"] for n in report["nodes"]}
        assert {"silent", "zk-nym", "bad-cert", "nr-only", "unroutable", "slow"} <= faults
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
