"""A failure in the session daemon ends an attached command exactly as it would in-process.

The daemon's error frame carries the classified line and code; the attached side
re-raises it so that it classifies the same again, and as the tunnel's own types
where the apps react to the type (retry on a timeout, DNS over TCP on a refusal).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from smolmix_cli.apps.errors import ConnectError, OperationTimeout, ResolveError
from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import CliError, ExitCode
from smolmix_cli.mixnet.gateway.client import GatewayUnavailable
from smolmix_cli.session import protocol as proto
from smolmix_cli.session.daemon import DaemonConfig, SessionDaemon, error_answer
from smolmix_cli.session.remote import RemoteTunnel
from smolmix_cli.session.remote_errors import SessionUnavailable, rebuild_error
from smolmix_cli.tunnel.errors import (
    ExitPolicyDenied,
    TunnelConnectError,
    TunnelTimeout,
    TunnelUnavailable,
)
from tests.error_samples import SAMPLES, Sample
from tests.session.stand_in import LoopbackTunnel, running_daemon, unused_paths


def _answer(exc: BaseException) -> proto.RemoteError:
    decoder = proto.FrameDecoder()
    decoder.feed(error_answer(exc, classify))
    frame = decoder.next_frame()
    assert frame is not None
    answer = proto.parse_answer(frame)
    assert isinstance(answer, proto.RemoteError)
    return answer


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_every_failure_crosses_the_socket_with_its_code_and_line(sample: Sample) -> None:
    answer = _answer(sample.make())
    assert (answer.exit_code, answer.message) == (int(sample.code), sample.line)
    again = classify(rebuild_error(answer))
    assert (again.code, str(again)) == (sample.code, sample.line)


@pytest.mark.parametrize(
    ("error", "raised_as"),
    [
        (ResolveError("Could not resolve host: a.test"), ResolveError),
        (TunnelConnectError("connection to 10.0.0.1:80 refused"), TunnelConnectError),
        (ExitPolicyDenied("the exit's policy refuses 10.0.0.1:25"), ConnectError),
        (TunnelTimeout("no UDP reply"), OperationTimeout),
        (TimeoutError(), OperationTimeout),
        (TunnelUnavailable("the tunnel session ended"), TunnelUnavailable),
        (GatewayUnavailable("cannot use gateway"), CliError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
)
def test_failures_the_apps_react_to_come_back_as_their_types(
    error: BaseException, raised_as: type[Exception]
) -> None:
    assert isinstance(rebuild_error(_answer(error)), raised_as)


def test_the_daemons_own_refusals_mean_no_session() -> None:
    for kind, code in (("PermissionError", 5), ("PermissionError", 77), ("ProtocolError", 70)):
        rebuilt = rebuild_error(proto.RemoteError(kind, "not your session", code))
        assert isinstance(rebuilt, SessionUnavailable)
        assert classify(rebuilt).code is ExitCode.NETWORK_UNREACHABLE


# -- end to end over the Unix socket ------------------------------------------------------------


class RefusingTunnel(LoopbackTunnel):
    def __init__(self, error: BaseException) -> None:
        super().__init__({})
        self.error = error

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        raise self.error


@dataclass
class Booted:
    tunnel: LoopbackTunnel


@pytest.mark.anyio
async def test_connection_failures_keep_their_code_and_line_end_to_end(rundir: Path) -> None:
    for error in (
        ExitPolicyDenied("the exit's policy refuses 10.0.0.1:25"),
        TunnelTimeout("connection to 10.0.0.1:80 timed out"),
        TunnelUnavailable("the tunnel session ended while connecting"),
    ):
        tunnel = RefusingTunnel(error)

        @asynccontextmanager
        async def source(tunnel: LoopbackTunnel = tunnel) -> AsyncIterator[Any]:
            yield Booted(tunnel)

        async with running_daemon(unused_paths(rundir), source) as daemon:
            with pytest.raises(Exception) as info:
                await RemoteTunnel(daemon.paths.socket).open_tcp("a.test", 80)
        here, there = classify(error), classify(info.value)
        assert (there.code, str(there)) == (here.code, str(here))


@pytest.mark.anyio
async def test_a_boot_failure_below_the_tunnel_keeps_its_line_end_to_end(rundir: Path) -> None:
    failure = GatewayUnavailable("cannot use gateway at ws://g:9000/: refused")

    @asynccontextmanager
    async def source() -> AsyncIterator[Any]:
        raise failure
        yield  # pragma: no cover

    paths = unused_paths(rundir)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            daemon = SessionDaemon(
                paths, DaemonConfig(network_name="test"), source, classify=classify
            )
            await tg.start(daemon.serve)
            with pytest.raises(CliError) as info:
                await RemoteTunnel(paths.socket).status(wait=5)
    assert info.value.code is ExitCode.NETWORK_UNREACHABLE
    assert str(info.value) == f"gateway unreachable: {failure}"
