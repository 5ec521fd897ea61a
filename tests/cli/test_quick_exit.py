"""cli/quick_exit.py: an armed command skips the teardown, and nothing else changes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# A process that writes buffered output, holds an object whose finalizer reports the
# teardown, and ends the way `smolmix` does: SystemExit caught in main, then `leave`.
PROGRAM = """
import sys
from smolmix_cli.cli import quick_exit

class Witness:
    def __del__(self):
        sys.stderr.write("teardown\\n")

witness = Witness()
sys.stdout.write("body " * {words})  # over one buffer's worth: partly unflushed
{setup}
try:
    sys.exit({code})
except SystemExit as stop:
    quick_exit.leave(stop.code)
    raise
"""


def run(setup: str = "", code: str = "3", words: int = 2000) -> subprocess.CompletedProcess[str]:
    source = PROGRAM.format(setup=textwrap.dedent(setup), code=code, words=words)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout buffered
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, timeout=30, env=env
    )


def test_armed_exit_skips_teardown_and_keeps_output_and_code() -> None:
    done = run("quick_exit.arm()")
    assert done.returncode == 3
    assert done.stdout == "body " * 2000
    assert "teardown" not in done.stderr


def test_unarmed_exit_is_the_normal_one() -> None:
    done = run()
    assert done.returncode == 3
    assert done.stdout == "body " * 2000
    assert "teardown" in done.stderr


def test_an_atexit_user_gets_the_normal_exit() -> None:
    done = run(
        "quick_exit.arm()\nimport atexit\natexit.register(lambda: print('atexit ran', file=sys.stderr))"
    )
    assert done.returncode == 3
    assert "atexit ran" in done.stderr
    assert "teardown" in done.stderr


def test_a_message_exit_prints_as_usual() -> None:
    done = run("quick_exit.arm()", code="'smolmix: stopped'")
    assert done.returncode == 1
    assert "smolmix: stopped" in done.stderr


def test_another_thread_gets_the_normal_exit() -> None:
    setup = """
    import threading
    threading.Thread(target=lambda: None, daemon=False).start()
    release = threading.Event()
    threading.Thread(target=release.wait, daemon=True).start()
    quick_exit.arm()
    """
    done = run(setup)
    assert done.returncode == 3
    assert "teardown" in done.stderr


def test_a_failed_flush_gets_the_normal_exit() -> None:
    # stdout closed under the buffered words: the flush fails; the exit is the unarmed one
    closed = "import os\nos.close(1)"
    armed, unarmed = run("quick_exit.arm()\n" + closed, words=2), run(closed, words=2)
    assert "teardown" in armed.stderr
    assert (armed.returncode, armed.stderr) == (unarmed.returncode, unarmed.stderr)
    assert armed.returncode != 0
