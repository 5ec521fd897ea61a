"""The session daemon and RemoteTunnel over a real Unix socket, with a loopback stand-in tunnel."""

from __future__ import annotations

import os
import socket
import stat
import struct
from pathlib import Path

import anyio
import pytest

from smolmix_cli.apps.errors import ResolveError
from smolmix_cli.errors_map import classify
from smolmix_cli.session import protocol as proto
from smolmix_cli.session.paths import SessionPaths, clear_stale, probe, runtime_dir
from smolmix_cli.session.remote import RemoteTunnel
from smolmix_cli.session.remote_errors import SessionUnavailable
from smolmix_cli.tunnel.errors import TunnelConnectError, TunnelUnavailable
from tests.session.stand_in import (
    Source,
    echo_tcp_server,
    echo_udp_server,
    running_daemon,
    unused_paths,
)

pytestmark = pytest.mark.anyio


NAMES = {"echo.test": "127.0.0.1"}


async def test_stream_both_ways_with_half_close(rundir: Path) -> None:
    paths = unused_paths(rundir)
    source = Source(NAMES)
    async with anyio.create_task_group() as tg:
        port = await tg.start(echo_tcp_server)
        async with running_daemon(paths, source) as daemon:
            remote = RemoteTunnel(paths.socket)
            payload = os.urandom(300_000)
            stream = await remote.open_tcp("echo.test", port)
            assert stream.extra(anyio.abc.SocketAttribute.remote_address)[1] == port
            received = bytearray()

            async def reader() -> None:
                while True:
                    try:
                        received.extend(await stream.receive())
                    except anyio.EndOfStream:
                        return

            async with anyio.create_task_group() as inner:
                inner.start_soon(reader)
                for i in range(0, len(payload), 7000):
                    await stream.send(payload[i : i + 7000])
                await stream.send_eof()  # the server sees EOF, sends its trailer, closes
            await stream.aclose()
            assert bytes(received) == payload + f"<eof after {len(payload)}>".encode()
            with anyio.fail_after(5):
                while daemon.counters.streams_open:
                    await anyio.sleep(0.01)
            report = await remote.status()
            assert report["bytes_up"] == len(payload)
            assert report["bytes_down"] == len(received)
            assert report["streams_total"] == 1 and report["streams_open"] == 0
            assert source.tunnels[0].asked == [("tcp", "echo.test", port)]
        tg.cancel_scope.cancel()
    assert source.boots == 1


async def test_udp_resolve_status_and_errors_keep_type_text_and_code(rundir: Path) -> None:
    paths = unused_paths(rundir)
    async with anyio.create_task_group() as tg:
        udp_port = await tg.start(echo_udp_server)
        async with running_daemon(paths, Source(NAMES)):
            remote = RemoteTunnel(paths.socket)
            assert (
                await remote.udp_exchange("echo.test", udp_port, b"\x00hello", 5) == b"re:\x00hello"
            )
            assert await remote.resolve("echo.test") == ["127.0.0.1"]
            with pytest.raises(ResolveError) as resolve_error:
                await remote.resolve("nowhere.test")
            assert str(resolve_error.value) == "Could not resolve host: nowhere.test"
            assert classify(resolve_error.value).code == 6
            with pytest.raises(ResolveError):
                await remote.open_tcp("nowhere.test", 80)
            with socket.socket() as s:  # a port nobody listens on
                s.bind(("127.0.0.1", 0))
                closed_port = s.getsockname()[1]
            with pytest.raises(TunnelConnectError) as refused:
                await remote.open_tcp("echo.test", closed_port)
            assert classify(refused.value).code == 7
            assert str(refused.value) == f"connection to 127.0.0.1:{closed_port} refused"
            report = await remote.status()
            assert report["state"] == "ready" and report["exit"] == "stand-in-exit"
            assert report["protocol"] == proto.VERSION and report["pid"] == os.getpid()
            assert report["udp_exchanges"] == 1 and report["resolves"] == 2
            assert remote.snapshot().ipv4 == "10.0.0.2"  # snapshot() = the last status
        tg.cancel_scope.cancel()


