"""The one place where a command's failure becomes one stderr line and its exit code.

Which code and text an exception gets is decided by smolmix_cli.errors_map;
this module only runs a command body under that classification and prints.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from smolmix_cli.cli.env import cli_env
from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import CliError

P = ParamSpec("P")
R = TypeVar("R")

Report = Callable[[CliError], None]


def print_error(error: CliError) -> None:
    """On the running command's stderr (its env: see cli/env.py)."""
    cli_env().echo(f"smolmix: {error}", err=True)


def run_reported(body: Callable[[], R], report: Report = print_error) -> R:
    """Run a command body; a failure is `report`ed as classified, then exits with its code.

    click's own exits (usage errors, --help, ctx.exit) and sys.exit pass through.
    """
    try:
        return body()
    except BaseException as exc:  # the single translation point
        if _passes(exc):
            raise
        error = classify(exc)
        report(error)
        sys.exit(int(error.code))


def _passes(exc: BaseException) -> bool:
    """sys.exit, or one of click's exits (only raised once click is loaded: the attach path
    that never loads it, cli/fast_argv.py, does not pay for the import here)."""
    if isinstance(exc, SystemExit):
        return True
    click = sys.modules.get("click")
    return click is not None and isinstance(
        exc, click.exceptions.Exit | click.ClickException | click.Abort
    )


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """A command body whose failures print one line (`smolmix: ...`) and exit with its code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return run_reported(lambda: func(*args, **kwargs))

    return wrapper
