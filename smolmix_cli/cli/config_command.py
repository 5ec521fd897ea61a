"""`smolmix config show|path`: the effective configuration, and which file gives it.

`show` prints TOML a user could paste into the file, each line commented with
where its value came from (the command line, an environment variable, FILE:LINE,
or the built-in default), then the file's named networks and command tables,
each table checked against its command. A bad file: its one error line, exit 2.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from click.core import ParameterSource

from smolmix_cli.cli.config_defaults import (
    NAMED_NETWORK,
    CommandDefaults,
    ConfigError,
    RootDefaults,
    key_of,
    root_defaults,
)
from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.options import ranked_params
from smolmix_cli.user_config import NETWORKS, KeyPath, UserConfig

COLUMN = 36  # where the source comments start


@click.group(name="config")
def config() -> None:
    """Show the configuration in effect and where each value came from.

    Defaults for the global options and for each command's options live in
    $XDG_CONFIG_HOME/smolmix/config.toml (or --config FILE, or SMOLMIX_CONFIG): a key
    is an option's long name, at the top for global options, in a [COMMAND] table for
    a command's (`[fetch]`, `[testnet.up]`); `[networks.NAME] file = "..."` names a
    network file for `--network NAME`. The command line beats environment variables,
    which beat the file, which beats the built-in defaults.

    \b
    Example file:
      network = "testnet"
      exit-race = 3
      dns-server = ["9.9.9.9"]
      [networks.lab]
      file = "~/lab/network.json"
      [fetch]
      location = true
      header = ["Accept: text/plain"]
    """


@config.command(name="path")
@click.pass_context
def path(ctx: click.Context) -> None:
    """Print the path of the config file that is read (whether it exists or not).

    Exit 1 when no file is read (--no-config).

    \b
    Examples:
      smolmix config path
      $EDITOR "$(smolmix config path)"
    """
    defaults = _defaults(ctx)
    if defaults.config.path is None:
        sys.exit(1)
    cli_env(ctx).echo(str(defaults.config.path))


@config.command(name="show")
@click.pass_context
def show(ctx: click.Context) -> None:
    """Print the effective configuration, each value with its source.

    \b
    Examples:
      smolmix config show
      SMOLMIX_EXIT_RACE=1 smolmix --network testnet config show
    """
    env = cli_env(ctx)
    defaults = _defaults(ctx)
    try:
        if defaults.failure is not None:
            raise defaults.failure
        tables = _tables(defaults, ())
    except ConfigError as exc:
        env.echo(f"smolmix: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    conf = defaults.config
    state = "" if conf.exists or conf.path is None else "; no such file"
    env.echo(f"# config file: {conf.path or '(none)'} ({conf.origin}{state})")
    _globals(env, ctx.find_root(), conf)
    named = defaults.named
    if named:
        env.echo(f"\n[{NETWORKS}]")
        for name, file in named.items():
            _line(env, f"{name}.file = {_toml(str(file))}", conf.where((NETWORKS, name)))
    for keys, table in tables:
        values = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if values:
            env.echo(f"\n[{'.'.join(keys)}]")
        for key, value in values.items():
            _line(env, f"{key} = {_toml(value)}", conf.where((*keys, key)))


def _defaults(ctx: click.Context) -> RootDefaults:
    defaults = root_defaults(ctx)
    assert defaults is not None  # the group's eager --config made it
    defaults.load()
    return defaults


def _tables(defaults: CommandDefaults, keys: KeyPath) -> list[tuple[KeyPath, dict[str, Any]]]:
    """Every command table of the file, depth first, each checked against its command."""
    out: list[tuple[KeyPath, dict[str, Any]]] = []
    for name in defaults.subcommand_tables():
        sub = defaults.get(name)
        assert isinstance(sub, CommandDefaults)
        out.append(((*keys, name), sub.config.table((*keys, name))))
        out += _tables(sub, (*keys, name))
    return out


def _globals(env: CliEnv, root: click.Context, conf: UserConfig) -> None:
    ranked = ranked_params(root, root.params)
    for param in root.command.params:
        if not isinstance(param, click.Option) or not param.expose_value or not param.name:
            continue
        key, value = key_of(param), root.params.get(param.name)
        source = root.get_parameter_source(param.name)
        if source is ParameterSource.COMMANDLINE:
            where = "command line"
        elif source is ParameterSource.ENVIRONMENT:
            where = str(param.envvar)
        elif source is ParameterSource.DEFAULT_MAP:
            where = conf.where((key,))
        else:
            where = "default"
        if key == "network" and NAMED_NETWORK in root.meta:
            where += f"; [{NETWORKS}.{root.meta[NAMED_NETWORK]}] file = {value}"
            value = root.meta[NAMED_NETWORK]
        if value is None or (param.is_flag and value is False and where == "default"):
            _line(env, f"# {key} (not set)", where)
        elif ranked.get(param.name) is None:  # `--session` typed beats the file's no-session
            _line(env, f"# {key} = {_toml(value)} (overridden)", where)
        else:
            _line(env, f"{key} = {_toml(value)}", where)


def _line(env: CliEnv, text: str, where: str) -> None:
    env.echo(f"{text:<{COLUMN}} # {where}")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)
