"""The command group itself: version, help, and that nothing unfinished is listed."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from smolmix_cli import __version__
from smolmix_cli.cli.main import cli


def test_version_prints_package_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"smolmix, version {__version__}"


def test_help_lists_only_finished_commands() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Usage: smolmix" in result.output
    # Every subcommand listed must be registered and finished.
    assert sorted(cli.commands) == [
        "completion",
        "config",
        "connect",
        "doctor",
        "fetch",
        "man",
        "ping",
        "resolve",
        "session",
        "testnet",
        "ws",
    ]
    for name in cli.commands:
        assert name in result.output


def test_network_option_is_global_and_documented() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "--network" in result.output and "SMOLMIX_NETWORK" in result.output


def test_unknown_option_is_usage_error_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "smolmix_cli", "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "No such option" in proc.stderr
    assert "Traceback" not in proc.stderr
