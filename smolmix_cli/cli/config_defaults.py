"""The user's config file as click's `default_map`: flags > environment > file > defaults.

Click itself looks a value up in that order (command line, the option's envvar,
`ctx.default_map`, its default), so the file only has to become default maps:
one per command, keyed by parameter name, holding the file's values for that
command's options. A key is an option's long name (`max-redirs = 10` in
`[fetch]`); every key and value is checked against the option it names, and
a mistake stops the command with one `FILE:LINE: KEY: ...` line and exit 2.
A command's table is checked when that command runs (a table for `fetch`
does not make `ws` import fetch); `smolmix config show` checks them all.
The group's `--config`/`--no-config` choose the file: global options like the
others (options.py), so a background session is given the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from smolmix_cli.user_config import (
    BUILT_IN_NETWORKS,
    CONFIG_ENV,
    NETWORKS,
    ConfigFileError,
    KeyPath,
    UserConfig,
    choose,
    load,
)

_SKIP = object()  # a `false` written for a flag that has no false value of its own


class ConfigError(click.ClickException):
    """A bad config file, shown as its one line; exit 2 as for a usage error."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"smolmix: {self.message}", err=True, file=file)


def option_named(command: click.Command, key: str) -> click.Option | None:
    """The option a file key names: its long name without the dashes."""
    for param in command.params:
        if (
            isinstance(param, click.Option)
            and f"--{key}" in param.opts
            and param.expose_value
            and not param.is_eager
        ):
            return param
    return None


def key_of(param: click.Option) -> str:
    """The key that names `param` in the file: its first long name."""
    long = next((o for o in param.opts if o.startswith("--")), param.opts[0])
    return long.lstrip("-")


class CommandDefaults(dict[str, Any]):
    """click's default_map for one command: its options' values from the file (by parameter
    name); its subcommands' tables become maps of their own when click first asks for one."""

    def __init__(self, config: UserConfig, command: click.Command, keys: KeyPath = ()) -> None:
        super().__init__()
        self.config, self.command, self.at = config, command, keys
        self._tables: dict[str, CommandDefaults | None] = {}  # None: not checked yet
        self._fill()

    def _fill(self) -> None:
        config, command, keys = self.config, self.command, self.at
        subcommands = command.commands if isinstance(command, click.Group) else {}
        for key, value in config.table(keys).items():
            at = (*keys, key)
            if not keys and key == NETWORKS:
                continue  # named networks (user_config.py)
            if isinstance(value, dict) and key in subcommands:  # answered without importing
                self._tables[key] = None
                continue
            param = option_named(command, key)
            if param is None:
                if key in subcommands:
                    raise config.error(at, f"expected a table [{key}]")
                raise config.error(at, _unknown(keys))
            checked = _checked(config, at, param, value)
            if checked is not _SKIP:
                self[str(param.name)] = checked

    def get(self, name: str, default: Any = None) -> Any:
        """The map of subcommand `name`, or None: click calls `get` only for those (when it
        makes their contexts), and `in`/`[]` for its options' values, so an option and a
        subcommand may share a name (the global --session and `smolmix session`)."""
        if name not in self._tables:
            return default
        sub = self._tables[name]
        if sub is None:
            assert isinstance(self.command, click.Group)
            try:
                sub = CommandDefaults(self.config, self.command.commands[name], (*self.at, name))
            except ConfigFileError as exc:
                raise ConfigError(str(exc)) from None
            self._tables[name] = sub
        return sub

    def subcommand_tables(self) -> list[str]:
        return sorted(self._tables)


class RootDefaults(CommandDefaults):
    """The group's map: reads the file when click first looks a value up (by then
    `--config` and `--no-config`, both eager, are known). A bad file leaves it empty
    and fails the subcommand when its context is made, except `smolmix config`,
    which shows the error itself."""

    def __init__(self, ctx: click.Context) -> None:
        dict.__init__(self)
        self.ctx = ctx
        self.at = ()
        self.command = ctx.command
        self._tables = {}
        self._loaded = False
        self.failure: ConfigError | None = None
        self.named: dict[str, Path] = {}
        self.config = choose("", "--no-config")

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        self.config = _choice(self.ctx)
        try:
            self.config = load(self.config)
            self.named = self.config.networks()
            self._fill()
        except ConfigFileError as exc:
            self.failure = ConfigError(str(exc))
        if self.failure is not None:
            self.clear()
            self._tables.clear()
            self.named = {}

    def __contains__(self, name: object) -> bool:
        self.load()
        return super().__contains__(name)

    def __getitem__(self, name: str) -> Any:
        self.load()
        return super().__getitem__(name)

    def get(self, name: str, default: Any = None) -> Any:
        self.load()
        if self.failure is not None and name != "config":
            raise self.failure
        return super().get(name, default)


