"""The blocking fetch shell against the async engine: same servers, same records, same errors.

Both shells drive the sans-io cores (http_exchange.py, http_rules.py); these cases check
that the I/O around them keeps the answers equal: a redirect chain on a kept-alive
connection with cookies (the -w record, the bodies, the heads), and hostile servers
(curl's exit number and words).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from smolmix_cli.apps.errors import AppError
from smolmix_cli.apps.http_blocking import BlockingHttpClient
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_cookies import CookieJar
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_transfer import ResponseHead, Transfer
from smolmix_cli.errors_map import classify
from tests.apps.os_connector import OsConnector
from tests.apps.test_http_faults import CASES, hostile

pytestmark = pytest.mark.anyio


class PlainStream:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self, max_bytes: int) -> bytes:
        return self.sock.recv(max_bytes)

    def close(self) -> None:
        self.sock.close()


@dataclass(frozen=True)
class PlainOrigin:
    stream: PlainStream
    remote: tuple[str, int] | None
    reused: bool = False
    tls_version: str = ""
    tls_seconds: float = 0.0


class PlainOrigins:
    """Loopback TCP, no TLS: what the session's `open_http` is to the attach shell."""

    def __init__(self) -> None:
        self.opened = 0

    def open_origin(self, host: str, port: int, **_: Any) -> PlainOrigin:
        self.opened += 1
        return PlainOrigin(PlainStream(socket.create_connection((host, port))), (host, port))


def _pages(conn: socket.socket) -> None:
    """Keep-alive: /a redirects to /b with a cookie; /b answers with the cookie it got."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return
            buffer += data
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        target = head.split(b" ", 2)[1]
        if target == b"/a":
            conn.sendall(
                b"HTTP/1.1 302 Found\r\nLocation: /b\r\nSet-Cookie: k=v\r\n"
                b"Content-Length: 5\r\n\r\nmoved"
            )
        else:
            cookie = [line for line in head.split(b"\r\n") if line.lower().startswith(b"cookie")]
            body = b"got " + (cookie[0] if cookie else b"none")
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@contextmanager
def pages() -> Iterator[str]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=_pages, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def _record(transfer: Transfer) -> dict[str, Any]:
    """-w's record without times and the local address (an OS socket here has one; the
    session's `open_http` reports none, to either shell)."""
    skip = ("time_", "speed_", "local_")
    return {k: v for k, v in transfer.as_dict().items() if not k.startswith(skip)}


async def test_redirects_cookies_and_keep_alive_match_the_async_engine() -> None:
    def options() -> FetchOptions:
        return FetchOptions(follow_redirects=True, cookie_jar=CookieJar())

    with pages() as base:
        urls = [f"{base}/a", f"{base}/b"]
        async_side: list[tuple[bytes, list[int], dict[str, Any]]] = []
        async with HttpClient(OsConnector()) as client:
            opts = options()
            for url in urls:
                body, heads = bytearray(), []

                async def sink(data: bytes, body: bytearray = body) -> None:
                    body += data

                async def on_head(head: ResponseHead, heads: list[int] = heads) -> None:
                    heads.append(head.status)

                transfer = await client.fetch(url, sink, opts, on_head=on_head)
                async_side.append((bytes(body), heads, _record(transfer)))
            async_opened = client.connections_opened
        origins = PlainOrigins()
        blocking = BlockingHttpClient(origins)
        blocking_side = []
        opts = options()
        for url in urls:
            body, heads = bytearray(), []
            transfer = blocking.fetch(
                url,
                body.extend,
                opts,
                on_head=lambda head, heads=heads: heads.append(head.status),
                transfer=Transfer(url=url),
            )
            blocking_side.append((bytes(body), heads, _record(transfer)))
        blocking.close()
    assert blocking_side == async_side
    assert async_side[0][0] == b"got Cookie: k=v" and async_side[0][1] == [302, 200]
    assert origins.opened == async_opened == 1  # one kept-alive connection for all of it


@pytest.mark.parametrize("case", ["reset after data", "reset before data", "huge chunk size"])
def test_hostile_servers_fail_as_with_the_async_engine(case: str) -> None:
    behaviour: Callable[[socket.socket], None]
    behaviour, code, words = CASES[case]
    with hostile(behaviour) as url:
        started = time.monotonic()
        client = BlockingHttpClient(PlainOrigins())
        with pytest.raises(AppError) as info:
            client.fetch(url, lambda _: None, FetchOptions(), on_head=None, transfer=Transfer(url))
        elapsed = time.monotonic() - started
    error = classify(info.value)
    assert (int(error.code), str(error)) == (code, words)
    assert elapsed < 0.45
