"""The `smolmix` click group.

Subcommands are imported when they run (or when `--help` lists them), so
`--version` and a command's start do not pay for the others' protocol stacks:
an attached `fetch` never imports the tunnel or the mixnet.

The group keeps the command's streams, terminal flags and environment (cli/env.py)
beside the global options in `ctx.obj`; a caller's `obj=CliEnv(...)` replaces the
process's, which is how tests drive the CLI as if on a terminal.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import click

from smolmix_cli import __version__
from smolmix_cli.cli import quick_start
from smolmix_cli.cli.env import cli_env
from smolmix_cli.cli.options import global_option_decorators, ranked_params
from smolmix_cli.options import from_params

# name -> module holding a click command of that name
COMMANDS = {
    "fetch": "smolmix_cli.cli.fetch",
    "ws": "smolmix_cli.cli.ws",
    "resolve": "smolmix_cli.cli.resolve",
    "connect": "smolmix_cli.cli.connect",
    "session": "smolmix_cli.cli.session",
    "ping": "smolmix_cli.cli.ping",
    "doctor": "smolmix_cli.cli.doctor",
    "testnet": "smolmix_cli.cli.testnet",
    "config": "smolmix_cli.cli.config_command",
    "completion": "smolmix_cli.cli.shipped_docs",
    "man": "smolmix_cli.cli.shipped_docs",
}


class LazyCommands(dict[str, click.Command]):
    """The group's command table, importing a command's module when it is first looked up.

    Naming one command (`smolmix fetch ...`) imports only that module; listing them
    all (`--help`, the docs generator) imports them all. A plain dict to click.
    """

    def __init__(self, modules: dict[str, str]) -> None:
        super().__init__()
        self._modules = dict(modules)

    def _load(self, name: str) -> None:
        module = self._modules.pop(name, None)
        if module is not None:
            command = getattr(importlib.import_module(module), name)
            assert isinstance(command, click.Command)
            super().__setitem__(name, command)

    def _load_all(self) -> None:
        for name in list(self._modules):
            self._load(name)

    def __getitem__(self, name: str) -> click.Command:
        self._load(name)
        return super().__getitem__(name)

    def get(self, name: str, default: Any = None) -> Any:
        self._load(name)
        return super().get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._modules or super().__contains__(name)

    def __iter__(self) -> Iterator[str]:
        self._load_all()
        return super().__iter__()

    def __len__(self) -> int:
        return super().__len__() + len(self._modules)

    def keys(self) -> Any:
        self._load_all()
        return super().keys()

    def values(self) -> Any:
        self._load_all()
        return super().values()

    def items(self) -> Any:
        self._load_all()
        return super().items()

    def __delitem__(self, name: str) -> None:
        self._modules.pop(name, None)
        if super().__contains__(name):
            super().__delitem__(name)


@click.group(name="smolmix", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="smolmix")
@global_option_decorators
@click.pass_context
def cli(ctx: click.Context, /, **params: Any) -> None:
    """curl, websocat and dig over the Nym mixnet.

    Global options go before the command; each command has its own `--help`.

    \b
    Examples:
      smolmix --version
      smolmix testnet up --mix-delay-ms 0
      smolmix --network testnet ping
      smolmix --network testnet doctor
      smolmix --network testnet fetch https://demo.smolmix.test/
      smolmix --network testnet ws ws://demo.smolmix.test:8080/
      smolmix --network testnet resolve demo.smolmix.test MX +short
      smolmix --network testnet session start --socks5 1080
    """
    ctx.obj = {"globals": from_params(ranked_params(ctx, params)), "env": cli_env(ctx)}
    quick_start.resume()  # the command line is read and the command loaded (cli/quick_start.py)


cli.commands = LazyCommands(COMMANDS)


def main() -> None:
    """The group as the console script runs it (cli/quick_start.py wraps it)."""
    cli(prog_name="smolmix")
