"""Runtime dir checks, per-network socket names, and the boot lock."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smolmix_cli.session.paths import (
    LockTimeout,
    SessionPathError,
    SessionPaths,
    boot_lock,
    runtime_dir,
    session_name,
)
from tests.session.stand_in import short_runtime_dir


@pytest.fixture
def base() -> Iterator[Path]:
    path = short_runtime_dir()
    yield path
    shutil.rmtree(path)


def test_one_socket_name_per_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMOLMIX_NETWORK", raising=False)
    assert session_name("mainnet") == session_name(None) == "mainnet"
    assert session_name("testnet") == "testnet"
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert session_name(str(a)).startswith("file-")
    assert session_name(str(a)) != session_name(str(b))
    monkeypatch.chdir(tmp_path)
    assert session_name("a.json") == session_name(str(a))  # by absolute path


def test_runtime_dir_is_created_private_and_tightened(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMOLMIX_RUNTIME_DIR", str(base / "rt"))
    made = runtime_dir()
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    os.chmod(made, 0o755)
    assert stat.S_IMODE(runtime_dir().stat().st_mode) == 0o700
    monkeypatch.delenv("SMOLMIX_RUNTIME_DIR")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    assert runtime_dir() == base / "smolmix"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give the directory away")
def test_runtime_dir_of_another_user_is_refused(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = base / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    monkeypatch.setenv("SMOLMIX_RUNTIME_DIR", str(foreign))
    with pytest.raises(SessionPathError, match="another user"):
        runtime_dir()


def test_symlinked_runtime_dir_is_refused(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (base / "real").mkdir(mode=0o700)
    (base / "link").symlink_to(base / "real")
    monkeypatch.setenv("SMOLMIX_RUNTIME_DIR", str(base / "link"))
    with pytest.raises(SessionPathError, match="not a directory"):
        runtime_dir()


def test_too_long_socket_path_is_a_clear_error(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOLMIX_RUNTIME_DIR", str(base / ("d" * 100)))
    with pytest.raises(SessionPathError, match="too long"):
        SessionPaths.for_network("testnet")


def test_boot_lock_is_exclusive_and_bounded(base: Path) -> None:
    os.chmod(base, 0o700)
    paths = SessionPaths("testnet", base)
    holding = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with boot_lock(paths, 5):
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert holding.wait(5)
        start = time.monotonic()
        with pytest.raises(LockTimeout), boot_lock(paths, 0.2):
            pass
        assert time.monotonic() - start >= 0.2
    finally:
        release.set()
        thread.join(5)
    with boot_lock(paths, 1):  # free again once the holder is done
        assert stat.S_IMODE(paths.lock_file.stat().st_mode) == 0o600
