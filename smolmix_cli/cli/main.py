"""The `smolmix` click group.

Imports stay lazy here so that `--help` and `--version` do not pay for the
protocol stack.
"""

from __future__ import annotations

import click

from smolmix_cli import __version__


@click.group(name="smolmix", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="smolmix")
def cli() -> None:
    """curl, websocat and dig over the Nym mixnet.

    \b
    Example:
      smolmix --version
    """


def main() -> None:
    cli(prog_name="smolmix")
