"""Warm origin connections in the session: counted TCP opens and TLS handshakes.

Each `HttpClient` over its own `RemoteTunnel` is one command attached to a daemon
whose stand-in tunnel records every TCP open (so every TLS handshake, on https).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from smolmix_cli.apps.errors import AppError
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_headers import parse_header_arg
from smolmix_cli.exit_codes import CliError
from smolmix_cli.session.daemon import SessionDaemon
from smolmix_cli.session.paths import SessionPaths
from smolmix_cli.session.remote import RemoteTunnel
from smolmix_cli.session.warm import ExchangeWatch, WarmPool
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.certs import DemoPki
from tests.apps.helpers import get
from tests.session.stand_in import Source, running_daemon, unused_paths

pytestmark = pytest.mark.anyio
DEMO = "demo.smolmix.test"


@pytest.fixture
async def daemon(rundir: Path) -> AsyncIterator[tuple[SessionDaemon, Source, SessionPaths]]:
    paths = unused_paths(rundir)
    source = Source({DEMO: "127.0.0.1"})
    async with running_daemon(paths, source) as running:
        yield running, source, paths


async def command(paths: SessionPaths, url: str, *, reuse: bool = True, **options: object) -> int:
    """One attached command: its own RemoteTunnel and HttpClient, like a `smolmix fetch`."""
    remote = RemoteTunnel(paths.socket, reuse=reuse)
    await remote.status()
    async with HttpClient(remote) as client:
        out, transfer = await get(client, url, **options)
    assert transfer.http_code == 200 and out.body
    return transfer.num_connects


async def settled(running: SessionDaemon) -> WarmPool:
    """The pool once the daemon has seen every command hang up (it keeps connections then)."""
    with anyio.fail_after(5):
        while running.counters.streams_open:
            await anyio.sleep(0.01)
    return running.warm


def opens(source: Source) -> int:
    return sum(1 for kind, _, _ in source.tunnels[0].asked if kind == "tcp")


async def test_repeat_commands_share_one_warm_https_connection(
    daemon: tuple[SessionDaemon, Source, SessionPaths], origin: DemoOrigin, pki: DemoPki
) -> None:
    running, source, paths = daemon
    url = f"https://{DEMO}:{origin.https_port}/"
    assert await command(paths, url, cafile=str(pki.ca_file)) == 1
    assert await command(paths, url, cafile=str(pki.ca_file)) == 0  # warm: no TCP, no TLS
    assert await command(paths, url + "bytes/100", cafile=str(pki.ca_file)) == 0
    assert opens(source) == 1 and running.warm.opened == 1 and running.warm.reused == 2


async def test_no_reuse_across_tls_options_or_with_fresh_connections(
    daemon: tuple[SessionDaemon, Source, SessionPaths], origin: DemoOrigin, pki: DemoPki
) -> None:
    running, source, paths = daemon
    url = f"https://{DEMO}:{origin.https_port}/"
    await command(paths, url, cafile=str(pki.ca_file))
    assert await command(paths, url, verify=False) == 1  # -k: another pool
    assert await command(paths, url, cafile=str(pki.ca_file), reuse=False) == 1
    assert await command(paths, url, cafile=str(pki.ca_file), reuse=False) == 1
    plain = f"http://{DEMO}:{origin.http_port}/"
    assert await command(paths, plain) == 1
    assert await command(paths, plain) == 0
    # the --fresh-connections commands left nothing behind; the others one each
    assert opens(source) == 5 and len(await settled(running)) == 3


async def test_a_connection_the_server_closes_is_not_kept(
    daemon: tuple[SessionDaemon, Source, SessionPaths], origin: DemoOrigin
) -> None:
    running, _, paths = daemon
    url = f"http://{DEMO}:{origin.http_port}/"
    await command(paths, url, header_edits=[parse_header_arg("Connection: close")])
    assert len(await settled(running)) == 0
    assert await command(paths, url) == 1


async def test_a_tls_failure_exits_as_in_process(
    daemon: tuple[SessionDaemon, Source, SessionPaths], origin: DemoOrigin
) -> None:
    _, _, paths = daemon
    with pytest.raises((AppError, CliError)) as info:
        await command(paths, f"https://{DEMO}:{origin.https_port}/")  # the demo CA not trusted
    assert "certificate" in str(info.value)


def _request(method: bytes = b"GET", extra: bytes = b"") -> bytes:
    return method + b" / HTTP/1.1\r\nHost: a\r\n" + extra + b"\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "response", "reusable"),
    [
        (_request(), b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
        (
            _request(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            True,
        ),
        (_request(b"HEAD"), b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", True),
        (_request(), b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", False),
        (
            _request(extra=b"Connection: close\r\n"),
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            False,
        ),
        (_request(), b"HTTP/1.1 200 OK\r\n\r\nuntil close", False),
        (_request(), b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok", False),
        (_request(), b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", False),
        (
            _request(extra=b"Upgrade: websocket\r\nConnection: Upgrade\r\n"),
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            False,
        ),
        (
            _request(b"POST", b"Content-Length: 3\r\n") + b"abc",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            True,
        ),
        (_request() + _request(), b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
        (b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
    ],
)
def test_exchange_watch_keeps_only_clean_keep_alive_ends(
    request_bytes: bytes, response: bytes, reusable: bool
) -> None:
    watch = ExchangeWatch()
    for i in range(len(request_bytes)):  # byte by byte: boundaries anywhere
        watch.up(request_bytes[i : i + 1])
    assert not watch.reusable
    for i in range(len(response)):
        watch.down(response[i : i + 1])
    assert watch.reusable is reusable


def test_exchange_watch_follows_several_exchanges() -> None:
    watch = ExchangeWatch()
    for _ in range(3):
        watch.up(_request())
        watch.down(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        assert watch.reusable
    assert watch.exchanges == 3


async def test_idle_connections_expire_and_never_cross_generations(
    daemon: tuple[SessionDaemon, Source, SessionPaths], origin: DemoOrigin
) -> None:
    running, source, paths = daemon
    url = f"http://{DEMO}:{origin.http_port}/"
    await command(paths, url)
    pool = await settled(running)
    await pool.expire(running.generation + 1)  # a replacement tunnel: the old streams are dead
    assert len(pool) == 0
    await command(paths, url)
    pool = await settled(running)
    assert len(pool) == 1
    pool.idle_timeout = 0.0
    await pool.expire(running.generation)
    assert len(pool) == 0 and opens(source) == 2
