"""The boot's phases as one transient status line on stderr (a terminal only).

The session factory reports phases through callbacks; drawing them is the
command's business, so rich stays out of the session layer.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from smolmix_cli.cli.env import CliEnv

if TYPE_CHECKING:
    from smolmix_cli.session.factory import StatusLine

WIDTH = 72


def boot_status(env: CliEnv) -> StatusLine | None:
    """The status line for `open_tunnel(status_line=...)`; None when stderr cannot redraw it."""
    if not env.stderr_redraws:
        return None
    return functools.partial(_status_line, env)


@contextlib.contextmanager
def _status_line(env: CliEnv) -> Iterator[Callable[[str], None]]:
    """A rich status line while the block runs, removed after."""
    status = env.console(stderr=True).status("booting the tunnel")
    status.start()
    try:
        yield lambda text: status.update(text if len(text) <= WIDTH else text[: WIDTH - 3] + "...")
    finally:
        status.stop()
