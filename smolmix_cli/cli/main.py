"""The `smolmix` click group.

Imports stay lazy here so that `--help` and `--version` do not pay for the
protocol stack.
"""

from __future__ import annotations

import click

from smolmix_cli import __version__
from smolmix_cli.cli.ping import ping
from smolmix_cli.cli.testnet import testnet


@click.group(name="smolmix", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="smolmix")
@click.option(
    "--network",
    metavar="mainnet|testnet|FILE",
    envvar="SMOLMIX_NETWORK",
    default="mainnet",
    show_default=True,
    help="Nym network to use: the real one, the local test network (started on demand), "
    "or a network file written by `smolmix testnet up`. Env: SMOLMIX_NETWORK.",
)
@click.pass_context
def cli(ctx: click.Context, network: str) -> None:
    """curl, websocat and dig over the Nym mixnet.

    \b
    Examples:
      smolmix --version
      smolmix testnet up --mix-delay-ms 0
      smolmix --network testnet ping
    """
    ctx.obj = {"network": network}


cli.add_command(ping)
cli.add_command(testnet)


def main() -> None:
    cli(prog_name="smolmix")
