"""Terminal versus pipe, in process: the CLI driven through an injected CliEnv.

Each test hands click's runner a fake env (`obj=CliEnv(...)`: BytesIO/StringIO
streams, chosen isatty flags and variables) and a stand-in for the session
factory's `open_tunnel`, whose tunnel answers from memory (a canned HTTP
response, a DNS reply, an echo stream). Nothing reaches a network; only
`session status` runs a real session daemon (on a Unix socket, in a thread).
"""

from __future__ import annotations

import gc
import io
import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.from_thread
import pytest
from click.testing import CliRunner, Result
from dnslib import QTYPE, RR, A, DNSRecord

from smolmix_cli.cli.env import CliEnv, cli_env
from smolmix_cli.cli.main import cli
from smolmix_cli.cli.status_line import boot_status
from smolmix_cli.cli.ws import StdinReader
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.session.paths import SessionPaths
from smolmix_cli.tunnel.status import TunnelStatus
from tests.cli.stand_in import StandInSession
from tests.session.stand_in import Source, running_daemon, short_runtime_dir

MIB = 1 << 20
ANSI = "\x1b["


def fake_env(
    *,
    stdin: bytes = b"",
    stdin_tty: bool = False,
    stdout_tty: bool = False,
    stderr_tty: bool = False,
    term: str = "xterm",
    **dirs: Path,
) -> CliEnv:
    return CliEnv(
        stdin=io.BytesIO(stdin),
        stdout=io.BytesIO(),
        stderr=io.StringIO(),
        stdin_isatty=stdin_tty,
        stdout_isatty=stdout_tty,
        stderr_isatty=stderr_tty,
        environ={"TERM": term, "COLUMNS": "100"},
        **dirs,
    )


def out(env: CliEnv) -> bytes:
    assert isinstance(env.stdout, io.BytesIO)
    return env.stdout.getvalue()


def err(env: CliEnv) -> str:
    assert isinstance(env.stderr, io.StringIO)
    return env.stderr.getvalue()


