"""`smolmix ping` as a user runs it: a local network in one process, ping in another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli_net import run_cli, start_network

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def network_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from start_network(tmp_path_factory.mktemp("net"), mix_delay_ms=20)


@pytest.mark.parametrize("delay", ["0", None])  # None: the network's advertised 20 ms mean
def test_ping_round_trips(network_file: Path, delay: str | None) -> None:
    extra = ["--mix-delay-ms", delay] if delay is not None else []
    result = run_cli(
        [
            "--network",
            str(network_file),
            "ping",
            "-c",
            "3",
            "-i",
            "0.1",
            "-W",
            "20",
            "--json",
            *extra,
        ]
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0]["type"] == "start"
    replies = [r for r in records if r["type"] == "reply"]
    assert sorted(r["seq"] for r in replies) == [0, 1, 2]
    assert all(r["rtt_ms"] > 0 for r in replies)
    summary = records[-1]
    assert summary["type"] == "summary"
    assert (summary["transmitted"], summary["received"], summary["loss_percent"]) == (3, 3, 0.0)
    assert summary["rtt_min_ms"] <= summary["rtt_avg_ms"] <= summary["rtt_max_ms"]


def test_ping_text_output_and_env_selection(network_file: Path) -> None:
    env = dict(os.environ, SMOLMIX_NETWORK=str(network_file))
    result = run_cli(["ping", "-c", "2", "-i", "0.1"], env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("PING ") and "@" in lines[0]
    assert sum("bytes from self: seq=" in line for line in lines) == 2
    assert "--- smolmix ping statistics ---" in lines
    assert any(
        line.startswith("2 messages transmitted, 2 received, 0% message loss") for line in lines
    )
    assert any(line.startswith("rtt min/avg/max/mdev = ") for line in lines)


def test_ping_with_a_bad_network_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "net.json"
    bad.write_text("{}")
    result = run_cli(["--network", str(bad), "ping", "-c", "1"])
    assert result.returncode == 112
    assert result.stderr.count("\n") == 1 and "not a smolmix network file" in result.stderr


def test_ctrl_c_ends_probing_and_prints_the_summary(network_file: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smolmix_cli",
            "--network",
            str(network_file),
            "ping",
            "-c",
            "1000",
            "-i",
            "0.1",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while time.monotonic() < deadline:  # wait for the first reply
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if json.loads(line)["type"] == "reply":
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    records = [json.loads(x) for x in lines + out.splitlines()]
    assert proc.returncode == 0, err
    summary = records[-1]
    assert summary["type"] == "summary"
    assert 1 <= summary["received"] <= summary["transmitted"] < 1000
    assert "Traceback" not in err
