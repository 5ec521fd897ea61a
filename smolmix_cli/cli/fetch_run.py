"""What `smolmix fetch` does once its command line is read, with or without click.

The click command (fetch.py) and the click-free attach path (fast_argv.py) both end
here, with the command's keywords as click would give them, so a command line does
the same whichever of the two read it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn

from smolmix_cli import __version__
from smolmix_cli.apps.errors import UsageError
from smolmix_cli.cli.env import CliEnv
from smolmix_cli.cli.errors import run_reported
from smolmix_cli.cli.fetch_settings import parse_settings
from smolmix_cli.cli.fetch_transfer import reporter
from smolmix_cli.options import GlobalOptions


def run_fetch_command(
    env: CliEnv,
    urls: tuple[str, ...],
    kw: dict[str, Any],
    globals_: GlobalOptions,
    merge: Callable[[], dict[str, Any]],
) -> NoReturn:
    """Fetch `urls` and exit with curl's status. `merge` gives the keywords with the -K
    files' options under them (cli/fetch_config.py), read once the failure report is set."""

    def body() -> int:
        merged = merge()
        targets = (*merged.pop("url_options"), *urls)
        if not targets:
            raise UsageError("no URL specified!")
        settings = parse_settings(targets, merged, env)
        settings.extra["curl_version"] = f"smolmix/{__version__}"  # -w's %{curl_version}
        if settings.insecure and not settings.silent:
            env.echo("smolmix: WARNING: -k: TLS certificates are not verified", err=True)
        from smolmix_cli.cli.fetch_attached import run_attached

        status = run_attached(env, settings, globals_)
        if status is not None:
            return status
        import anyio

        from smolmix_cli.cli.fetch_engine import run_fetch

        return anyio.run(run_fetch, env, settings, globals_)

    shown = not kw["silent"] or bool(kw["show_error"])  # a -K file's -s counts from parsing on
    sys.exit(run_reported(body, reporter(env, shown)))
