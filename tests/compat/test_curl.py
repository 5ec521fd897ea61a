"""curl vs `smolmix fetch`, case by case (tests/compat/curl_cases.py), on one local network.

The module boots one local network and one `smolmix session`; every case is run on
both sides up front, a few at a time, and each test then checks one case's pair.
Attached, smolmix runs a case on its blocking shell where it can (else on the async
engine); `-m long` runs every case again with the blocking shell off, so both shells
are held to curl's behaviour.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.compat.curl_cases import CASES
from tests.compat.curl_runner import (
    REPO,
    Case,
    Origin,
    Outcome,
    differences,
    nginx_config,
    run_curl,
    run_smolmix,
)

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
WORKERS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _nginx(base: Path) -> Iterator[str]:
    """nginx as an unprivileged child on a loopback port ("" if nginx is not installed)."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        yield ""
        return
    port = _free_port()
    conf = nginx_config(base / "nginx", port)
    proc = subprocess.Popen(
        [binary, "-p", str(base / "nginx"), "-c", str(conf), "-e", "stderr"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    from smolmix_cli.network_select import running_network

    base = Path(tempfile.mkdtemp(prefix="smx-compat-curl-", dir="/tmp"))
    env = dict(os.environ)
    for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION", "SMOLMIX_NO_SESSION"):
        env.pop(name, None)
    env["XDG_STATE_HOME"] = str(base / "state")
    env["SMOLMIX_RUNTIME_DIR"] = str(base / "run")
    state = base / "state" / "smolmix" / "testnet"
    smolmix = (sys.executable, "-m", "smolmix_cli", "--network", "testnet")
    log = open(base / "testnet.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "smolmix_cli", "testnet", "up", "--mix-delay-ms", "0"],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while running_network(state) is None and time.monotonic() < deadline:
            assert proc.poll() is None, (base / "testnet.log").read_text()
            time.sleep(0.1)
        network = json.loads((state / "network.json").read_text())
        ca_file = base / "ca.pem"
        ca_file.write_text(network["ca_pem"])
        started = subprocess.run(
            [*smolmix, "session", "start"], env=env, cwd=REPO, capture_output=True, timeout=60
        )
        assert started.returncode == 0, started.stderr
        ports = network["demo"]["loopback_ports"]
        with _nginx(base) as nginx:
            yield Origin(ports["http"], ports["https"], ca_file, env, nginx)
        subprocess.run([*smolmix, "session", "stop"], env=env, cwd=REPO, timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        log.close()
        for pid_file in (base / "run").glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError, OSError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def outcomes(origin: Origin) -> dict[str, tuple[Outcome, Outcome]]:
    """Every case on both sides (cheap curl first, then smolmix a few at a time)."""

    def both(case: Case) -> tuple[Outcome, Outcome]:
        if "{nginx}" in case.args and not origin.nginx:
            return Outcome(b"", 0, None, {}), Outcome(b"", 0, None, {})
        return run_curl(case, origin), run_smolmix(case, origin)

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip([c.name for c in CASES], pool.map(both, CASES), strict=True))


def test_case_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c.known) if c.known else ())
        for c in CASES
    ],
    ids=[c.name for c in CASES],
)
def test_curl_case(
    case: Case, origin: Origin, outcomes: dict[str, tuple[Outcome, Outcome]]
) -> None:
    if "{nginx}" in case.args and not origin.nginx:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    curl, smolmix = outcomes[case.name]
    found = differences(case, curl, smolmix)
    assert not found, "\n".join(found)


@pytest.fixture(scope="module")
def async_outcomes(
    origin: Origin, outcomes: dict[str, tuple[Outcome, Outcome]]
) -> dict[str, Outcome]:
    """Every case again on the async engine (the blocking attach shell turned off)."""

    def one(case: Case) -> Outcome:
        if "{nginx}" in case.args and not origin.nginx:
            return Outcome(b"", 0, None, {})
        return run_smolmix(case, origin, async_engine=True)

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip([c.name for c in CASES], pool.map(one, CASES), strict=True))


@pytest.mark.long
@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=c.known) if c.known else ())
        for c in CASES
    ],
    ids=[c.name for c in CASES],
)
def test_curl_case_async_engine(
    case: Case,
    origin: Origin,
    outcomes: dict[str, tuple[Outcome, Outcome]],
    async_outcomes: dict[str, Outcome],
) -> None:
    if "{nginx}" in case.args and not origin.nginx:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    found = differences(case, outcomes[case.name][0], async_outcomes[case.name])
    assert not found, "\n".join(found)
