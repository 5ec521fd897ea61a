"""Hostile local peers against the session's listeners: resets, garbage, half-open connects.

Regression for "about ten connect-then-reset connections end the daemon": a
peer that resets before the SOCKS5 front looked up its address made anyio's
attribute lookup raise, and nothing caught it. Every listener must still serve
a real request afterwards.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from pathlib import Path

import anyio
import pytest

from smolmix_cli.session import socks5
from smolmix_cli.session.remote import RemoteTunnel
from tests.session.stand_in import (
    Source,
    echo_tcp_server,
    running_daemon,
    unused_paths,
)

pytestmark = pytest.mark.anyio
HOSTILE = 2000  # per listener and run; `-m soak`-style counts (10,000) pass too, just slower


def _hostile(family: int, address: object, count: int, seed: int) -> int:
    """`count` connections: reset at once, garbage then reset, garbage then close, or a half
    close after a partial greeting. Returns how many connects the kernel refused (backlog)."""
    rng = random.Random(seed)
    refused = 0
    for _ in range(count):
        kind = rng.randrange(4)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(2.0)
            sock.connect(address)  # type: ignore[arg-type]
            if kind == 1 or kind == 2:
                sock.send(rng.randbytes(rng.randrange(1, 300)))
            elif kind == 3:
                sock.send(b"\x05\x01")  # a greeting cut short
                sock.shutdown(socket.SHUT_WR)
            if kind != 2:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            refused += 1
        finally:
            sock.close()
    return refused


async def _socks_echo(proxy: tuple[str, int], port: int) -> bytes:
    stream = await anyio.connect_tcp(*proxy)
    async with stream:
        await stream.send(socks5.client_greeting())
        assert await stream.receive() == b"\x05\x00"
        await stream.send(socks5.client_request(socks5.CMD_CONNECT, "echo.test", port))
        buf = b""
        while (parsed := socks5.parse_reply(buf)) is None:
            buf += await stream.receive()
        assert parsed[0] == socks5.REP_SUCCEEDED
        await stream.send(b"still here")
        return await stream.receive()


async def test_hostile_connections_leave_socks5_and_control_socket_serving(rundir: Path) -> None:
    paths = unused_paths(rundir)
    async with anyio.create_task_group() as tg:
        port = await tg.start(echo_tcp_server)
        async with running_daemon(
            paths, Source({"echo.test": "127.0.0.1"}), socks5=("127.0.0.1", 0)
        ) as daemon:
            proxy = daemon.socks5_address
            assert proxy is not None
            with anyio.fail_after(120):
                for seed in range(4):
                    await anyio.to_thread.run_sync(
                        _hostile, socket.AF_INET, proxy, HOSTILE // 4, seed
                    )
                    await anyio.to_thread.run_sync(
                        _hostile, socket.AF_UNIX, os.fspath(paths.socket), HOSTILE // 4, seed
                    )
                    # both listeners still answer a real request between the waves
                    assert await _socks_echo(proxy, port) == b"still here"
                    status = await RemoteTunnel(paths.socket).status()
                    assert status["state"] == "ready" and status["generation"] == 1
        tg.cancel_scope.cancel()
