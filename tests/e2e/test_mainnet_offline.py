"""`--network mainnet` (the default) asks the real nym-api URLs of spec 4.1 and, without
internet, fails within its timeout with one line and exit code 5."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner

from smolmix_cli.cli.ping import ping
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.options import GlobalOptions


def test_mainnet_without_dns_is_exit_5_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, int]] = []

    async def no_dns(host: str, port: int, **kwargs: Any) -> Any:
        asked.append((host, port))
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(anyio, "getaddrinfo", no_dns)
    monkeypatch.delenv("SMOLMIX_NETWORK", raising=False)
    start = time.monotonic()
    result = CliRunner().invoke(
        ping, ["-c", "1", "--timeout", "5"], obj={"globals": GlobalOptions(network="mainnet")}
    )
    assert time.monotonic() - start < 5
    assert result.exit_code == ExitCode.NETWORK_UNREACHABLE == 5
    # the first request goes to validator.nymtech.net, then the fronted and CDN fallbacks
    assert asked == [
        ("validator.nymtech.net", 443),
        ("yelp.global.ssl.fastly.net", 443),
        ("cdn1.media-platform.net", 443),
    ]
    lines = result.output.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("smolmix: Nym directory unavailable: ")
    assert "https://validator.nymtech.net/api/v1/epoch/key-rotation-info" in lines[0]
    assert "cannot resolve host" in lines[0]


def test_mainnet_hanging_network_is_bounded_by_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hang(host: str, port: int, **kwargs: Any) -> Any:
        await anyio.sleep_forever()

    monkeypatch.setattr(anyio, "getaddrinfo", hang)
    start = time.monotonic()
    result = CliRunner().invoke(
        ping, ["-c", "1", "--timeout", "1.5"], obj={"globals": GlobalOptions(network="mainnet")}
    )
    elapsed = time.monotonic() - start
    assert 1.0 <= elapsed < 4
    assert result.exit_code in (ExitCode.NETWORK_UNREACHABLE, ExitCode.TIMEOUT)
    assert len(result.output.strip().splitlines()) == 1


def test_real_command_offline_exits_5_with_one_line() -> None:
    """The installed command, as a user runs it, on a machine without internet."""
    import os
    import subprocess
    import sys

    try:
        socket.getaddrinfo("validator.nymtech.net", 443)
    except OSError:
        pass
    else:
        pytest.skip("this machine resolves validator.nymtech.net (has internet)")
    env = {k: v for k, v in os.environ.items() if k != "SMOLMIX_NETWORK"}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "smolmix_cli", "ping", "-c", "1", "--timeout", "10"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert time.monotonic() - start < 30
    assert proc.returncode == 5
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(
        "smolmix: Nym directory unavailable: https://validator.nymtech.net/api/"
    )
