"""`smolmix [GLOBAL OPTIONS] fetch ...` read without click, for the attached fetch.

Importing click, building fetch's 54 options and parsing with them cost an attached
fetch about a fifth of its CPU, more than its request through a warm session. So the
console script (cli/quick_start.py) first offers the command line to `parse`, which
reads it as click would, by click's rules (clustered short options, `-oFILE`,
`--opt=value`, `--`, options between URLs, the last of a repeated option, a value
taken even when it starts with a dash), with the same tables (options.py for the
global options, cli/fetch_options.py for fetch's) and the same conversions.

It reads the command line and the global options' variables, nothing else. It answers
None, and click reads the line as always, for: any other command; an option it does not know (-h,
--version, a typo: click's message); a value click would refuse (click's message);
-K, --config or --no-config; a config file with anything in it; the SMOLMIX_ variable
of a flag or a repeatable global option (those of the others are read as click reads
them); shell completion. tests/cli/test_fast_argv.py compares what both
make of every curl case and of generated command lines.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from smolmix_cli.cli.fetch_options import FILE, FILE_PATH, FLOAT, INT, OPTIONS, PATH, FetchOption
from smolmix_cli.options import GlobalOptions, Spelling, from_params, option_fields, ranked
from smolmix_cli.user_config import default_path

COMMAND = "fetch"
COMPLETION_VARIABLE = "_SMOLMIX_COMPLETE"  # click's shell completion for prog "smolmix"
_TYPED, _ENVIRONMENT, _BUILT_IN = 0, 1, 3  # a value's source (cli/config_defaults.py `rank`)


class FastFetch(NamedTuple):
    """A fetch command line as click would hand it to the group and the command."""

    globals_: GlobalOptions
    urls: tuple[str, ...]
    kw: dict[str, Any]  # fetch's keywords but `urls`, as click passes them


class _Refused(Exception):
    """Not for this path: click reads the command line."""


def parse(argv: list[str], environ: Mapping[str, str]) -> FastFetch | None:
    """The fetch `argv` asks for, or None when click must read it."""
    try:
        if not sys.platform.startswith("linux"):
            return None
        from_environment = _environment(environ)
        globals_, rest = _globals(argv, from_environment)
        urls, kw = _fetch(rest)
    except _Refused:
        return None
    except Exception:  # a line this reader mishandles is still click's to read, not a crash
        return None
    if kw["configs"]:
        return None  # -K files are parsed by fetch's click command (cli/fetch_config.py)
    return FastFetch(globals_, urls, kw)


def _environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What the environment gives the global options, as click reads it: a variable set to
    a non-empty text is the value of its option (SMOLMIX_NETWORK=testnet), an empty one is
    unset. Refused: a variable of a flag or of a repeatable option (click's own readings of
    those), SMOLMIX_CONFIG naming a file with anything in it (an empty one: the tests'
    /dev/null), the default config file existing, a completion request."""
    if COMPLETION_VARIABLE in environ:
        raise _Refused
    found: dict[str, str] = {}
    for param, spelling, _ in _GLOBAL.values():
        value = environ.get(spelling.variable)
        if not value:
            continue
        if spelling.is_flag or spelling.multiple:
            raise _Refused
        found[param] = value
    chosen = found.get("config")
    if chosen is not None:
        try:
            with open(os.path.expanduser(chosen), "rb") as file:
                if file.read(1):
                    raise _Refused
        except (OSError, ValueError):
            raise _Refused from None  # click's config loading reports it
        return found
    try:
        os.lstat(default_path())
    except FileNotFoundError:
        return found  # what click's config loading reads as an empty file
    except (OSError, RuntimeError, ValueError):
        raise _Refused from None  # unreadable, or no home: click reports it
    raise _Refused


def run(plan: FastFetch) -> NoReturn:
    """Do what the group's and fetch's click callbacks would do with the same values."""
    from smolmix_cli.cli import quick_start
    from smolmix_cli.cli.env import CliEnv
    from smolmix_cli.cli.fetch_run import run_fetch_command

    env = CliEnv.from_process()
    quick_start.resume()  # the command line is read and the command loaded, as in main.py
    kw = plan.kw
    run_fetch_command(env, plan.urls, kw, plan.globals_, lambda: _without_configs(kw))


def _without_configs(kw: dict[str, Any]) -> dict[str, Any]:
    """cli/fetch_config.py `with_configs` when there is no -K file and no config file."""
    return {name: value for name, value in kw.items() if name != "configs"}


# -- the group's options -------------------------------------------------------------------

# Every spelling of a global option: its name -> (click's parameter, the spelling, the
# field's default), read once for the environment and the command line alike.
_GLOBAL: dict[str, tuple[str, Spelling, object]] = {
    spelling.name: (spelling.param(field.name), spelling, field.default)
    for field, spec in option_fields()
    for spelling in spec.spellings
}


