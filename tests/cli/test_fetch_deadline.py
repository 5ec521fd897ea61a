"""-m in process: the transfer it cuts short still gets its -w line, as in curl.

curl runs -w after every transfer, failed ones included; `curl -m 1 -w
'%{http_code}|%{exitcode}'` on a slow URL prints `000|28`. Here -m also covers
the tunnel boot, so a boot that eats the budget cuts the first URL.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.cli.test_env import MemoryTunnel, StandInFactory, StandInSession, fake_env, invoke, out

FMT = "%{http_code}|%{exitcode}|%{url_effective}|%{size_download}|%{errormsg}\\n"


class SilentStream(anyio.abc.ByteStream):
    """A server that accepts the request and never answers."""

    async def send(self, item: bytes) -> None:
        pass

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.sleep(math.inf)
        raise AssertionError

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class SilentTunnel(MemoryTunnel):
    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        return SilentStream()


class SlowBoot(StandInFactory):
    @asynccontextmanager
    async def open_tunnel(self, *args: Any, **kwargs: Any) -> AsyncIterator[StandInSession]:
        await anyio.sleep(30)
        yield StandInSession(self.tunnel)


@pytest.mark.parametrize(
    ("stand_in", "tail"),
    [
        (SlowBoot(), " milliseconds\n"),
        (StandInFactory(tunnel=SilentTunnel()), " milliseconds with 0 bytes received\n"),
    ],
)
def test_the_transfer_cut_by_max_time_gets_its_writeout(
    monkeypatch: pytest.MonkeyPatch, stand_in: StandInFactory, tail: str
) -> None:
    monkeypatch.setattr("smolmix_cli.session.factory.open_tunnel", stand_in.open_tunnel)
    env = fake_env()
    result = invoke(env, "fetch", "-s", "-m", "0.3", "-w", FMT, "http://a.test/", "http://b.test/")
    assert result.exit_code == 28
    code, exitcode, effective, size, message = out(env).decode().split("|")
    assert (code, exitcode, effective, size) == ("000", "28", "http://a.test/", "0")
    assert re.fullmatch(r"Operation timed out after \d+" + tail, message)
