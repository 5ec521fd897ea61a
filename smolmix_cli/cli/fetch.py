"""`smolmix fetch URL...`: curl over the mixnet.

Everything the user typed is checked before the tunnel boots (a typo should
not cost a mixnet round trip; fetch_settings.py). Then a ready background
session serves it without an event loop where it can (fetch_attached.py), else
the async engine (fetch_engine.py): one tunnel and one HTTP client (keep-alive
pool per origin) for every URL in order. Body bytes go to stdout or the -o file
untouched; headers (-i, -I, -D), -v diagnostics, -w and the progress bar go
where curl puts them (fetch_output.py, fetch_transfer.py).
Failures print one line (unless -s without -S) and exit with curl's number;
with several URLs the last transfer's number is the exit status, as in curl
(`curl bad good` exits 0). -w runs after every transfer, failed ones included,
the one -m cut short too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from smolmix_cli.cli.env import cli_env
from smolmix_cli.cli.fetch_config import with_configs
from smolmix_cli.cli.fetch_options import FILE, FILE_PATH, FLOAT, INT, OPTIONS, PATH, FetchOption
from smolmix_cli.cli.fetch_run import run_fetch_command
from smolmix_cli.cli.options import click_range, global_options

F = TypeVar("F", bound=Callable[..., Any])


def _click_type(spec: FetchOption) -> click.ParamType[Any, Any] | None:
    if spec.kind in (INT, FLOAT):
        return click_range(int if spec.kind == INT else float, spec.low, spec.high)
    if spec.kind == PATH:
        return click.Path(path_type=Path)
    if spec.kind == FILE_PATH:
        return click.Path(dir_okay=False, path_type=Path)
    if spec.kind == FILE:
        return click.Path(dir_okay=False)
    return None


def _with_options(func: F) -> F:
    """The table's options (cli/fetch_options.py) on the command, in `--help` order."""
    for spec in reversed(OPTIONS):
        extra: dict[str, Any] = {}
        if spec.flag:
            extra["is_flag"] = True
        if spec.multiple:
            extra["multiple"] = True
        if spec.default is not None:
            extra["default"] = spec.default
        if spec.show_default:
            extra["show_default"] = True
        kind = _click_type(spec)
        if kind is not None:
            extra["type"] = kind
        func = click.option(*spec.opts, spec.dest, metavar=spec.metavar, help=spec.help, **extra)(
            func
        )
    return func


@click.command(name="fetch", epilog=None)
@click.argument("urls", nargs=-1, metavar="URL...")
@_with_options
@click.pass_context
def fetch(ctx: click.Context, /, urls: tuple[str, ...], **kw: Any) -> None:
    """Fetch URLs over the mixnet with curl's options and exit codes.

    Body bytes go to stdout untouched (or to -o files); diagnostics go to stderr.
    Exit codes: curl's (3 malformed URL, 6 name, 7 connect, 22 HTTP error with -f,
    28 timeout, 35 TLS, 47 redirects, 52 empty reply, 56 receive, 60 certificate)
    plus 5 (Nym network unreachable) and 97 (exit IPR refused or silent).

    \b
    Examples:
      smolmix --network testnet fetch https://demo.smolmix.test/
      smolmix fetch -sS -o page.html -w '%{http_code} %{time_total}\\n' https://example.com/
      smolmix fetch -L --max-redirs 3 -i http://example.com/old
      smolmix fetch --json '{"a":1}' https://httpbin.org/post
      smolmix fetch -F name=value -F file=@photo.jpg https://example.com/upload
      smolmix fetch -C - -o big.iso https://example.com/big.iso
    """
    env = cli_env(ctx)
    run_fetch_command(env, urls, kw, global_options(ctx), lambda: with_configs(fetch, ctx, kw, env))
