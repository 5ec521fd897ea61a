"""A short command may leave without the interpreter's teardown.

Freeing a few hundred modules and their objects cost an attached `fetch` about 11 ms of
its ~110 ms (bench/session.py, 15 interleaved runs); the kernel frees a process at once.
Only a path that closes every file it opens arms it (the blocking attach shell). The exit
flushes stdout and stderr itself, and leaves the normal way, so nothing changes, when a
flush fails (the usual error report follows) or when something may need the teardown:
an `atexit` user (logging's handlers, `weakref.finalize`, tempfile) or another thread.
"""

from __future__ import annotations

import os
import sys

_armed = False


def arm() -> None:
    """This process may end without teardown once the command returns."""
    global _armed
    _armed = True


def leave(code: object) -> None:
    """End the process now with SystemExit's `code` if armed and safe; else return."""
    if not _armed or "atexit" in sys.modules:
        return
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # a message to print: the normal exit does that
        return
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(status)
