"""A background session outlives its network: `testnet down` then `up` under a running session.

Regression for "a session never notices that its gateway is gone": the daemon
kept a tunnel whose gateway had vanished, `session status` said ready, and every
later command timed out until `session stop` + `start`. Now the tunnel fails
once its gateway stays unreachable past a grace period, the daemon boots the
next generation from the network file as it is then, and the next fetch works.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smolmix_cli.network_select import running_network
from tests.e2e.cli_net import CliOnTestnet

REPO = Path(__file__).resolve().parents[2]
BACK_WITHIN = 30.0  # the bound: the next fetch succeeds this soon after the network


class Env(CliOnTestnet):
    """A state and runtime dir of their own; `up()` starts a network there, again and again."""

    def __init__(self, base: Path) -> None:
        env = dict(os.environ)
        for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION", "SMOLMIX_NO_SESSION"):
            env.pop(name, None)
        env["XDG_STATE_HOME"] = str(base / "state")
        env["SMOLMIX_RUNTIME_DIR"] = str(base / "run")
        super().__init__(env)
        self.base = base
        self.state = base / "state" / "smolmix" / "testnet"
        self.networks: list[subprocess.Popen[bytes]] = []

    def up(self) -> None:
        log = open(self.base / "testnet.log", "ab")  # noqa: SIM115 - the child keeps it
        self.networks.append(
            subprocess.Popen(
                [sys.executable, "-m", "smolmix_cli", "testnet", "up", "--mix-delay-ms", "0"],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        log.close()
        deadline = time.monotonic() + 30
        while running_network(self.state) is None:
            assert time.monotonic() < deadline, (self.base / "testnet.log").read_text()
            assert self.networks[-1].poll() is None, (self.base / "testnet.log").read_text()
            time.sleep(0.1)


@pytest.fixture
def env() -> Iterator[Env]:
    base = Path(tempfile.mkdtemp(prefix="smx-rec-", dir="/tmp"))
    env = Env(base)
    try:
        yield env
    finally:
        env.run("session", "stop", timeout=30)
        for proc in env.networks:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        for pid_file in (base / "run").glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError, OSError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


def test_session_replaces_its_tunnel_after_testnet_down_and_up(env: Env) -> None:
    env.up()
    started = env.run("session", "start")
    assert started.returncode == 0, started.stderr
    first = env.run("fetch", "-sS", "http://demo.smolmix.test/")
    assert first.returncode == 0 and b"It works." in first.stdout, first.stderr
    assert env.status()["generation"] == 1

    down = env.run("testnet", "down")
    assert down.returncode == 0, down.stderr
    env.networks[-1].wait(timeout=20)
    env.up()
    back = time.monotonic()
    fetched = env.run("fetch", "-sS", "-m", str(BACK_WITHIN), "http://demo.smolmix.test/")
    took = time.monotonic() - back
    assert fetched.returncode == 0 and b"It works." in fetched.stdout, fetched.stderr
    assert took < BACK_WITHIN

    report = env.status()
    assert report["state"] == "ready"
    assert isinstance(report["generation"], int) and report["generation"] >= 2
    assert "lost the gateway" in str(report["last_failure"])
