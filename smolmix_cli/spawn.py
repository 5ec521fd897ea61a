"""Start a process detached from this one and wait until it answers.

`testnet up` in the background and `session start` both run a second smolmix
that must outlive the command starting it: its own session (no terminal, no
signals from ours), stdin from /dev/null, output appended to a log file. The
caller says what "answers" means (a network file, a socket that accepts) and
gets what that check returned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SMOLMIX = (sys.executable, "-m", "smolmix_cli")  # this smolmix, however it was installed


class SpawnFailed(Exception):
    """The process exited before it answered, or did not answer in time (then it was stopped)."""

    def __init__(self, returncode: int | None, timeout: float, log_file: Path) -> None:
        self.returncode = returncode  # None: timed out
        self.timeout = timeout
        self.log_file = log_file
        if returncode is None:
            text = f"no answer within {timeout:g} s"
        else:
            text = f"exited with status {returncode}"
        super().__init__(f"{text}; see {log_file}")

    def last_log_line(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return f"see {self.log_file}"
        return lines[-1] if lines else f"see {self.log_file}"


def spawn_detached(
    argv: Sequence[str],
    log_file: Path,
    answer: Callable[[], T | None],
    *,
    timeout: float,
    poll: float = 0.05,
    others_may_answer: Callable[[], bool] | None = None,
) -> tuple[int, T]:
    """Start `argv` detached; return its pid and `answer()` once that is not None.

    `others_may_answer`: asked once our process has exited; True keeps waiting
    (another starter's process may still answer, as when two commands start the
    local network at once). Raises SpawnFailed.
    """
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = answer()
        if result is not None:
            return proc.pid, result
        if proc.poll() is not None and not (others_may_answer is not None and others_may_answer()):
            raise SpawnFailed(proc.returncode, timeout, log_file)
        time.sleep(poll)
    proc.terminate()
    raise SpawnFailed(None, timeout, log_file)
