"""`smolmix fetch -K FILE`: curl config files merged under the command line.

The file's lines become words (apps/http_config.py) that fetch's own click
command parses, so a config file knows exactly the options the command line does.
A -K file is named on the command line, so what it sets replaces the `[fetch]`
table of smolmix's own config file (cli/config_defaults.py), as typed options do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from smolmix_cli.apps.errors import ReadError
from smolmix_cli.apps.http_config import config_words
from smolmix_cli.cli.env import CliEnv


def takes_value(command: click.Command, option: str) -> bool | None:
    """Does this option of `command` take a value (None: no such option)?"""
    for param in command.params:
        if isinstance(param, click.Option) and option in (*param.opts, *param.secondary_opts):
            return not param.is_flag
    return None


def with_configs(
    command: click.Command, ctx: click.Context, kw: dict[str, Any], env: CliEnv
) -> dict[str, Any]:
    """The -K files' options under the command line's: a value typed on the command line
    wins, repeatable options (and URLs) from the files come first, as in curl."""
    merged = {k: v for k, v in kw.items() if k != "configs"}
    unset = (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    from_config_file = {n for n in merged if ctx.get_parameter_source(n) is unset[2]}
    for source in kw.get("configs") or ():
        try:
            raw = env.stdin.read() if source == "-" else Path(source).read_bytes()
        except OSError as exc:
            raise ReadError(f"cannot read config file {source}: {exc.strerror}") from None
        words = config_words(
            raw.decode("utf-8", "replace"), source, lambda o: takes_value(command, o)
        )
        sub = command.make_context(command.name, words, parent=ctx.parent)
        for name, value in sub.params.items():
            if name in ("urls", "configs") or sub.get_parameter_source(name) in unset:
                continue  # not in this file
            param = next(p for p in command.params if p.name == name)
            if getattr(param, "multiple", False):
                if name in from_config_file:
                    from_config_file.discard(name)
                    merged[name] = ()
                merged[name] = (*value, *merged[name])
            elif ctx.get_parameter_source(name) in unset:
                merged[name] = value
    return merged
