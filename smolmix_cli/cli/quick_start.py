"""The `smolmix` console script: no cyclic garbage collection while a command loads.

Loading click, the command's module and the attach shell makes tens of thousands of
objects and no garbage cycles, yet the collector ran 34 times over them (5 ms of an
attached `fetch`'s 80 ms of CPU). The entry point pauses it; the group's callback, which
click runs once the command line is parsed and just before the command, resumes it, with
what loaded so far frozen out of later scans (`gc.freeze`), so a long transfer runs with
the collector as usual. Nothing changes for code that imports the CLI without this entry
point (tests, the docs generator): `resume` only undoes a pause of its own.
"""

from __future__ import annotations

import gc
import os
import sys

_paused = False


def pause() -> None:
    """Stop the cyclic collector until `resume` (only if it runs now)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Restart the collector `pause` stopped, the objects loaded so far frozen."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def main() -> None:
    """The `smolmix` command (pyproject's console script and `python -m smolmix_cli`)."""
    pause()
    try:
        _run()
    except SystemExit as stop:
        from smolmix_cli.cli.quick_exit import leave

        leave(stop.code)  # returns unless the command armed it (cli/quick_exit.py)
        raise


def _run() -> None:
    """A fetch line click-free when cli/fast_argv.py takes it, else click's group."""
    if "fetch" in sys.argv:
        from smolmix_cli.cli import fast_argv

        plan = fast_argv.parse(sys.argv[1:], os.environ)
        if plan is not None:
            fast_argv.run(plan)
    from smolmix_cli.cli.main import main as run

    run()
