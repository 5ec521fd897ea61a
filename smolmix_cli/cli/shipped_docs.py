"""`smolmix completion SHELL` and `smolmix man [COMMAND]`: the generated files the package ships.

scripts/gen_docs.py writes them into the package (smolmix_cli/completions/,
smolmix_cli/man/) so an installed wheel has them; the wheel also puts the man
pages under PREFIX/share/man, where `man smolmix-fetch` finds them when PREFIX/bin
is on PATH. These commands reach them wherever the package was installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import resources

import click

from smolmix_cli.cli.env import cli_env

SHELLS = ("bash", "zsh", "fish")


def shipped(*parts: str) -> resources.abc.Traversable:
    return resources.files("smolmix_cli").joinpath(*parts)


@click.command(name="completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    The script asks `smolmix` itself for candidates, so it follows upgrades.

    \b
    Examples:
      eval "$(smolmix completion bash)"                  # in ~/.bashrc
      eval "$(smolmix completion zsh)"                   # in ~/.zshrc
      smolmix completion fish > ~/.config/fish/completions/smolmix.fish
    """
    cli_env(ctx).stdout.write(shipped("completions", f"smolmix.{shell}").read_bytes())


@click.command(name="man")
@click.argument("command", required=False, metavar="[COMMAND]")
@click.option("--roff", is_flag=True, help="Print the page's roff source even on a terminal.")
@click.pass_context
def man(ctx: click.Context, command: str | None, roff: bool) -> None:
    """Show the manual page of smolmix or one of its commands.

    On a terminal the page goes through `man -l`; otherwise (or with --roff) its roff
    source is printed, for `| man -l -` or a file. Where the package was installed with
    its data files, `man smolmix-fetch` works as well.

    \b
    Examples:
      smolmix man fetch
      smolmix man --roff testnet > smolmix-testnet.1
    """
    env = cli_env(ctx)
    name = "smolmix" if command in (None, "smolmix") else f"smolmix-{command}"
    page = shipped("man", f"{name}.1")
    if not page.is_file():
        pages = sorted(p.name[len("smolmix-") : -2] for p in shipped("man").iterdir())
        known = ", ".join(p for p in pages if p)  # "": smolmix.1 itself
        raise click.BadParameter(f"no manual page for {command!r} (pages: {known})")
    viewer = shutil.which("man")
    if env.stdout_isatty and not roff and viewer is not None:
        with resources.as_file(page) as file:
            status = subprocess.run([viewer, "-l", str(file)], check=False).returncode
        sys.exit(status)
    env.stdout.write(page.read_bytes())
