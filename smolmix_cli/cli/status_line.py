"""The boot's phases as one transient status line on stderr (a terminal only).

The session factory reports phases through callbacks; drawing them is the
command's business, so rich stays out of the session layer.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

WIDTH = 72


@contextlib.contextmanager
def boot_status() -> Iterator[Callable[[str], None] | None]:
    """A rich status line while the block runs, removed after; None when not on a terminal."""
    if not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":
        yield None
        return
    from rich.console import Console

    status = Console(stderr=True).status("booting the tunnel")
    status.start()
    try:
        yield lambda text: status.update(text if len(text) <= WIDTH else text[: WIDTH - 3] + "...")
    finally:
        status.stop()
