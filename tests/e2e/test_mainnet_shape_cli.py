"""Cold `smolmix fetch` and `smolmix doctor` on the mainnet-shaped local network, via the CLI.

Nothing is pinned: the client chooses its entry gateway and exit from ~250 listed
nodes with the shape's default fault mix, the acceptance test's (after the
filters about 60 % of the exits and 40 % of the entry gateways dead or
refusing). Every cold fetch must succeed within the default boot budget; the
50-fetch acceptance run with its distribution is `bench/boot_times.py --shape
mainnet` (figures in bench/README.md). `doctor` must census the whole directory,
show the filters at work and find at least one answering exit among dead ones.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.cli_net import foreground_testnet, run_cli, smolmix

SHAPE = ("--shape", "mainnet", "--mix-delay-ms", "0", "--slow-exit-delay", "1")
COLD_FETCHES = 5  # each a new process with fresh keys: nothing is remembered between them
BOOT_BUDGET = 90.0  # the default --boot-timeout


def test_cold_fetches_and_doctor_on_the_mainnet_shape(tmp_path: Path) -> None:
    state = tmp_path / "net"
    started = time.monotonic()
    with foreground_testnet(state, *SHAPE, stdout=subprocess.DEVNULL) as (proc, network):
        assert network.exists(), proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - started < 15
        pinned = json.loads(network.read_text())
        assert pinned["entry_gateway"] is None and pinned["exits"] == []

        for _ in range(COLD_FETCHES):
            began = time.monotonic()
            result = smolmix(
                network, "fetch", "-sS", "-w", "%{json}", "http://demo.smolmix.test/", timeout=120
            )
            took = time.monotonic() - began
            assert result.returncode == 0, result.stderr.decode(errors="replace")
            assert b"<html" in result.stdout.lower()
            assert took < BOOT_BUDGET, f"cold fetch took {took:.1f} s"

        doctor = smolmix(network, "doctor", "--json", "--exits", "15", "--probe-timeout", "5")
        assert doctor.returncode == 0, doctor.stderr.decode(errors="replace")
        report = json.loads(doctor.stdout)
        assert report["exit_code"] == 0
        assert report["directory"]["nodes"] >= 200  # decoys and real nodes alike
        assert report["directory"]["topology"]["skipped"] or report["directory"]["unparsed"]
        exits = report["exits"]
        assert exits["answered"] >= 1
        assert exits["answered"] < exits["probed"]  # the dead and silent ones say nothing
        assert report["gateway"]["protocol_version"] is not None

        status = run_cli(["testnet", "status", "--dir", str(state), "--json"])
        assert status.returncode == 0, status.stderr
        shape = json.loads(status.stdout)
        assert shape["shape"]["name"] == "mainnet" and shape["shape"]["decoys"] == 230
        faults = {n["fault"] for n in shape["nodes"]}
        assert {"silent", "zk-nym", "bad-cert", "nr-only", "unroutable", "slow"} <= faults
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