async def test_socket_and_directory_modes(rundir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMOLMIX_RUNTIME_DIR", str(rundir / "rt"))
    directory = runtime_dir()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    paths = SessionPaths.for_network("testnet")
    async with running_daemon(paths, Source(NAMES)):
        mode = paths.socket.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        assert stat.S_IMODE(paths.pid_file.stat().st_mode) == 0o600
        assert paths.read_pid() == os.getpid()
    assert not paths.socket.exists() and not paths.pid_file.exists()
    for child in directory.iterdir():
        child.unlink()
    directory.rmdir()


def _connect_as(uid: int, path: Path) -> str:
    """Fork; the child drops to `uid` and asks for status. Its outcome, as text."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        outcome = "?"
        try:
            os.setgid(uid)
            os.setuid(uid)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(5)
            sock.connect(str(path))
            sock.sendall(proto.request_frame(proto.Request("status")))
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            decoder = proto.FrameDecoder()
            decoder.feed(data)
            frame = decoder.next_frame()
            answer = proto.parse_answer(frame) if frame else None
            outcome = (
                f"error:{answer.kind}:{answer.exit_code}"
                if isinstance(answer, proto.RemoteError)
                else f"ok:{answer}"
            )
        except PermissionError:
            outcome = "EACCES"
        except BaseException as exc:
            outcome = f"other:{exc!r}"
        os.write(write_fd, outcome.encode()[:1000])
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    with os.fdopen(read_fd, "rb") as handle:
        return handle.read().decode()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
async def test_other_users_are_refused(rundir: Path) -> None:
    paths = unused_paths(rundir)
    nobody = 65534
    async with running_daemon(paths, Source(NAMES)) as daemon:
        # the file system keeps them out: 0700 directory, 0600 socket
        assert await anyio.to_thread.run_sync(_connect_as, nobody, paths.socket) == "EACCES"
        # and SO_PEERCRED does even when the modes are loosened
        os.chmod(rundir, 0o711)
        os.chmod(paths.socket, 0o666)
        outcome = await anyio.to_thread.run_sync(_connect_as, nobody, paths.socket)
        assert outcome == "error:PermissionError:5"  # not 77, the --cacert code
        assert daemon.counters.refused_peers == 1
        assert daemon.counters.requests == 0
        # our own uid is still served
        assert (await RemoteTunnel(paths.socket).status())["state"] == "ready"


async def test_stale_socket_detected_and_replaced(rundir: Path) -> None:
    paths = unused_paths(rundir)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(paths.socket))
    dead.close()  # a socket file nobody listens on: a killed session's leftover
    paths.pid_file.write_text("999999\n")
    assert paths.socket.exists() and probe(paths.socket) is False
    with pytest.raises(SessionUnavailable):
        await RemoteTunnel(paths.socket).status()
    assert clear_stale(paths) is True
    assert not paths.socket.exists() and not paths.pid_file.exists()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(paths.socket))
    dead.close()
    async with running_daemon(paths, Source(NAMES)):  # binds over the stale file itself
        assert probe(paths.socket) is True
        assert clear_stale(paths) is False  # a live session is never removed


async def test_second_daemon_on_a_live_socket_refuses(rundir: Path) -> None:
    from smolmix_cli.session.daemon import DaemonConfig, SessionDaemon, SessionDaemonError

    paths = unused_paths(rundir)
    async with running_daemon(paths, Source(NAMES)):
        second = SessionDaemon(
            paths, DaemonConfig(network_name="test"), Source(NAMES), classify=classify
        )
        with pytest.raises(SessionDaemonError, match="already runs"):
            await second.serve()
        assert probe(paths.socket) is True
        assert (await RemoteTunnel(paths.socket).status())["pid"] == os.getpid()


async def test_idle_timeout_stops_the_session(rundir: Path) -> None:
    paths = unused_paths(rundir)
    source = Source(NAMES)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            from smolmix_cli.session.daemon import DaemonConfig, SessionDaemon

            daemon = SessionDaemon(
                paths,
                DaemonConfig(network_name="test", idle_timeout=0.6),
                source,
                classify=classify,
            )
            await tg.start(daemon.serve)
            start = anyio.current_time()
            await RemoteTunnel(paths.socket).status()  # activity restarts the clock
            while paths.socket.exists():
                await anyio.sleep(0.05)
            assert anyio.current_time() - start >= 0.6
    assert not paths.pid_file.exists()


async def test_open_stream_keeps_an_idle_session_alive(rundir: Path) -> None:
    paths = unused_paths(rundir)
    async with anyio.create_task_group() as tg:
        port = await tg.start(echo_tcp_server)
        async with running_daemon(paths, Source(NAMES), idle_timeout=0.3):
            stream = await RemoteTunnel(paths.socket).open_tcp("echo.test", port)
            await anyio.sleep(1.0)  # longer than the idle timeout, but a stream is open
            await stream.send(b"still here")
            assert await stream.receive() == b"still here"
            await stream.aclose()
            with anyio.fail_after(5):
                while paths.socket.exists():
                    await anyio.sleep(0.05)
        tg.cancel_scope.cancel()


async def test_concurrent_first_callers_share_one_boot(rundir: Path) -> None:
    paths = unused_paths(rundir)
    source = Source(NAMES, delay=0.5)
    results: list[list[str]] = []
    async with running_daemon(paths, source):

        async def caller() -> None:
            results.append(await RemoteTunnel(paths.socket).resolve("echo.test"))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(caller)
    assert results == [["127.0.0.1"]] * 10
    assert source.boots == 1


async def test_first_boot_failure_reaches_waiters_and_ends_the_daemon(rundir: Path) -> None:
    paths = unused_paths(rundir)
    source = Source(NAMES, delay=0.2, fail=TunnelUnavailable("the exit refused the connect"))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            from smolmix_cli.session.daemon import DaemonConfig, SessionDaemon

            daemon = SessionDaemon(
                paths, DaemonConfig(network_name="test"), source, classify=classify
            )
            await tg.start(daemon.serve)
            with pytest.raises(TunnelUnavailable) as info:
                await RemoteTunnel(paths.socket).status(wait=5)
            assert str(info.value) == "the exit refused the connect"
            assert classify(info.value).code == 97
    assert not paths.socket.exists()


async def test_failed_tunnel_is_replaced_transparently(rundir: Path) -> None:
    paths = unused_paths(rundir)
    source = Source(NAMES)
    async with anyio.create_task_group() as tg:
        port = await tg.start(echo_tcp_server)
        async with running_daemon(paths, source):
            remote = RemoteTunnel(paths.socket)
            assert (await remote.status())["generation"] == 1
            source.tunnels[0].state = "failed"
            stream = await remote.open_tcp("echo.test", port)  # waits for generation 2
            await stream.send(b"again")
            assert await stream.receive() == b"again"
            await stream.aclose()
            report = await remote.status()
            assert report["generation"] == 2 and report["state"] == "ready"
        tg.cancel_scope.cancel()
    assert source.boots == 2


async def test_garbage_and_silent_clients_get_an_error_not_a_crash(rundir: Path) -> None:
    paths = unused_paths(rundir)
    async with running_daemon(paths, Source(NAMES)) as daemon:
        for garbage in (b"GET / HTTP/1.1\r\n\r\n", struct.pack(">3sBII", b"SMX", 9, 2, 0) + b"{}"):
            conn = await anyio.connect_unix(str(paths.socket))
            await conn.send(garbage)
            data = b""
            with anyio.fail_after(5):
                while True:
                    try:
                        data += await conn.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
            await conn.aclose()
            decoder = proto.FrameDecoder()
            decoder.feed(data)
            frame = decoder.next_frame()
            assert frame is not None
            answer = proto.parse_answer(frame)
            assert isinstance(answer, proto.RemoteError) and answer.kind == "ProtocolError"
        assert daemon.counters.requests == 0
        assert (await RemoteTunnel(paths.socket).status())["state"] == "ready"


async def test_failing_restarts_are_reported_then_recovered(rundir: Path) -> None:
    paths = unused_paths(rundir)
    source = Source(NAMES)
    async with running_daemon(paths, source):
        remote = RemoteTunnel(paths.socket)
        assert (await remote.status(wait=5))["generation"] == 1
        source.fail = TunnelUnavailable("no exit answers")
        source.tunnels[0].state = "failed"
        with pytest.raises(TunnelUnavailable, match="no exit answers"):
            await remote.status(wait=1.5)  # the restart's own error, not a bare timeout
        report = await remote.status()
        assert report["state"] == "connecting"
        assert report["reason"] == "restarting after: no exit answers"
        source.fail = None
        with anyio.fail_after(15):
            recovered = await remote.status(wait=14)
        assert recovered["state"] == "ready" and recovered["generation"] == 2
