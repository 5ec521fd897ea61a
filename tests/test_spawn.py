"""The detached spawn: its own session, output to the log, answer, exit and timeout."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from smolmix_cli.spawn import SpawnFailed, spawn_detached


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # ours: reap it, or a zombie looks alive
        os.kill(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        return True
    return False


def test_returns_the_pid_and_the_answer_once_the_process_answers(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    log = tmp_path / "log"
    code = (
        "import os, sys, time; print('started', flush=True); time.sleep(0.2); "
        f"open({str(ready)!r}, 'w').write(str(os.getsid(0))); time.sleep(30)"
    )
    pid, answer = spawn_detached(
        _python(code),
        log,
        lambda: ready.read_text() or None if ready.exists() else None,
        timeout=10,
    )
    try:
        assert int(answer) == pid  # a session of its own: our terminal's signals do not reach it
        assert log.read_text().startswith("started")
        assert log.stat().st_mode & 0o777 == 0o600
    finally:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


def test_an_early_exit_fails_with_its_status_and_last_log_line(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("an older run\n")
    code = "import sys; print('first'); print('cannot bind: address in use'); sys.exit(3)"
    with pytest.raises(SpawnFailed) as info:
        spawn_detached(_python(code), log, lambda: None, timeout=10)
    assert info.value.returncode == 3
    assert info.value.last_log_line() == "cannot bind: address in use"
    assert log.read_text().startswith("an older run\n")  # appended, never truncated


def test_an_exit_is_waited_past_while_another_process_may_answer(tmp_path: Path) -> None:
    other = tmp_path / "other"
    start = time.monotonic()

    def answer() -> str | None:
        if time.monotonic() - start > 0.5:
            other.write_text("theirs")
        return other.read_text() if other.exists() else None

    _pid, result = spawn_detached(
        _python("pass"), tmp_path / "log", answer, timeout=10, others_may_answer=lambda: True
    )
    assert result == "theirs"


def test_no_answer_in_time_stops_the_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(30)"
    with pytest.raises(SpawnFailed) as info:
        spawn_detached(_python(code), tmp_path / "log", lambda: None, timeout=2.0)
    assert info.value.returncode is None and "2 s" in str(info.value)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(pid)
