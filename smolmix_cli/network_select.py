"""Which network `--network` means, starting the local test network when it is not running.

The running local network is found through two files in its state dir: the
pid file (written first, removed last) and the network file (written once
every node and the directory listen). Starting it in the background runs
`smolmix testnet up --dir DIR` detached and waits for both. Progress goes to
the caller's `on_phase` (the CLI prints it); nothing here writes to a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from smolmix_cli.config import (
    LOG_FILE,
    MAINNET,
    PID_FILE,
    Network,
    NetworkConfigError,
    load_network_file,
)
from smolmix_cli.network_choice import NETWORK_FILE, NetworkChoice

START_TIMEOUT = 30.0
PhaseCallback = Callable[[str], None]


class LocalNetworkUnavailable(NetworkConfigError):
    """The local test network is not running and was not, or could not be, started."""


def read_pid(state_dir: Path) -> int | None:
    """The pid of a live `testnet up` for this dir, or None (stale files are ignored)."""
    try:
        pid = int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_testnet_process(pid) else None


def is_testnet_process(pid: int) -> bool:
    """True if `pid` is alive and (where /proc says) a `testnet up`, not a reused number."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process reuses the number
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            return False
        return b"testnet" in words and b"up" in words
    return True


def running_network(state_dir: Path) -> Network | None:
    """The network file of a live network in `state_dir`, if there is one."""
    pid = read_pid(state_dir)
    if pid is None:
        return None
    try:
        network = load_network_file(state_dir / NETWORK_FILE, name="testnet")
    except NetworkConfigError:
        return None
    return network if network.extra.get("pid") == pid else None


def start_background(state_dir: Path, timeout: float = START_TIMEOUT) -> Network:
    """Run `smolmix testnet up --dir DIR` detached; wait until its network file is ready."""
    from smolmix_cli.spawn import SMOLMIX, SpawnFailed, spawn_detached  # subprocess: here only

    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = state_dir / LOG_FILE
    try:
        _pid, network = spawn_detached(
            [*SMOLMIX, "testnet", "up", "--dir", str(state_dir)],
            log_path,
            lambda: running_network(state_dir),  # ours, or one a concurrent command started
            timeout=timeout,
            poll=0.1,
            others_may_answer=lambda: read_pid(state_dir) is not None,
        )
    except SpawnFailed as exc:
        if exc.returncode is None:
            raise LocalNetworkUnavailable(
                f"the local test network did not start within {timeout:g} s; see {log_path}"
            ) from None
        raise LocalNetworkUnavailable(
            f"the local test network failed to start (exit {exc.returncode}); see {log_path}"
        ) from None
    return network


def select_network(
    value: str | None, *, start: bool = True, on_phase: PhaseCallback | None = None
) -> Network:
    """The network behind `--network` / SMOLMIX_NETWORK, starting a local one if needed."""
    choice = NetworkChoice.parse(value)
    if choice.kind == "mainnet":
        return MAINNET
    assert choice.path is not None
    if choice.kind == "file":
        return load_network_file(choice.path)
    state_dir = choice.path.parent
    network = running_network(state_dir)
    if network is not None:
        return network
    if not start:
        raise LocalNetworkUnavailable("no local test network is running")
    if on_phase is not None:
        on_phase(
            f"no local test network running; starting one in the background "
            f"(state in {state_dir}; stop it with `smolmix testnet down`)"
        )
    return start_background(state_dir)
