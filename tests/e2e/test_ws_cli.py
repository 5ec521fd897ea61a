"""`smolmix ws` (websocat) through the local network's exit to the demo echo server.

The echo server sends every message back, closes with CODE and REASON when sent
`close:CODE:REASON`, and answers `path` with the request path.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli_net import REPO, hermetic_env, smolmix, start_network

WS = "ws://demo.smolmix.test:8080"
WSS = "wss://demo.smolmix.test:8443"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from start_network(tmp_path_factory.mktemp("net"))


def events(stdout: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_line_mode_echo_text_over_ws_and_wss(net: Path) -> None:
    for url in (f"{WS}/", f"{WSS}/"):
        result = smolmix(net, "ws", url, stdin=b"hello\nw\xc3\xb6rld\r\nlast")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "hello\nwörld\nlast\n".encode()


def test_jsonl_events_binary_and_subprotocol(net: Path) -> None:
    sent = json.dumps({"type": "binary", "data_base64": base64.b64encode(b"\x00\xff\n").decode()})
    result = smolmix(
        net, "ws", "--jsonl", "--protocol", "echo", f"{WS}/", stdin=sent.encode() + b"\n"
    )
    assert result.returncode == 0, result.stderr
    got = events(result.stdout)
    assert got[0] == {"event": "open", "url": f"{WS}/", "protocol": "echo"}
    assert got[1] == {
        "event": "message",
        "type": "binary",
        "data_base64": base64.b64encode(b"\x00\xff\n").decode(),  # the bytes as sent
    }
    assert got[-1] == {"event": "close", "code": 1000, "reason": "", "by": "client"}


def test_binary_mode_sends_and_prints_bytes_untouched(net: Path, tmp_path: Path) -> None:
    """websocat -b: each read of stdin is one binary message and messages come back
    without separators, so 64 KiB of random bytes (CR, LF and NUL among them) sent to an
    echo server come back exactly: from a pipe over ws, from a file over wss."""
    data = os.urandom(64 * 1024) + b"\r\n\r"
    piped = smolmix(net, "ws", "-b", f"{WS}/", stdin=data)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == data
    path = tmp_path / "random.bin"
    path.write_bytes(data)
    with path.open("rb") as stdin:
        from_file = subprocess.run(
            [sys.executable, "-m", "smolmix_cli", "--network", str(net), "ws", "-b", f"{WSS}/"],
            stdin=stdin,
            capture_output=True,
            timeout=60,
            cwd=REPO,
            env={**hermetic_env(), "PYTHONPATH": str(REPO)},
        )
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout == data


def test_one_message_mode_sends_the_first_line_only(net: Path) -> None:
    """websocat 1.13's -1: the first line (newline included) and at most one reply."""
    result = smolmix(net, "ws", "-1", f"{WS}/", stdin=b"one\ntwo")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"one\n"


def test_server_close_codes_map_to_exit_status(net: Path) -> None:
    script = b'{"type": "text", "data": "a"}\n{"type": "text", "data": "close:4001:bye"}\n'
    abnormal = smolmix(net, "ws", "-n", "--jsonl", f"{WS}/", stdin=script)
    assert abnormal.returncode == 12
    assert b"4001 bye" in abnormal.stderr and abnormal.stderr.count(b"\n") == 1
    got = events(abnormal.stdout)
    assert got[1]["data"] == "a"
    assert got[-1] == {"event": "close", "code": 4001, "reason": "bye", "by": "server"}
    normal = smolmix(
        net, "ws", "-n", "--ping-interval", "0.1", f"{WS}/", stdin=b"x\nclose:1000:done\n"
    )
    assert normal.returncode == 0 and normal.stdout == b"x\n"
    assert b"1000 done" in normal.stderr


def test_headers_path_and_bad_input(net: Path) -> None:
    path = smolmix(net, "ws", "-H", "X-Probe: 1", "-1", f"{WS}/some/where?q=1", stdin=b"path")
    assert path.returncode == 0 and path.stdout == b"/some/where?q=1\n"
    for args, code in (
        (["http://demo.smolmix.test/"], 1),
        (["ws://exa mple/"], 3),
        (["-H", "bad header", f"{WS}/"], 2),
        (["-t", "-b", f"{WS}/"], 2),
    ):
        result = smolmix(net, "ws", *args)
        assert result.returncode == code, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1


def test_refused_port_is_a_connect_failure(net: Path) -> None:
    result = smolmix(net, "ws", "ws://demo.smolmix.test:9/", stdin=b"x\n")
    assert result.returncode == 7, result.stderr
    assert result.stderr.count(b"\n") == 1


def _read_until(fd: int, needle: bytes, count: int, deadline: float) -> bytes:
    seen = b""
    while seen.count(needle) < count:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {needle!r}; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_interactive_session_in_a_pseudo_terminal(net: Path) -> None:
    """A person at a terminal: type a line, see the reply, press Ctrl-D, exit 0."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "smolmix_cli", "--network", str(net), "ws", f"{WS}/"],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**hermetic_env(), "PYTHONPATH": str(REPO)},
    )
    os.close(slave)
    try:
        deadline = time.monotonic() + 30
        os.write(master, b"hello mixnet\n")
        # the terminal echoes the typed line, then the server's reply is printed
        seen = _read_until(master, b"hello mixnet", 2, deadline)
        assert seen.count(b"hello mixnet") >= 2
        os.write(master, b"second\n")
        _read_until(master, b"second", 2, deadline)
        os.write(master, b"\x04")  # Ctrl-D: end of input, a clean close
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
