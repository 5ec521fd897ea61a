"""`--help` documents every option of the tunnel commands, each with an example."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from smolmix_cli.cli.main import cli

TUNNEL_COMMANDS = ["fetch", "ws", "resolve"]


def _options(command: click.Command) -> list[click.Option]:
    return [
        p
        for p in command.params
        if isinstance(p, click.Option) and not p.hidden and p.name not in ("help", "version")
    ]


@pytest.mark.parametrize("name", TUNNEL_COMMANDS)
def test_each_option_has_an_example(name: str) -> None:
    command = cli.commands[name]
    for option in _options(command):
        assert option.help and "Example:" in option.help, (name, option.opts)
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
    for option in _options(command):
        assert option.opts[-1] in result.output or option.opts[0] in result.output


def test_global_options_have_examples_and_come_before_the_command() -> None:
    for option in _options(cli):
        assert option.help and "Example:" in option.help, option.opts
    result = CliRunner().invoke(cli, ["--help"])
    for flag in ("--network", "--ipr", "--gateway", "--no-cover", "--no-poisson", "--boot-timeout"):
        assert flag in result.output
    assert "fetch" in result.output and "ws" in result.output and "resolve" in result.output


def test_default_user_agent_does_not_identify_smolmix() -> None:
    from smolmix_cli.apps.http_headers import DEFAULT_USER_AGENT

    assert "smolmix" not in DEFAULT_USER_AGENT.lower()
    assert DEFAULT_USER_AGENT.startswith("curl/")
