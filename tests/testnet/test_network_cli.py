"""`smolmix testnet up|down|status` as a user runs them (subprocesses, loopback only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smolmix_cli.network_select import read_pid, select_network
from tests.e2e.cli_net import foreground_testnet, run_cli, state_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return state_env(tmp_path)


def test_background_start_status_and_down(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "state" / "smolmix" / "testnet"
    monkeypatch.setenv("XDG_STATE_HOME", env["XDG_STATE_HOME"])
    not_running = run_cli(["testnet", "status"], env)
    assert not_running.returncode == 112
    assert not_running.stderr.count("\n") == 1 and "Traceback" not in not_running.stderr
    try:
        phases: list[str] = []
        network = select_network("testnet", on_phase=phases.append)  # starts it, says so
        assert len(phases) == 1 and "starting one in the background" in phases[0]
        pid = read_pid(state_dir)
        assert pid is not None and network.extra["pid"] == pid
        # a second selection reuses the running network (nothing to report)
        assert select_network("testnet", on_phase=phases.append).extra["pid"] == pid
        assert len(phases) == 1
        status = run_cli(["testnet", "status", "--json"], env)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["running"] and report["directory_alive"]
        assert len(report["nodes"]) == 5 and all(n["alive"] for n in report["nodes"])
        assert all("received" in n["counters"] for n in report["nodes"])
        # the global option reaches the running network (no second start)
        pinged = run_cli(["--network", "testnet", "ping", "-c", "1", "--json"], env)
        assert pinged.returncode == 0, pinged.stderr
        assert json.loads(pinged.stdout.splitlines()[-1])["received"] == 1
        assert "starting one in the background" not in pinged.stderr
        table = run_cli(["testnet", "status"], env)
        assert table.returncode == 0 and "mixnode" in table.stdout
        # after the ping, the counters show packets at every mix layer
        report = json.loads(run_cli(["testnet", "status", "--json"], env).stdout)
        assert all(n["counters"]["received"] > 0 for n in report["nodes"] if n["role"] == "mixnode")
        twice = run_cli(["testnet", "up"], env)
        assert twice.returncode == 112 and "already running" in twice.stderr
        # a network file can be selected by path, as on another host
        by_path = select_network(str(state_dir / "network.json"))
        assert by_path.api_urls == network.api_urls
    finally:
        stopped = run_cli(["testnet", "down"], env)
    assert stopped.returncode == 0, stopped.stderr
    assert read_pid(state_dir) is None
    assert not (state_dir / "network.json").exists()
    assert run_cli(["testnet", "status"], env).returncode == 112


def test_up_refuses_bad_options(env: dict[str, str]) -> None:
    for args in (["--loss", "1.5"], ["--nodes", "2"], ["--mix-delay-ms", "-1"]):
        result = run_cli(["testnet", "up", *args], env, timeout=30)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr


def test_foreground_up_stops_on_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    import signal

    state_dir = tmp_path / "fg"
    with foreground_testnet(state_dir, "--mix-delay-ms", "0", env=env) as (proc, network_file):
        assert json.loads(network_file.read_text())["mean_delay_ms"] == 0.0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert not (state_dir / "network.json").exists()
    assert not (state_dir / "testnet.pid").exists()
    out, err = proc.communicate()
    assert out.strip() == str(network_file)  # stdout: the network file path, for scripts
    assert "local network stopped" in err


def test_port_in_use_is_a_one_line_testnet_error(env: dict[str, str], tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(
            ["testnet", "up", "--dir", str(tmp_path / "busy"), "--port", str(port)], env
        )
    assert result.returncode == 112
    assert result.stderr.startswith("smolmix: cannot start the local network")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "busy" / "testnet.pid").exists()


def test_stale_pid_file_is_replaced(env: dict[str, str], tmp_path: Path) -> None:
    state_dir = tmp_path / "stale"
    state_dir.mkdir()
    (state_dir / "testnet.pid").write_text("999999\n")  # no such process
    assert read_pid(state_dir) is None
    result = run_cli(["testnet", "status", "--dir", str(state_dir)], env)
    assert result.returncode == 112


def test_network_testnet_starts_one_on_a_fresh_machine(env: dict[str, str], tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "smolmix" / "testnet"
    try:
        result = run_cli(["--network", "testnet", "ping", "-c", "1"], env)
        assert result.returncode == 0, result.stderr
        assert "starting one in the background" in result.stderr
        assert "1 received" in result.stdout
    finally:
        run_cli(["testnet", "down"], env)
    assert read_pid(state_dir) is None