def root_defaults(ctx: click.Context) -> RootDefaults | None:
    found = ctx.find_root().default_map
    return found if isinstance(found, RootDefaults) else None


# -- the group's --config and --no-config (options.py; cli/options.py makes them eager) ------

_CHOSEN = "smolmix.config_choice"
_RANK = {ParameterSource.COMMANDLINE: 0, ParameterSource.ENVIRONMENT: 1}
_RANK[ParameterSource.DEFAULT_MAP] = 2


def rank(source: ParameterSource | None) -> int:
    """Where a value came from, as a precedence: 0 typed ... 3 built in, 9 nowhere."""
    return 9 if source is None else _RANK.get(source, 3)


def remember_choice(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Callback of --config and --no-config: note the value, make the lazy map."""
    if param.name and value not in (None, False):
        ctx.meta.setdefault(_CHOSEN, {})[param.name] = (value, ctx.get_parameter_source(param.name))
    if not isinstance(ctx.default_map, RootDefaults):
        ctx.default_map = RootDefaults(ctx)
    return value


def _choice(ctx: click.Context) -> UserConfig:
    chosen: dict[str, tuple[Any, ParameterSource | None]] = ctx.meta.get(_CHOSEN, {})
    path, path_source = chosen.get("config", (None, None))
    off, off_source = chosen.get("no_config", (False, None))
    if off and rank(off_source) <= rank(path_source):  # from one source, the flag wins
        return choose("", "--no-config")
    origin = CONFIG_ENV if path_source is ParameterSource.ENVIRONMENT else "--config"
    return choose(path, origin)


def named_network(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """`--network NAME` for a `[networks.NAME]` of the file: that network file."""
    defaults = root_defaults(ctx)
    if isinstance(value, str) and defaults is not None:
        defaults.load()
        if value in defaults.named:
            ctx.meta[NAMED_NETWORK] = value
            return str(defaults.named[value])
    return value


NAMED_NETWORK = "smolmix.named_network"


# -- values ---------------------------------------------------------------------------------


def _unknown(keys: KeyPath) -> str:
    if not keys:
        return "not a global option, a command or [networks] (see `smolmix --help`)"
    return f"not an option of `smolmix {' '.join(keys)}`"


def _checked(config: UserConfig, at: KeyPath, param: click.Option, value: Any) -> Any:
    """The file's value for `param` as click should take it (ConfigFileError if it cannot)."""
    if param.is_flag:
        if not isinstance(value, bool):
            raise config.error(at, "expected true or false")
        if param.is_bool_flag:
            return value
        return param.flag_value if value else _SKIP
    if param.multiple or param.nargs != 1:
        if not isinstance(value, list):
            raise config.error(at, 'expected a list, as ["a", "b"]')
        return [_scalar(config, at, param, item) for item in value]
    if not at[:-1] and at[-1] == "network":
        return _network(config, at, value)
    return _scalar(config, at, param, value)


def _network(config: UserConfig, at: KeyPath, value: Any) -> Any:
    if not isinstance(value, str) or not value:
        raise config.error(at, "expected mainnet, testnet, a name or a file")
    if value in BUILT_IN_NETWORKS or value in config.networks():
        return value
    return str(config.file_path(value, at))


def _scalar(config: UserConfig, at: KeyPath, param: click.Option, value: Any) -> Any:
    kind = param.type
    if isinstance(kind, click.types.IntParamType):
        ok, wanted = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(kind, click.types.FloatParamType):
        ok, wanted = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    elif isinstance(kind, click.types.BoolParamType):
        ok, wanted = isinstance(value, bool), "true or false"
    elif isinstance(kind, click.types.StringParamType) and isinstance(value, int | float):
        ok, wanted, value = not isinstance(value, bool), "a string", str(value)  # socks5 = 1080
    else:
        ok, wanted = isinstance(value, str), "a string"
    if not ok:
        raise config.error(at, f"expected {wanted}")
    if isinstance(kind, click.Path) and value != "-":
        value = str(config.file_path(value, at))
    try:
        kind.convert(value, param, click.Context(click.Command(None)))
    except click.BadParameter as exc:
        raise config.error(at, exc.message) from None
    return value
