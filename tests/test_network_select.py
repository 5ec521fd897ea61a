"""`--network` selection: mainnet, a file, a running local network, or one started on demand.

The local network here is a stand-in process named like `testnet up` (what the
pid check looks for), so selection is tested without booting one; starting a
real one is tests/testnet/test_network_cli.py's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smolmix_cli.config import MAINNET, PID_FILE, GatewayInfo, NetworkConfigError, network_file_json
from smolmix_cli.network_choice import NETWORK_FILE
from smolmix_cli.network_select import LocalNetworkUnavailable, read_pid, select_network


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("SMOLMIX_NETWORK", raising=False)
    path = tmp_path / "state" / "smolmix" / "testnet"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def stand_in(state_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A live process that looks like `smolmix testnet up`, holding the pid file."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "testnet", "up"])
    (state_dir / PID_FILE).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while read_pid(state_dir) is None and time.monotonic() < deadline:
        time.sleep(0.01)  # until it has exec'd: before that its command line is ours
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _network_file(path: Path, pid: int | None = None) -> Path:
    gateway = GatewayInfo(1, "gw", "ws://127.0.0.1:1/")
    data = network_file_json(
        directory_url="http://127.0.0.1:9/",
        ca_pem="-----BEGIN CERTIFICATE-----\n",
        mean_delay_ms=0.0,
        entry_gateway=gateway,
        exit_gateway=gateway,
        status_url="http://127.0.0.1:9/smolmix/status",
        extra=None if pid is None else {"pid": pid},
    )
    path.write_text(json.dumps(data))
    return path


def test_mainnet_and_files_are_selected_without_a_word(state_dir: Path) -> None:
    phases: list[str] = []
    assert select_network("mainnet", on_phase=phases.append) is MAINNET
    assert select_network(None, on_phase=phases.append) is MAINNET
    path = _network_file(state_dir.parent / "elsewhere.json")
    assert select_network(str(path), on_phase=phases.append).file == path
    with pytest.raises(NetworkConfigError, match="no network file"):
        select_network(str(state_dir / "missing.json"), on_phase=phases.append)
    assert phases == []


def test_a_running_local_network_is_reused(
    state_dir: Path, stand_in: subprocess.Popen[bytes]
) -> None:
    _network_file(state_dir / NETWORK_FILE, pid=stand_in.pid)
    phases: list[str] = []
    network = select_network("testnet", on_phase=phases.append)
    assert network.name == "testnet" and network.extra["pid"] == stand_in.pid
    assert phases == []


def test_without_start_a_missing_local_network_is_an_error(state_dir: Path) -> None:
    phases: list[str] = []
    with pytest.raises(LocalNetworkUnavailable, match="no local test network is running"):
        select_network("testnet", start=False, on_phase=phases.append)
    assert phases == []
    _network_file(state_dir / NETWORK_FILE, pid=999_999)  # a file left by a dead network
    with pytest.raises(LocalNetworkUnavailable):
        select_network("testnet", start=False)


def test_a_start_is_reported_first_and_a_failed_start_says_so(
    state_dir: Path, stand_in: subprocess.Popen[bytes]
) -> None:
    # The stand-in holds the pid file but never writes a network file: the real
    # `testnet up` started in the background refuses ("already running") and exits;
    # selection keeps waiting while the stand-in lives, then reports the failure.
    phases: list[str] = []
    outcome: list[BaseException] = []

    def select() -> None:
        try:
            select_network("testnet", on_phase=phases.append)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=select)
    thread.start()
    log = state_dir / "testnet.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "already running" not in (
        log.read_text() if log.exists() else ""
    ):
        time.sleep(0.05)
    assert phases and "starting one in the background" in phases[0] and str(state_dir) in phases[0]
    assert thread.is_alive()  # the stand-in may still come up: selection waits for it
    stand_in.kill()
    stand_in.wait()
    thread.join(timeout=10)
    assert read_pid(state_dir) is None
    [error] = outcome
    assert isinstance(error, LocalNetworkUnavailable)
    assert "failed to start (exit 112)" in str(error) and str(log) in str(error)


@pytest.mark.parametrize("xdg", [None, "/tmp/smolmix-xdg-state", "", "  ", "relative/dir"])
def test_the_state_dir_is_platformdirs_without_importing_it(
    monkeypatch: pytest.MonkeyPatch, xdg: str | None
) -> None:
    """On Linux the XDG rule is applied by hand (platformdirs costs every testnet command
    tempfile and shutil); it must name the directory platformdirs would."""
    import platformdirs

    from smolmix_cli.network_choice import state_dir

    if xdg is None:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_STATE_HOME", xdg)
    assert state_dir() == platformdirs.user_state_path("smolmix")
