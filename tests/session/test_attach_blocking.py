"""session/attach.py against a scripted daemon: what the blocking shell reads off the socket.

Only the connect is bounded by CONNECT_TIMEOUT: an `open_http` answer waits for TCP and
TLS through the mixnet (seconds on mainnet), and the stream's end frames say FIN or why
it broke, as remote.py's AttachedStream reads them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from smolmix_cli.session import attach
from smolmix_cli.session import protocol as proto
from tests.session.stand_in import short_runtime_dir


@contextmanager
def daemon(answer: Callable[[socket.socket], None]) -> Iterator[Path]:
    """A Unix socket that reads one request frame per connection, then runs `answer`."""
    base = short_runtime_dir()
    path = base / "t.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            decoder = proto.FrameDecoder()
            while decoder.next_frame() is None:
                decoder.feed(conn.recv(65536))
            answer(conn)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield path
    finally:
        server.close()
        path.unlink(missing_ok=True)
        base.rmdir()


def _slow_origin(conn: socket.socket) -> None:
    time.sleep(0.3)  # the session's TCP and TLS through the tunnel
    conn.sendall(proto.ok_frame(end_mark=True, reused=False, tls_version="TLSv1.3", tls_s=0.1))
    conn.sendall(proto.encode({}, b"HTTP/1.1 200 OK\r\n") + proto.end_frame("the exit went away"))


def test_an_answer_may_take_longer_than_the_connect_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(attach, "CONNECT_TIMEOUT", 0.1)
    with daemon(_slow_origin) as path:
        session = attach.BlockingSession(path, {}, reuse=True)
        origin = session.open_origin(
            "example.org", 443, server_name="example.org", verify=True, cafile=None, fresh=False
        )
        assert (origin.reused, origin.tls_version, origin.tls_seconds) == (False, "TLSv1.3", 0.1)
        assert origin.stream.receive(65536) == b"HTTP/1.1 200 OK\r\n"
        with pytest.raises(attach.StreamBroken, match="the exit went away"):
            origin.stream.receive(65536)
        origin.stream.close()


def test_no_session_is_none_for_the_async_path(monkeypatch: pytest.MonkeyPatch) -> None:
    base = short_runtime_dir()
    monkeypatch.setenv("SMOLMIX_RUNTIME_DIR", str(base))
    try:
        from smolmix_cli.options import GlobalOptions

        assert attach.attach(GlobalOptions(network="mainnet")) is None
    finally:
        base.rmdir()