def invoke(env: CliEnv, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--network", "mainnet", *args], obj=env)


# -- a tunnel that answers from memory ---------------------------------------------


class CannedStream(anyio.abc.ByteStream):
    """One HTTP exchange: records what the client sends, replies with a fixed response."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.sent = bytearray()

    async def send(self, item: bytes) -> None:
        self.sent += item

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.response:
            raise anyio.EndOfStream
        chunk, self.response = self.response[:max_bytes], self.response[max_bytes:]
        return chunk

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class EchoStream(anyio.abc.ByteStream):
    """A peer that sends back every byte and closes after our end of stream."""

    def __init__(self) -> None:
        self._tx, self._rx = anyio.create_memory_object_stream[bytes](64)

    async def send(self, item: bytes) -> None:
        await self._tx.send(bytes(item))

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self._rx.receive()

    async def send_eof(self) -> None:
        await self._tx.aclose()

    async def aclose(self) -> None:
        await self._tx.aclose()
        await self._rx.aclose()


@dataclass
class MemoryTunnel:
    body: bytes = b"hello\n"
    status: int = 200
    answer: str = "10.1.2.3"
    opened: list[tuple[str, int]] = field(default_factory=list)
    exchanges: list[CannedStream] = field(default_factory=list)

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        self.opened.append((host, port))
        if port == 7:
            return EchoStream()
        head = f"HTTP/1.1 {self.status} X\r\nContent-Length: {len(self.body)}\r\n\r\n"
        self.exchanges.append(CannedStream(head.encode() + self.body))
        return self.exchanges[-1]

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
        question = DNSRecord.parse(payload)
        reply = question.reply()
        reply.add_answer(RR(question.q.qname, QTYPE.A, rdata=A(self.answer), ttl=60))
        return bytes(reply.pack())

    def snapshot(self) -> TunnelStatus:
        return TunnelStatus("ready", "stand-in", exit="stand-in-exit")


@dataclass
class StandInFactory:
    """`open_tunnel` without a mixnet; it draws the status line it is given, as a boot would."""

    tunnel: MemoryTunnel = field(default_factory=MemoryTunnel)
    status_lines: list[Any] = field(default_factory=list)

    @asynccontextmanager
    async def open_tunnel(self, *args: Any, **kwargs: Any) -> AsyncIterator[StandInSession]:
        status_line = kwargs.get("status_line")
        self.status_lines.append(status_line)
        if status_line is not None:
            with status_line() as show:
                show("registering with the gateway")
        yield StandInSession(self.tunnel)


@pytest.fixture
def factory(monkeypatch: pytest.MonkeyPatch) -> StandInFactory:
    stand_in = StandInFactory()
    monkeypatch.setattr("smolmix_cli.session.factory.open_tunnel", stand_in.open_tunnel)
    return stand_in


# -- the env itself ------------------------------------------------------------------


def test_the_group_keeps_an_injected_env_for_its_commands() -> None:
    env = fake_env()
    seen: list[CliEnv] = []

    @cli.command(name="probe-env")
    def probe_env() -> None:
        seen.append(cli_env())

    try:
        result = invoke(env, "probe-env")
    finally:
        del cli.commands["probe-env"]
    assert result.exit_code == 0 and seen == [env]


def test_without_an_injected_env_commands_see_the_process(factory: StandInFactory) -> None:
    result = CliRunner().invoke(cli, ["--network", "mainnet", "resolve", "a.test", "+short"])
    assert result.exit_code == 0 and result.stdout == "10.1.2.3\n"  # the runner's sys.stdout


def test_from_process_reads_this_process() -> None:
    env = CliEnv.from_process()
    assert env.environ is os.environ
    assert env.testnet_dir is None and env.runtime_dir is None


def test_stdout_text_encodes_into_stdout_and_never_closes_it() -> None:
    env = fake_env()
    env.stdout_text.write("é\n")
    env.stdout.write(b"raw\n")
    env.stdout_text.write("after\n")
    assert out(env) == "é\nraw\nafter\n".encode()
    view = env.stdout_text
    del env.__dict__["stdout_text"], view
    gc.collect()
    assert not env.stdout.closed


@pytest.mark.parametrize("tty", [False, True])
def test_echo_keeps_escapes_only_on_a_terminal(tty: bool) -> None:
    env = fake_env(stdout_tty=tty, stderr_tty=tty)
    env.echo("\x1b[1mbold\x1b[0m")
    env.echo("\x1b[1mwarn\x1b[0m", err=True)
    assert (ANSI in out(env).decode()) is tty
    assert (ANSI in err(env)) is tty


@pytest.mark.parametrize(
    ("stderr_tty", "term", "drawn"),
    [(True, "xterm", True), (False, "xterm", False), (True, "dumb", False)],
)
def test_status_line_only_where_stderr_redraws(stderr_tty: bool, term: str, drawn: bool) -> None:
    env = fake_env(stderr_tty=stderr_tty, term=term)
    status_line = boot_status(env)
    assert (status_line is not None) is drawn
    if status_line is not None:
        with status_line() as show:
            show("x" * 100)
        assert ANSI in err(env) and "x" * 69 + "..." in err(env)


# -- fetch: the progress bar and where the body goes --------------------------------------


def _bar_drawn(env: CliEnv) -> bool:
    return re.search(r"\d/\d+\.\d (kB|MB)", err(env)) is not None  # rich's byte counter


@pytest.mark.parametrize(
    ("stderr_tty", "term", "stdout_tty", "args", "size", "bar"),
    [
        (True, "xterm", False, ["-o", "FILE"], 1000, True),  # to a file: always worth a bar
        (False, "xterm", False, ["-o", "FILE"], 1000, False),  # stderr a pipe
        (True, "dumb", False, ["-o", "FILE"], 1000, False),  # a terminal that cannot redraw
        (True, "xterm", False, ["-s", "-o", "FILE"], 1000, False),  # -s
        (True, "xterm", False, [], MIB, True),  # large body into a pipe
        (True, "xterm", True, [], MIB, False),  # large body onto the same terminal
        (True, "xterm", False, [], 1000, False),  # small body into a pipe
    ],
)
def test_fetch_progress_bar_rules(
    factory: StandInFactory,
    tmp_path: Path,
    stderr_tty: bool,
    term: str,
    stdout_tty: bool,
    args: list[str],
    size: int,
    bar: bool,
) -> None:
    factory.tunnel.body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    target = tmp_path / "body.bin"
    env = fake_env(stderr_tty=stderr_tty, stdout_tty=stdout_tty, term=term)
    argv = [str(target) if a == "FILE" else a for a in args]
    result = invoke(env, "fetch", *argv, "http://a.test/")
    assert result.exit_code == 0, (result.output, err(env))
    body = target.read_bytes() if "-o" in args else out(env)
    assert body == factory.tunnel.body
    assert _bar_drawn(env) is bar, err(env)
    if not bar and not (stderr_tty and term != "dumb" and "-s" not in args):
        assert err(env) == ""


@pytest.mark.parametrize(
    ("stderr_tty", "args", "line"),
    [(True, [], True), (False, [], False), (True, ["-s"], False), (True, ["-v"], False)],
)
def test_fetch_boot_status_line_only_on_a_terminal(
    factory: StandInFactory, stderr_tty: bool, args: list[str], line: bool
) -> None:
    env = fake_env(stderr_tty=stderr_tty)
    result = invoke(env, "fetch", *args, "http://a.test/")
    assert result.exit_code == 0
    assert (factory.status_lines[0] is not None) is line
    assert ("registering with the gateway" in err(env)) is line
    assert out(env) == b"hello\n"


def test_fetch_verbose_include_writeout_and_errors_land_on_the_envs_streams(
    factory: StandInFactory,
) -> None:
    env = fake_env(stderr_tty=True)
    result = invoke(env, "fetch", "-v", "-i", "-w", "%{http_code}\\n", "http://a.test/")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    assert out(env) == b"HTTP/1.1 200 X\r\nContent-Length: 6\r\n\r\nhello\n200\n"
    assert "> GET / HTTP/1.1\n" in err(env) and "< HTTP/1.1 200 X\n" in err(env)
    factory.tunnel.status = 404
    failed = fake_env()
    result = invoke(failed, "fetch", "-f", "http://a.test/")
    assert result.exit_code == int(ExitCode.HTTP_ERROR)
    assert err(failed) == "smolmix: (22) The requested URL returned error: 404\n"
    assert out(failed) == b""


def test_fetch_reads_at_minus_data_from_the_envs_stdin(factory: StandInFactory) -> None:
    env = fake_env(stdin=b"from stdin")
    result = invoke(env, "fetch", "--data-binary", "@-", "http://a.test/")
    assert result.exit_code == 0
    assert factory.tunnel.exchanges[0].sent.endswith(b"\r\n\r\nfrom stdin")


# -- resolve, ws, connect -----------------------------------------------------------------


def test_resolve_prints_answers_on_the_envs_stdout(factory: StandInFactory) -> None:
    short = fake_env(stdout_tty=True)
    assert invoke(short, "resolve", "a.test", "+short").exit_code == 0
    assert out(short) == b"10.1.2.3\n"
    as_json = fake_env()
    assert invoke(as_json, "resolve", "a.test", "--json").exit_code == 0
    record = json.loads(out(as_json))
    assert record["ANCOUNT"] == 1 and record["answerRRs"][0]["rdataA"] == "10.1.2.3"
    dig = fake_env()
    assert invoke(dig, "resolve", "a.test").exit_code == 0
    assert b"ANSWER SECTION" in out(dig) and b"10.1.2.3" in out(dig)
    assert err(short) == err(as_json) == err(dig) == ""


def test_ws_stdin_without_a_descriptor_is_read_once() -> None:
    reader = StdinReader(fake_env(stdin=b"one\ntwo\n"))
    assert reader.fd is None and not reader.pollable

    async def main() -> list[bytes]:
        return [await reader.read(), await reader.read()]

    assert anyio.run(main) == [b"one\ntwo\n", b""]


def test_ws_stdin_pipe_is_polled_and_the_tty_flag_decides_for_devices(tmp_path: Path) -> None:
    r, w = os.pipe()
    with open(r, "rb") as pipe, open(w, "wb"):
        env = CliEnv(stdin=pipe, stdout=io.BytesIO(), stderr=io.StringIO())
        assert StdinReader(env).pollable
    with open(os.devnull, "rb") as null:
        piped = CliEnv(stdin=null, stdout=io.BytesIO(), stderr=io.StringIO())
        assert not StdinReader(piped).pollable  # /dev/null never blocks: read directly
        terminal = CliEnv(stdin=null, stdout=io.BytesIO(), stderr=io.StringIO(), stdin_isatty=True)
        assert StdinReader(terminal).pollable


def test_connect_pipes_the_envs_descriptors(factory: StandInFactory) -> None:
    """connect copies between descriptors: the env's stdin and stdout are real pipes here."""
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    os.write(w_in, b"ping through the tunnel\n")
    os.close(w_in)
    with open(r_in, "rb") as stdin, open(r_out, "rb") as reader:
        with open(w_out, "wb") as stdout:
            env = CliEnv(stdin=stdin, stdout=stdout, stderr=io.StringIO())
            result = invoke(env, "connect", "a.test", "7")
        assert result.exit_code == 0, result.output
        assert reader.read() == b"ping through the tunnel\n"
    assert factory.status_lines == [None]  # stderr is not a terminal


def test_connect_needs_descriptors(factory: StandInFactory) -> None:
    """connect has no fallback without descriptors: a test gives it pipes (above)."""
    env = fake_env()
    result = invoke(env, "connect", "a.test", "7")
    assert result.exit_code == int(ExitCode.INTERNAL)
    assert err(env) == "smolmix: internal error: UnsupportedOperation: fileno\n"


# -- session status and testnet: the CLI's dirs -----------------------------------------------


@pytest.fixture
def runtime() -> Iterator[Path]:
    path = short_runtime_dir()
    os.chmod(path, 0o700)
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture
def live_session(runtime: Path) -> Iterator[Path]:
    """A real session daemon for `mainnet` in the runtime dir, over a loopback stand-in tunnel."""
    paths = SessionPaths("mainnet", runtime)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(running_daemon(paths, Source({}))),
    ):
        yield runtime


