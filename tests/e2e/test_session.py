"""The background session end to end: `smolmix` subprocesses on a local network (zero mix delay).

One local network for the module; sessions are started and stopped per test.
Every subprocess and wait is bounded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from smolmix_cli.session import socks5
from tests.e2e.cli_net import CliOnTestnet

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 60.0


@dataclass
class Net(CliOnTestnet):
    runtime: Path
    state: Path
    demo: dict[str, Any]

    @property
    def socket(self) -> Path:
        return self.runtime / "testnet.sock"

    def stop(self) -> None:
        if self.socket.exists():
            self.run("session", "stop")

    def origin(self, path: str) -> bytes:
        """The demo origin's answer body, straight over loopback (the reference bytes)."""
        port = self.demo["loopback_ports"]["http"]
        with socket.create_connection((self.demo["loopback_host"], port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: demo.smolmix.test\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.split(b"\r\n\r\n", 1)[1]


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    from smolmix_cli.network_select import running_network

    base = Path(tempfile.mkdtemp(prefix="smx-e2e-", dir="/tmp"))
    env = dict(os.environ)
    for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION", "SMOLMIX_NO_SESSION"):
        env.pop(name, None)
    env["XDG_STATE_HOME"] = str(base / "state")
    env["SMOLMIX_RUNTIME_DIR"] = str(base / "run")
    state = base / "state" / "smolmix" / "testnet"
    log = open(base / "testnet.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "smolmix_cli", "testnet", "up", "--mix-delay-ms", "0"],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        network = None
        while network is None and time.monotonic() < deadline and proc.poll() is None:
            network = running_network(state)
            time.sleep(0.1)
        assert network is not None, (base / "testnet.log").read_text()
        demo = json.loads((state / "network.json").read_text())["demo"]
        net = Net(env, base / "run", state, demo)
        yield net
        net.stop()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        log.close()
        _kill_sessions(base / "run")
        shutil.rmtree(base, ignore_errors=True)


def _kill_sessions(runtime: Path) -> None:
    for pid_file in runtime.glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError, OSError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture(scope="class")
def session(net: Net) -> Iterator[dict[str, Any]]:
    started = net.run("session", "start", "--socks5", "127.0.0.1:0")
    assert started.returncode == 0, started.stderr
    assert b"session ready" in started.stderr
    try:
        yield net.status()
    finally:
        net.stop()
        assert not net.socket.exists()


def _wait_gone(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not path.exists()


def _wait_exited(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_sigkill_leaves_a_stale_socket_that_the_next_command_cleans(net: Net) -> None:
    started = net.run("session", "start")
    assert started.returncode == 0, started.stderr
    pid = net.status()["pid"]
    os.kill(pid, signal.SIGKILL)
    _wait_exited(pid, 10)
    assert net.socket.exists()  # the stale socket stays behind
    status = net.run("session", "status")
    assert status.returncode == 1 and b"no testnet session" in status.stderr
    fetched = net.run("fetch", "-sS", "http://demo.smolmix.test/")
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout == net.origin("/")
    assert not net.socket.exists()  # cleaned up; the fetch booted in-process
    again = net.run("--session", "start", "fetch", "-sS", "http://demo.smolmix.test/")
    assert again.returncode == 0 and again.stdout == fetched.stdout
    assert net.socket.exists() and net.status()["pid"] != pid
    net.stop()


def test_idle_timeout_stops_the_session(net: Net) -> None:
    started = net.run("session", "start", "--idle-timeout", "2s")
    assert started.returncode == 0, started.stderr
    pid = net.status()["pid"]
    assert net.status()["idle_timeout_s"] == 2.0
    assert _wait_gone(net.socket, 15)
    assert _wait_exited(pid, 5), "the idle session process did not exit"
    assert "idle for 2 s" in (net.runtime / "testnet.log").read_text()


def _socks_get(proxy: tuple[str, int], host: str, path: str) -> bytes:
    with socket.create_connection(proxy, timeout=20) as s:
        s.sendall(socks5.client_greeting())
        assert s.recv(2) == b"\x05\x00"
        s.sendall(socks5.client_request(socks5.CMD_CONNECT, host, 80))
        buf = b""
        while (parsed := socks5.parse_reply(buf)) is None:
            buf += s.recv(1)
        assert parsed[0] == socks5.REP_SUCCEEDED
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: demo.smolmix.test\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1]


def test_concurrent_first_callers_share_one_session(net: Net) -> None:
    assert not net.socket.exists()
    log = net.runtime / "testnet.log"
    before = log.read_text().count("listening on") if log.exists() else 0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "smolmix_cli",
                "--network",
                "testnet",
                "--session",
                "start",
                "fetch",
                "-sS",
                "http://demo.smolmix.test/",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=net.env,
            cwd=REPO,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=RUN_TIMEOUT) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert all(out == net.origin("/") for out, _ in outputs)
    assert log.read_text().count("listening on") - before == 1
    report = net.status()
    assert report["generation"] == 1 and report["streams_total"] == 3
    net.stop()


def test_stop_and_status_without_a_session(net: Net) -> None:
    assert not net.socket.exists()
    stop = net.run("session", "stop")
    assert stop.returncode == 1 and b"no testnet session is running" in stop.stderr
    status = net.run("session", "status", "--json")
    assert status.returncode == 1
    assert json.loads(status.stdout) == {"running": False, "session": "testnet"}


def test_resolve_attached_matches_and_sigterm_stops_cleanly(net: Net) -> None:
    started = net.run("session", "start")
    assert started.returncode == 0, started.stderr
    pid = net.status()["pid"]
    for args in (("demo.smolmix.test", "TXT", "+short"), ("nowhere.smolmix.test", "+short")):
        attached = net.run("resolve", *args)
        alone = net.run("--no-session", "resolve", *args)
        assert (attached.returncode, attached.stdout) == (alone.returncode, alone.stdout)
        assert attached.returncode == 0
    assert b"hello from the demo origin" in net.run("resolve", "demo.smolmix.test", "TXT").stdout
    assert net.status()["udp_exchanges"] >= 3
    os.kill(pid, signal.SIGTERM)
    assert _wait_gone(net.socket, 10)
    assert not (net.runtime / "testnet.pid").exists()


class TestWithSession:
    """Tests that share one session (with a SOCKS5 port), started once for the class."""

    def test_twenty_fetches_attach_and_match_no_session(
        self, net: Net, session: dict[str, Any]
    ) -> None:
        url = "http://demo.smolmix.test/bytes/3000"
        cases = [
            ("-sS", url),
            ("-sS", "-f", "http://demo.smolmix.test/status/404"),
            ("-sS", "http://nowhere.smolmix.test/"),
            ("-sS", "http://demo.smolmix.test:81/"),
        ]
        alone = [net.run("--no-session", "fetch", *case) for case in cases]
        assert [p.returncode for p in alone] == [0, 22, 6, 7]
        assert alone[0].stdout == net.origin("/bytes/3000")
        before = net.status()
        for _ in range(20):
            attached = net.run("fetch", *cases[0])
            assert (attached.returncode, attached.stdout, attached.stderr) == (
                0,
                alone[0].stdout,
                alone[0].stderr,
            )
        after = net.status()
        # nobody booted: the same daemon and tunnel generation carried all twenty
        assert after["pid"] == before["pid"] == session["pid"]
        assert after["generation"] == before["generation"] == 1
        assert after["streams_total"] - before["streams_total"] == 20
        assert after["bytes_down"] - before["bytes_down"] > 20 * 3000
        for case, reference in zip(cases[1:], alone[1:], strict=True):
            attached = net.run("fetch", *case)
            assert (attached.returncode, attached.stdout, attached.stderr) == (
                reference.returncode,
                reference.stdout,
                reference.stderr,
            ), case
        # -w tells the two apart, as curl's %{json} keys are documented to
        shown = net.run("fetch", "-sS", "-o", "/dev/null", "-w", "%{reused_tunnel}", url)
        assert shown.stdout == b"True"

    def test_curl_through_the_socks5_port_is_byte_exact(
        self, net: Net, session: dict[str, Any]
    ) -> None:
        curl = shutil.which("curl")
        if curl is None:
            pytest.skip("curl is not installed (Debian package `curl`)")
        proxy = session["socks5"]
        done = subprocess.run(
            [
                curl,
                "-sS",
                "--max-time",
                "30",
                "--socks5-hostname",
                proxy,
                "http://demo.smolmix.test/bytes/200000",
            ],
            capture_output=True,
            timeout=40,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == net.origin("/bytes/200000")
        refused = subprocess.run(
            [
                curl,
                "-sS",
                "--max-time",
                "30",
                "--socks5-hostname",
                proxy,
                "http://nowhere.smolmix.test/",
            ],
            capture_output=True,
            timeout=40,
        )
        assert refused.returncode == 97  # curl: SOCKS5 proxy handshake failed (host unreachable)

    def test_python_socks5_client_through_the_session(
        self, net: Net, session: dict[str, Any]
    ) -> None:
        host, port = socks5.parse_listen(session["socks5"])
        expected = net.origin("/bytes/50000")
        assert _socks_get((host, port), "demo.smolmix.test", "/bytes/50000") == expected
        assert _socks_get((host, port), "198.18.0.1", "/bytes/50000") == expected  # IPv4 literal
        # DNS through UDP ASSOCIATE
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
            socket.create_connection((host, port), timeout=20) as control,
        ):
            control.sendall(socks5.client_greeting())
            assert control.recv(2) == b"\x05\x00"
            control.sendall(socks5.client_request(socks5.CMD_UDP_ASSOCIATE, "0.0.0.0", 0))
            buf = b""
            while (parsed := socks5.parse_reply(buf)) is None:
                buf += control.recv(1)
            code, relay_host, relay_port, _ = parsed
            assert code == socks5.REP_SUCCEEDED
            import dnslib

            query = dnslib.DNSRecord.question("demo.smolmix.test", "A")
            udp.settimeout(20)
            udp.sendto(
                socks5.udp_datagram("198.18.0.1", 53, query.pack()), (relay_host, relay_port)
            )
            answer, _ = udp.recvfrom(65536)
            _, _, payload = socks5.parse_udp(answer)
            record = dnslib.DNSRecord.parse(payload)
            assert record.header.id == query.header.id
            assert [str(rr.rdata) for rr in record.rr] == ["198.18.0.1"]

    def test_connect_pipes_data_both_ways(self, net: Net, session: dict[str, Any]) -> None:
        body = os.urandom(20000).hex().encode()
        request = (
            b"POST /upload HTTP/1.0\r\nHost: demo.smolmix.test\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        for mode in ((), ("--no-session",)):
            done = net.run(*mode, "connect", "demo.smolmix.test", "80", input=request)
            assert done.returncode == 0, done.stderr
            head, _, answer = done.stdout.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert json.loads(answer) == {
                "sha256": hashlib.sha256(body).hexdigest(),
                "length": len(body),
            }
        refused = net.run("connect", "demo.smolmix.test", "81", input=b"")
        alone = net.run("--no-session", "connect", "demo.smolmix.test", "81", input=b"")
        assert refused.returncode == alone.returncode == 7
        assert refused.stderr == alone.stderr

    def test_status_table_json_and_side_by_side_sessions(
        self, net: Net, session: dict[str, Any]
    ) -> None:
        for key in (
            "network",
            "gateway",
            "exit",
            "ipv4",
            "ipv6",
            "uptime_s",
            "state",
            "bytes_up",
            "bytes_down",
            "packets_up",
            "packets_down",
            "streams_open",
            "rtt_ms",
        ):
            assert key in session
        assert session["running"] is True and session["state"] == "ready"
        assert session["ipv4"] and session["gateway"] and session["rtt_ms"] > 0
        assert session["gateways_tried"][-1].endswith(": connected")
        assert ": connected in " in session["exits_tried"][-1]
        table = net.run("session", "status")
        assert table.returncode == 0 and b"streams open" in table.stdout
        assert b"gateways tried" in table.stdout and b"exits tried" in table.stdout
        # a second network (the same local network selected by its file) gets its own session
        file_net = str(net.state / "network.json")
        other = subprocess.run(
            [sys.executable, "-m", "smolmix_cli", "--network", file_net, "session", "start"],
            capture_output=True,
            timeout=RUN_TIMEOUT,
            env=net.env,
            cwd=REPO,
        )
        assert other.returncode == 0, other.stderr
        try:
            sockets = sorted(p.name for p in net.runtime.glob("*.sock"))
            assert len(sockets) == 2 and "testnet.sock" in sockets
            assert net.status()["pid"] == session["pid"]
        finally:
            stopped = subprocess.run(
                [sys.executable, "-m", "smolmix_cli", "--network", file_net, "session", "stop"],
                capture_output=True,
                timeout=RUN_TIMEOUT,
                env=net.env,
                cwd=REPO,
            )
        assert stopped.returncode == 0
        assert [p.name for p in net.runtime.glob("*.sock")] == ["testnet.sock"]


def test_a_busy_socks5_port_fails_the_start_with_its_reason(net: Net) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = net.run("session", "start", "--socks5", f"127.0.0.1:{port}")
    assert done.returncode == 5
    assert b"cannot listen: Address already in use" in done.stderr
    assert not net.socket.exists()


def test_commands_attach_only_with_the_same_tunnel_options(net: Net) -> None:
    started = net.run("--mtu", "1400", "session", "start")
    assert started.returncode == 0, started.stderr
    try:
        assert net.status()["tunnel_args"] == ["--mtu", "1400"]
        other = net.run("fetch", "-sS", "http://demo.smolmix.test/")  # boots in-process
        assert other.returncode == 0 and other.stdout == net.origin("/")
        assert net.status()["streams_total"] == 0
        same = net.run("--mtu", "1400", "fetch", "-sS", "http://demo.smolmix.test/")
        assert same.returncode == 0 and same.stdout == other.stdout
        assert net.status()["streams_total"] == 1
        refused = net.run("--session", "start", "fetch", "-sS", "http://demo.smolmix.test/")
        assert refused.returncode == 2 and b"other tunnel options" in refused.stderr
    finally:
        net.stop()
