"""One local network per test module, and the real CLI run against it in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
RUN_TIMEOUT = 60.0
_SMOLMIX = (sys.executable, "-m", "smolmix_cli")


def start_network(state_dir: Path, mix_delay_ms: float = 0) -> Iterator[Path]:
    """`smolmix testnet up --dir state_dir --mix-delay-ms N` until the generator is closed."""
    proc = subprocess.Popen(
        [*_SMOLMIX, "testnet", "up", "--dir", str(state_dir), "--mix-delay-ms", str(mix_delay_ms)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    path = state_dir.resolve() / "network.json"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.exists(), "the local network did not start"
        yield path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
