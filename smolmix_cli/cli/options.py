"""The global options as click options, built from the table in smolmix_cli/options.py.

They live on the group so one spelling works for every command (and for the
background session); each command reads them through `global_options(ctx)`.
Each has an environment variable, SMOLMIX_ and its name (SMOLMIX_MTU,
SMOLMIX_NO_COVER), and a key in the config file (cli/config_defaults.py): a value
comes from the command line, else the variable, else the file, else the default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from smolmix_cli.cli.config_defaults import named_network, rank, remember_choice
from smolmix_cli.options import GlobalOptions, Spelling, option_fields, ranked

F = TypeVar("F", bound=Callable[..., Any])


def click_range(
    number: type[int] | type[float], low: float | None, high: float | None
) -> click.ParamType[Any, Any]:
    """click's closed range for a number option's bounds (global ones here, fetch's in
    cli/fetch.py; cli/fast_argv.py `_number` converts the same way without click)."""
    if number is float:
        return click.FloatRange(min=low, max=high)
    return click.IntRange(
        min=None if low is None else int(low), max=None if high is None else int(high)
    )


def _click_type(spelling: Spelling) -> click.ParamType[Any, Any] | None:
    if spelling.choices:
        return click.Choice(list(spelling.choices))
    if spelling.number is not None:
        return click_range(spelling.number, spelling.low, spelling.high)
    return None


def _click_option(field: str, default: object, spelling: Spelling) -> Callable[[F], F]:
    extra: dict[str, Any] = {}
    if spelling.is_flag:
        extra["is_flag"] = True
    elif spelling.multiple:
        extra["multiple"] = True
    else:
        extra["type"] = _click_type(spelling)
        extra["default"] = spelling.cli_default if spelling.cli_default is not None else default
    if field == "network":
        extra["callback"] = named_network  # `--network NAME` of the config file's [networks]
    if field == "config":  # which file gives the others their defaults: read before them
        extra.update(is_eager=True, callback=remember_choice)
    return click.option(
        spelling.name,
        spelling.param(field),
        metavar=spelling.metavar,
        envvar=spelling.variable,
        show_envvar=spelling.envvar is None,  # the others name theirs in their help
        show_default=spelling.show_default or None,
        help=spelling.help,
        **extra,
    )


def click_options() -> list[Callable[[F], F]]:
    """One click option per spelling in the table, in `--help` order."""
    return [
        _click_option(field.name, field.default, spelling)
        for field, spec in option_fields()
        for spelling in spec.spellings
    ]


def global_option_decorators(func: F) -> F:
    """Apply the shared options (in `--help` order) to the group callback."""
    for option in reversed(click_options()):
        func = option(func)
    return func


def ranked_params(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """`params` ranked by where click found each value (options.py `ranked`)."""
    return ranked(params, lambda name: rank(ctx.get_parameter_source(name)))


def global_options(ctx: click.Context) -> GlobalOptions:
    """The group's options from any subcommand's context (defaults when run standalone)."""
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and isinstance(obj.get("globals"), GlobalOptions):
        return obj["globals"]  # type: ignore[no-any-return]
    return GlobalOptions()