@pytest.mark.parametrize("tty", [True, False])
def test_session_status_table_is_styled_only_on_a_terminal(live_session: Path, tty: bool) -> None:
    env = fake_env(stdout_tty=tty, runtime_dir=live_session)
    result = invoke(env, "session", "status")
    assert result.exit_code == 0, err(env)
    table = out(env).decode()
    assert "smolmix session (mainnet)" in table and "streams open / total" in table
    assert (ANSI in table) is tty


def test_session_status_json_and_absence(live_session: Path, runtime: Path) -> None:
    env = fake_env(runtime_dir=live_session)
    assert invoke(env, "session", "status", "--json").exit_code == 0
    report = json.loads(out(env))
    assert report["running"] is True and report["session"] == "mainnet"
    empty = fake_env(runtime_dir=runtime / "elsewhere")
    (runtime / "elsewhere").mkdir(mode=0o700)
    try:
        result = invoke(empty, "session", "status", "--json")
    finally:
        (runtime / "elsewhere").rmdir()
    assert result.exit_code == 1
    assert json.loads(out(empty)) == {"running": False, "session": "mainnet"}
    assert err(empty) == "smolmix: no mainnet session is running\n"


def test_testnet_commands_default_to_the_envs_state_dir(tmp_path: Path) -> None:
    env = fake_env(testnet_dir=tmp_path)
    result = CliRunner().invoke(cli, ["testnet", "status", "--json"], obj=env)
    assert result.exit_code == int(ExitCode.TESTNET_UNAVAILABLE)
    assert json.loads(out(env)) == {"running": False, "state_dir": str(tmp_path.resolve())}
    assert err(env) == f"smolmix: no local test network is running in {tmp_path.resolve()}\n"
    down = fake_env(testnet_dir=tmp_path)
    assert CliRunner().invoke(cli, ["testnet", "down"], obj=down).exit_code == 0
    assert err(down) == "smolmix: no local test network is running\n"


def test_fetch_output_naming_a_directory_is_a_write_error(
    factory: StandInFactory, tmp_path: Path
) -> None:
    """curl: `-o DIR` fails when the first byte is written, with 23 (not a usage error)."""
    factory.tunnel.body = b"hello"
    env = fake_env()
    result = invoke(env, "fetch", "-sS", "-o", str(tmp_path), "http://a.test/")
    assert result.exit_code == 23, (result.output, err(env))
    assert err(env).strip() == "smolmix: (23) Failure writing output to destination: Is a directory"
