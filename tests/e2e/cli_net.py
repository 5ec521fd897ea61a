"""One local network per test module, and the real CLI run against it in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
RUN_TIMEOUT = 60.0
_SMOLMIX = (sys.executable, "-m", "smolmix_cli")


@contextlib.contextmanager
def foreground_testnet(
    state_dir: Path,
    *options: str,
    env: dict[str, str] | None = None,
    stdout: int = subprocess.PIPE,
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """`smolmix testnet up --dir state_dir OPTIONS` in the foreground, yielded with its network
    file once that exists (or the process ended, or START_TIMEOUT passed); killed if still
    running at the end, so a test that wants a clean stop sends SIGTERM itself."""
    proc = subprocess.Popen(
        [*_SMOLMIX, "testnet", "up", "--dir", str(state_dir), *options],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    path = state_dir.resolve() / "network.json"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_network(state_dir: Path, mix_delay_ms: float = 0) -> Iterator[Path]:
    """`smolmix testnet up --dir state_dir --mix-delay-ms N` until the generator is closed."""
    options = ("--mix-delay-ms", str(mix_delay_ms))
    with foreground_testnet(state_dir, *options, stdout=subprocess.DEVNULL) as (proc, path):
        try:
            assert path.exists(), "the local network did not start"
            yield path
        finally:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)


def state_env(tmp_path: Path) -> dict[str, str]:
    """This environment with its state (the default testnet's directory) under `tmp_path`."""
    env = dict(os.environ)
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env.pop("SMOLMIX_NETWORK", None)
    return env


def run_cli(
    args: Sequence[str], env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """`smolmix ARGS` in a subprocess, as text."""
    return subprocess.run(
        [*_SMOLMIX, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def hermetic_env() -> dict[str, str]:
    """No proxy or CA variables from the developer's shell."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper()
        not in {
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "NO_PROXY",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
        }
    }
    for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION", "SMOLMIX_NO_SESSION", "SMOLMIX_RUNTIME_DIR"):
        env.pop(name, None)  # a developer's session settings must not leak into the tests
    return env


def smolmix(
    network: Path,
    *args: str,
    stdin: bytes | None = None,
    timeout: float = RUN_TIMEOUT,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "smolmix_cli", "--network", str(network), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env={**hermetic_env(), "PYTHONPATH": str(REPO)},
    )


@dataclass
class CliOnTestnet:
    """The real CLI on `--network testnet` in one environment (its state and runtime dirs)."""

    env: dict[str, str]

    def run(
        self, *args: str, input: bytes | None = None, timeout: float = RUN_TIMEOUT
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*_SMOLMIX, "--network", "testnet", *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            env=self.env,
            cwd=REPO,
        )

    def status(self) -> dict[str, Any]:
        """`session status --json` of this environment's session."""
        done = self.run("session", "status", "--json")
        assert done.returncode == 0, done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report


class PrivateTestnet(CliOnTestnet):
    """`--network testnet` with a state and runtime dir of its own under `base`; `up()` starts a
    network there (again and again), `close()` stops the session and every network it started."""

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

    def up(self, *options: str, within: float = START_TIMEOUT) -> None:
        from smolmix_cli.network_select import running_network

        log = open(self.base / "testnet.log", "ab")  # noqa: SIM115 - the child keeps it
        words = ["testnet", "up", "--mix-delay-ms", "0", *options]
        self.networks.append(
            subprocess.Popen(
                [*_SMOLMIX, *words],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        )
        log.close()
        deadline = time.monotonic() + within
        while running_network(self.state) is None:
            assert time.monotonic() < deadline, (self.base / "testnet.log").read_text()
            assert self.networks[-1].poll() is None, (self.base / "testnet.log").read_text()
            time.sleep(0.1)

    def close(self) -> None:
        self.run("session", "stop", timeout=30)
        for proc in self.networks:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        for pid_file in (self.base / "run").glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError, OSError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)

    @classmethod
    @contextlib.contextmanager
    def in_tmp(cls, prefix: str) -> Iterator[PrivateTestnet]:
        testnet = cls(Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp")))
        try:
            yield testnet
        finally:
            testnet.close()