def _globals(argv: list[str], environment: dict[str, str]) -> tuple[GlobalOptions, list[str]]:
    """The global options before `fetch` (click: no positional before the command), over
    the values `environment` gives."""
    raw: dict[str, list[str]] = {}
    flags: set[str] = set()
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == COMMAND:
            break
        if not arg.startswith("--") or arg == "--":
            raise _Refused  # another command, a short option (-h, -V), or `--`
        name, eq, explicit = arg.partition("=")
        if name not in _GLOBAL:
            raise _Refused
        if name in ("--config", "--no-config"):
            raise _Refused  # which file gives the defaults is click's to work out
        param, spelling, _ = _GLOBAL[name]
        _record(param, spelling.is_flag, explicit if eq else None, args, flags, raw)
    else:
        raise _Refused  # no command
    params: dict[str, Any] = {}
    for param, spelling, field_default in _GLOBAL.values():
        if spelling.is_flag:
            params[param] = param in flags
        elif spelling.multiple:
            params[param] = tuple(_global_value(spelling, v) for v in raw.get(param, ()))
        elif param in raw:
            params[param] = _global_value(spelling, raw[param][-1])
        elif param in environment:
            params[param] = _global_value(spelling, environment[param])
        else:
            default = spelling.cli_default if spelling.cli_default is not None else field_default
            params[param] = None if default is None else _global_value(spelling, default)
    typed = flags | raw.keys()

    def source(name: str) -> int:
        return _TYPED if name in typed else _ENVIRONMENT if name in environment else _BUILT_IN

    globals_ = from_params(ranked(params, source))
    return globals_, args


def _global_value(spelling: Spelling, value: object) -> Any:
    """click's conversion of a global option's value (cli/options.py `_click_type`)."""
    if spelling.choices:
        if value not in spelling.choices:
            raise _Refused
        return value
    if spelling.number is not None:
        return _number(spelling.number, value, spelling.low, spelling.high)
    return value


# -- fetch's options -----------------------------------------------------------------------

_SHORT: dict[str, FetchOption] = {}
_LONG: dict[str, FetchOption] = {}
for _spec in OPTIONS:
    for _opt in _spec.opts:
        (_LONG if _opt.startswith("--") else _SHORT)[_opt] = _spec


def _fetch(args: list[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """fetch's URLs and keywords, by click's parser rules (its `_OptionParser`)."""
    urls: list[str] = []
    raw: dict[str, list[str]] = {}
    flags: set[str] = set()
    while args:
        arg = args.pop(0)
        if arg == "--":
            urls += args
            break
        if arg[:1] != "-" or len(arg) == 1:
            urls.append(arg)  # click lets options and arguments mix
        elif arg.startswith("--"):
            name, eq, explicit = arg.partition("=")
            spec = _LONG.get(name)
            if spec is None:
                raise _Refused
            _record(spec.dest, spec.flag, explicit if eq else None, args, flags, raw)
        else:  # a cluster: -sS, -sSo FILE, -oFILE (click tries it as a long option first)
            for at in range(1, len(arg)):
                spec = _SHORT.get("-" + arg[at])
                if spec is None:
                    raise _Refused
                if spec.flag:
                    flags.add(spec.dest)
                    continue
                rest = arg[at + 1 :]  # the rest of the cluster is its value, else the next word
                raw.setdefault(spec.dest, []).append(_value(rest or None, args))
                break
    kw: dict[str, Any] = {}
    for spec in OPTIONS:
        values = raw.get(spec.dest, [])
        if spec.flag:
            kw[spec.dest] = spec.dest in flags
        elif spec.multiple:
            kw[spec.dest] = tuple(_fetch_value(spec, v) for v in values)
        elif values:
            kw[spec.dest] = _fetch_value(spec, values[-1])  # click converts the last only
        else:
            kw[spec.dest] = None if spec.default is None else _fetch_value(spec, spec.default)
    return tuple(urls), kw


def _record(
    dest: str,
    flag: bool,
    explicit: str | None,
    args: list[str],
    flags: set[str],
    raw: dict[str, list[str]],
) -> None:
    """One occurrence of an option: a flag noted, a value (`explicit`, else the next word)
    added to the option's raw values, converted once the whole line is read."""
    if flag:
        if explicit is not None:
            raise _Refused  # click: "Option '--silent' does not take a value."
        flags.add(dest)
    else:
        raw.setdefault(dest, []).append(_value(explicit, args))


def _value(explicit: str | None, args: list[str]) -> str:
    """An option's value: attached to it, else the next word, whatever it starts with."""
    if explicit is not None:
        return explicit
    if not args:
        raise _Refused  # click: "Option '-o' requires an argument."
    return args.pop(0)


def _fetch_value(spec: FetchOption, value: object) -> Any:
    """click's conversion for the option's type (fetch.py `_click_type`)."""
    if spec.kind == INT:
        return _number(int, value, spec.low, spec.high)
    if spec.kind == FLOAT:
        return _number(float, value, spec.low, spec.high)
    if spec.kind in (FILE, FILE_PATH, PATH):
        assert isinstance(value, str)
        _check_path(value, dirs=spec.kind == PATH)
        return value if spec.kind == FILE else Path(value)
    return value


def _number(
    kind: type[int] | type[float], value: object, low: float | None, high: float | None
) -> Any:
    """click's IntRange / FloatRange: the type's constructor, then closed bounds."""
    try:
        number = kind(value)  # type: ignore[arg-type,call-overload]
    except (TypeError, ValueError):
        raise _Refused from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise _Refused
    return number


def _check_path(value: str, *, dirs: bool) -> None:
    """click.Path's checks with `exists=False`: only a path that exists is looked at."""
    try:
        st = os.stat(value)
    except OSError:
        return
    except ValueError:
        raise _Refused from None  # a NUL in the name: click's own failure
    if (not dirs and stat.S_ISDIR(st.st_mode)) or not os.access(value, os.R_OK):
        raise _Refused
