"""smolmix's TLS ClientHello is curl's (issue 20 item 6).

A raw TCP listener on loopback keeps the first bytes each client sends and
hangs up. The machine's curl (`--http1.1`, see smolmix_cli/apps/tls.py for
why) and smolmix's own fetch and ws paths connect to it with the same server
name; the parsed hellos must be equal except for per-connection fields.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import anyio.abc
import pytest

from smolmix_cli.apps import ws
from smolmix_cli.apps.errors import AppError
from smolmix_cli.apps.http_client import HttpClient
from tests.apps.client_hello import EXT_ALPN, EXT_SERVER_NAME, Incomplete, fingerprint, parse
from tests.apps.helpers import get
from tests.apps.os_connector import OsConnector
from tests.first_bytes import first_bytes_catcher

pytestmark = pytest.mark.anyio

HOST = "www.example.com"


def _curl() -> str:
    """Path of a curl on the same OpenSSL as Python's ssl, else skip saying why."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed (CI installs it: .ci/run)")
    version = subprocess.run([curl, "--version"], capture_output=True, text=True, check=True)
    linked = re.search(r"OpenSSL/(\S+)", version.stdout)
    ours = ssl.OPENSSL_VERSION.split()[1]
    if linked is None or linked.group(1) != ours:
        first = version.stdout.splitlines()[0] if version.stdout else "?"
        pytest.skip(f"curl is not on Python's OpenSSL {ours}: {first}")
    return curl


def hello_complete(wire: bytes) -> bool:
    try:
        parse(wire)
    except Incomplete:
        return False
    return True


def hello_catcher() -> AbstractAsyncContextManager[tuple[int, Callable[[], Awaitable[bytes]]]]:
    """A loopback port and a function returning the next ClientHello sent to it."""
    return first_bytes_catcher(hello_complete)


async def curl_hello(curl: str, *args: str) -> dict[str, object]:
    async with hello_catcher() as (port, next_hello):
        # -q first: no ~/.curlrc; no proxy from the environment
        command = [curl, "-q", "-sk", "--noproxy", "*", "--max-time", "5", *args]
        command += ["--resolve", f"{HOST}:{port}:127.0.0.1", f"https://{HOST}:{port}/"]
        await anyio.run_process(command, check=False)
        return fingerprint(parse(await next_hello()))


async def fetch_hello(**options: Any) -> dict[str, object]:
    async with hello_catcher() as (port, next_hello):
        async with HttpClient(OsConnector({HOST: "127.0.0.1"})) as client:
            with pytest.raises(AppError):
                await get(client, f"https://{HOST}:{port}/", **options)
        return fingerprint(parse(await next_hello()))


async def ws_hello() -> dict[str, object]:
    async with hello_catcher() as (port, next_hello):
        connector = OsConnector({HOST: "127.0.0.1"})
        with pytest.raises(AppError):
            await ws.connect(connector, f"wss://{HOST}:{port}/", ws.WsOptions(verify=False))
        return fingerprint(parse(await next_hello()))


def extension(hello: dict[str, object], kind: int) -> object:
    exts = hello["extensions"]
    assert isinstance(exts, list)
    return dict(exts).get(kind)


async def test_fetch_and_ws_send_curls_client_hello() -> None:
    curl = _curl()
    expected = await curl_hello(curl, "--http1.1")
    assert extension(expected, EXT_SERVER_NAME)
    assert extension(expected, EXT_ALPN) == ["http/1.1"]
    assert await fetch_hello(verify=False) == expected  # -k
    assert await fetch_hello() == expected  # verifying: the hello is the same
    assert await ws_hello() == expected


async def test_only_alpn_differs_from_curls_default() -> None:
    """Plain `curl https://` offers h2 too; smolmix speaks HTTP/1.1, so it does not."""
    curl = _curl()
    default = await curl_hello(curl)
    ours = await fetch_hello(verify=False)
    assert extension(default, EXT_ALPN) == ["h2", "http/1.1"]

    def without_alpn(hello: dict[str, object]) -> dict[str, object]:
        exts = hello["extensions"]
        assert isinstance(exts, list)
        return {**hello, "extensions": [(k, v if k != EXT_ALPN else None) for k, v in exts]}

    assert without_alpn(default) == without_alpn(ours)
