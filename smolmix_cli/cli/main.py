"""The `smolmix` click group.

Imports stay lazy here so that `--help` and `--version` do not pay for the
protocol stack.
"""

from __future__ import annotations

from typing import Any

import click

from smolmix_cli import __version__
from smolmix_cli.cli.fetch import fetch
from smolmix_cli.cli.options import from_params, global_option_decorators
from smolmix_cli.cli.ping import ping
from smolmix_cli.cli.resolve import resolve
from smolmix_cli.cli.testnet import testnet
from smolmix_cli.cli.ws import ws


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
      smolmix --network testnet fetch https://demo.smolmix.test/
      smolmix --network testnet ws ws://demo.smolmix.test:8080/
      smolmix --network testnet resolve demo.smolmix.test MX +short
    """
    ctx.obj = {"network": params.get("network"), "globals": from_params(params)}


cli.add_command(fetch)
cli.add_command(ws)
cli.add_command(resolve)
cli.add_command(ping)
cli.add_command(testnet)


def main() -> None:
    cli(prog_name="smolmix")
