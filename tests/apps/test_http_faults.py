"""Hostile servers on loopback: each transport failure exits with curl's code and curl's words.

Each case runs the real curl against the same server when it is installed, so the expected
code is curl's own, not our memory of it.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from smolmix_cli.apps.errors import AppError
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.errors_map import classify
from tests.apps.helpers import get
from tests.apps.os_connector import OsConnector

pytestmark = pytest.mark.anyio

Behaviour = Callable[[socket.socket], None]


def _reset(conn: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _reset_after_data(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    time.sleep(0.2)
    _reset(conn)


def _reset_before_data(conn: socket.socket) -> None:
    _reset(conn)


def _chunked(line: bytes) -> Behaviour:
    def send(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n" + line)
        time.sleep(0.5)  # a lying size must be refused at its line, not at this close
        conn.close()

    return send


@contextmanager
def hostile(behaviour: Behaviour) -> Iterator[str]:
    """A loopback server that reads each request and then misbehaves; yields its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            conn.recv(65536)
            behaviour(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _curl(url: str) -> tuple[int, str] | None:
    if shutil.which("curl") is None:
        return None
    done = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", url], capture_output=True, text=True, timeout=30
    )
    return done.returncode, done.stderr


CASES = {
    "reset after data": (_reset_after_data, 56, "Recv failure: Connection reset by peer"),
    "reset before data": (_reset_before_data, 56, "Recv failure: Connection reset by peer"),
    "invalid chunk size": (
        _chunked(b"ZZZ\r\n"),
        56,
        "Illegal or missing hexadecimal sequence in chunked-encoding",
    ),
    "huge chunk size": (
        _chunked(b"F" * 20 + b"\r\n"),
        56,
        "Too long hexadecimal number in chunked-encoding",
    ),
    "chunk size past 2**63": (
        _chunked(b"F" * 16 + b"\r\n"),
        56,
        "Illegal or missing hexadecimal sequence in chunked-encoding",
    ),
    "missing chunk footer": (
        _chunked(b"3\r\nabcXY"),
        56,
        "Malformed encoding found in chunked-encoding",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_transport_failures_exit_as_curl(case: str) -> None:
    behaviour, code, words = CASES[case]
    with hostile(behaviour) as url:
        started = time.monotonic()
        async with HttpClient(OsConnector()) as client:
            with pytest.raises(AppError) as info:
                await get(client, url)
        elapsed = time.monotonic() - started
        curl = _curl(url)
    error = classify(info.value)
    assert (int(error.code), str(error)) == (code, words)
    assert elapsed < 0.45  # refused when the bad bytes arrive, not when the server closes
    if curl is not None:
        assert curl[0] == code, curl[1]
        assert words in curl[1]


def test_stream_failure_words_have_no_reprs() -> None:
    import anyio

    from smolmix_cli.apps.failure_text import stream_failure

    broken = anyio.BrokenResourceError()
    broken.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert stream_failure(broken) == "Connection reset by peer"
    assert stream_failure(anyio.BrokenResourceError()) == "the connection broke"
    assert stream_failure(anyio.BrokenResourceError("the exit went away")) == "the exit went away"
    assert stream_failure(BrokenPipeError(32, "Broken pipe")) == "Broken pipe"
