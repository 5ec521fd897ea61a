"""Every failure through every command: one stderr line and its documented exit code.

In process, with click's runner: the session factory's `open_tunnel` is replaced
by one whose boot fails (or whose tunnel fails each connection), and `ping`'s
directory phase by one that fails. Nothing here reaches a network.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.abc
import pytest
from click.testing import CliRunner

from smolmix_cli.cli.main import cli
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.tunnel.errors import (
    ExitPolicyDenied,
    TunnelConnectError,
    TunnelTimeout,
    TunnelUnavailable,
)
from smolmix_cli.tunnel.status import TunnelStatus
from tests.cli.stand_in import StandInSession
from tests.error_samples import SAMPLES, Sample

COMMANDS = {
    "fetch": ["fetch", "http://a.test/"],
    "ws": ["ws", "ws://a.test/"],
    "resolve": ["resolve", "a.test"],
    "connect": ["connect", "a.test", "80"],
    "ping": ["ping", "-c", "1"],
}


def _line(command: str, code: ExitCode, text: str) -> str:
    """fetch writes curl's way, the code in the line; the others plain."""
    return f"smolmix: ({int(code)}) {text}\n" if command == "fetch" else f"smolmix: {text}\n"


def _failing_boot(make: Callable[[], BaseException]) -> Callable[..., Any]:
    @asynccontextmanager
    async def open_tunnel(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise make()
        yield  # pragma: no cover

    return open_tunnel


@dataclass
class FailingTunnel:
    """Boots fine; every connection fails with `make()`."""

    make: Callable[[], BaseException]
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        self.asked.append((host, port))
        raise self.make()

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
        raise self.make()

    def snapshot(self) -> TunnelStatus:
        return TunnelStatus("ready", "stand-in", exit="stand-in-exit")


def _with_tunnel(tunnel: FailingTunnel) -> Callable[..., Any]:
    @asynccontextmanager
    async def open_tunnel(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        yield StandInSession(tunnel)

    return open_tunnel


def _invoke(args: list[str]) -> Any:
    return CliRunner().invoke(cli, ["--network", "mainnet", *args], input="")


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_a_boot_failure_ends_every_command_the_same(
    command: str, sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("smolmix_cli.session.factory.open_tunnel", _failing_boot(sample.make))

    async def directory_fails(*args: Any, **kwargs: Any) -> Any:
        raise sample.make()

    monkeypatch.setattr("smolmix_cli.bootstrap.fetch_topology", directory_fails)
    result = _invoke(COMMANDS[command])
    assert result.exit_code == int(sample.code)
    if command == "fetch" and sample.make is TimeoutError:  # fetch's deadline: curl's words
        curl = r"smolmix: \(28\) Operation timed out after \d+ milliseconds\n"
        assert re.fullmatch(curl, result.stderr)
    else:
        assert result.stderr == _line(command, sample.code, sample.line)
    assert result.stdout == ""


CONNECTION_FAILURES = [
    (lambda: TunnelConnectError("connection to 10.0.0.1:80 refused"), ExitCode.CONNECT_FAILED),
    (lambda: ExitPolicyDenied("the exit's policy refuses 10.0.0.1:80"), ExitCode.CONNECT_FAILED),
    (lambda: TunnelTimeout("connection to 10.0.0.1:80 timed out"), ExitCode.TIMEOUT),
    (lambda: TunnelUnavailable("the tunnel session ended"), ExitCode.IPR_HANDSHAKE),
]


@pytest.mark.parametrize("command", ["fetch", "ws", "connect"])
@pytest.mark.parametrize(("make", "code"), CONNECTION_FAILURES, ids=lambda v: str(v))
def test_a_connection_failure_inside_the_tunnel(
    command: str,
    make: Callable[[], BaseException],
    code: ExitCode,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tunnel = FailingTunnel(make)
    monkeypatch.setattr("smolmix_cli.session.factory.open_tunnel", _with_tunnel(tunnel))
    result = _invoke(COMMANDS[command])
    assert tunnel.asked == [("a.test", 80)]
    assert result.exit_code == int(code)
    assert result.stderr == _line(command, code, str(make()))
