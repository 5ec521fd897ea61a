"""An attached stream ends as the destination ended it: FIN, reset, or the session gone.

Through the daemon the way back is framed (`end_mark`), so a reset mid-body is curl's 56
"Recv failure: Connection reset by peer" as in-process, not a FIN that reads as the server
closing (18). A client that does not ask for the mark still gets the raw stream.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import anyio
import pytest

from smolmix_cli.apps.errors import AppError
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.errors_map import classify
from smolmix_cli.session import protocol as proto
from smolmix_cli.session.remote import RemoteTunnel
from smolmix_cli.session.unix import connect_unix
from tests.apps.helpers import get
from tests.apps.test_http_faults import Behaviour, _reset_after_data, hostile
from tests.session.stand_in import Source, running_daemon, unused_paths

pytestmark = pytest.mark.anyio

NAMES = {"hostile.test": "127.0.0.1"}


def _short_body(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
    time.sleep(0.1)
    conn.close()  # FIN: the server closed early


@pytest.mark.parametrize(
    ("behaviour", "code", "words"),
    [
        (_reset_after_data, 56, "Recv failure: Connection reset by peer"),
        (_short_body, 18, "transfer closed with 99000 bytes remaining to read"),
    ],
    ids=["reset", "fin"],
)
async def test_attached_fetch_tells_a_reset_from_a_fin(
    rundir: Path, behaviour: Behaviour, code: int, words: str
) -> None:
    paths = unused_paths(rundir)
    with hostile(behaviour) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        async with (
            running_daemon(paths, Source(NAMES)),
            HttpClient(RemoteTunnel(paths.socket)) as client,
        ):
            with pytest.raises(AppError) as info:
                await get(client, f"http://hostile.test:{port}/")
    error = classify(info.value)
    assert (int(error.code), str(error)) == (code, words)


async def test_a_session_gone_mid_stream_is_not_a_fin(rundir: Path) -> None:
    """The daemon's end of the socket closes without the end frame: a broken stream."""
    paths = unused_paths(rundir)

    def slow(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        time.sleep(1.0)
        conn.close()

    with hostile(slow) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        async with running_daemon(paths, Source(NAMES)) as daemon:
            remote = RemoteTunnel(paths.socket)
            stream = await remote.open_tcp("hostile.test", port)
            await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await stream.receive()).startswith(b"HTTP/1.1 200 OK")
            daemon.stop()
            with pytest.raises(anyio.BrokenResourceError, match="without its end"):
                with anyio.fail_after(5):
                    while True:
                        await stream.receive()
            await stream.aclose()


async def test_clients_that_do_not_ask_for_the_mark_get_raw_bytes(rundir: Path) -> None:
    paths = unused_paths(rundir)

    def hello(conn: socket.socket) -> None:
        conn.sendall(b"raw bytes")
        conn.close()

    with hostile(hello) as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        async with running_daemon(paths, Source(NAMES)):
            conn = await connect_unix(paths.socket, 5)
            async with conn:
                await conn.send(
                    proto.request_frame(proto.Request("open_tcp", "hostile.test", port))
                )
                await conn.send(b"hi\r\n\r\n")
                received = b""
                with anyio.fail_after(5):
                    while True:
                        try:
                            received += await conn.receive()
                        except anyio.EndOfStream:
                            break
    decoder = proto.FrameDecoder()
    decoder.feed(received)
    answer = decoder.next_frame()
    assert answer is not None and "end_mark" not in answer.header
    assert decoder.rest() == b"raw bytes"
