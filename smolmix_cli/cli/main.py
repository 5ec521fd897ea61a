"""The `smolmix` click group.

Subcommands are imported when they run (or when `--help` lists them), so
`--version` and a command's start do not pay for the others' protocol stacks:
an attached `fetch` never imports the tunnel or the mixnet.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from smolmix_cli import __version__
from smolmix_cli.cli.options import from_params, global_option_decorators

# name -> module holding a click command of that name (in `--help` order)
COMMANDS = {
    "fetch": "smolmix_cli.cli.fetch",
    "ws": "smolmix_cli.cli.ws",
    "resolve": "smolmix_cli.cli.resolve",
    "connect": "smolmix_cli.cli.connect",
    "session": "smolmix_cli.cli.session",
    "ping": "smolmix_cli.cli.ping",
    "testnet": "smolmix_cli.cli.testnet",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = getattr(importlib.import_module(module), cmd_name)
        assert isinstance(command, click.Command)
        return command


@click.group(
    name="smolmix",
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
      smolmix --network testnet fetch https://demo.smolmix.test/
      smolmix --network testnet ws ws://demo.smolmix.test:8080/
      smolmix --network testnet resolve demo.smolmix.test MX +short
      smolmix --network testnet session start --socks5 1080
    """
    ctx.obj = {"network": params.get("network"), "globals": from_params(params)}


def main() -> None:
    cli(prog_name="smolmix")
