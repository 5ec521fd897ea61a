"""The mypyc-compiled netstack core: built where it can be, current, and equal to the sources."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from smolmix_cli.netstack import native
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.native import NATIVE_CORE
from smolmix_cli.netstack.socket.tcp import connection
from smolmix_cli.netstack.wire.ip import decode_ip, encode_ip
from tests.netstack.engine_trace import trace
from tests.netstack.relay import Impairment, SimLink

ROOT = Path(__file__).resolve().parents[2]


def test_core_is_compiled_where_a_compiler_is() -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here: the netstack runs as plain Python")
    if os.environ.get("SMOLMIX_PURE_PYTHON"):
        pytest.skip("SMOLMIX_PURE_PYTHON is set: built without mypyc on purpose")
    assert native.compiled() == list(NATIVE_CORE), "reinstall with `pip install -e .`"
    assert connection.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def test_stale_names_modules_whose_source_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    (tmp_path / "wire").mkdir()
    (tmp_path / "socket" / "tcp").mkdir(parents=True)
    for name in ("socket/tcp/connection", "wire/ip"):
        (tmp_path / f"{name}.py").write_text("")
        (tmp_path / f"{name}{suffix}").write_bytes(b"")
        os.utime(tmp_path / f"{name}{suffix}", (2000, 2000))
    os.utime(tmp_path / "socket/tcp/connection.py", (1000, 1000))  # built after its source
    os.utime(tmp_path / "wire/ip.py", (3000, 3000))  # edited after the build: stale
    (tmp_path / "wire/udp.py").write_text("")  # never compiled: neither
    monkeypatch.setattr(native, "_HERE", tmp_path)
    assert native.compiled() == ["wire.ip", "socket.tcp.connection"]
    assert native.stale() == ["wire.ip"]


def test_compiled_core_sends_the_same_packets_as_the_sources(tmp_path: Path) -> None:
    """Byte for byte, both directions, v4 and v6, under loss, duplication and reordering."""
    if not native.compiled():
        pytest.skip("the netstack core is not compiled here: nothing to compare")
    for py in [*(ROOT / "smolmix_cli").rglob("*.py"), *(ROOT / "tests").glob("*.py")]:
        dest = tmp_path / py.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(py, dest)
    (tmp_path / "tests" / "netstack").mkdir()
    for name in ("__init__.py", "relay.py", "engine_trace.py"):
        shutil.copy(ROOT / "tests" / "netstack" / name, tmp_path / "tests" / "netstack" / name)
    script = (
        "import json, sys\n"
        "import smolmix_cli.netstack.iface.stack as stack\n"
        "import smolmix_cli.netstack.socket.tcp.connection as tcp\n"
        "assert tcp.__file__.endswith('.py') and stack.__file__.endswith('.py'), tcp.__file__\n"
        "from tests.netstack.engine_trace import trace\n"
        "json.dump(trace(), sys.stdout)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PYTHONSAFEPATH", None)
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    interpreted = json.loads(run.stdout)
    compiled = json.loads(json.dumps(trace()))
    assert compiled == interpreted
    assert compiled["v4"]["retransmits"] > 0 and compiled["v6"]["retransmits"] > 0


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_entry_points_take_any_bytes_like_object(kind: type) -> None:
    """Compiled, an argument annotated `bytes` refuses a bytearray (dnslib packs into one)."""
    a, b = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
    sa, sb = NetStack([a]), NetStack([b])
    link = SimLink(sa, sb, Impairment(), Impairment())
    rx = sb.udp_bind(53)
    tx = sa.udp_bind()
    sa.udp_sendto(tx, kind(b"query"), (b, 53))
    sa.icmp_echo(b, 7, 1, kind(b"ping"))
    link.run(lambda now: bool(sa.echo_replies), 1.0)
    dgram = rx.recv()
    assert dgram is not None and dgram.data == b"query"
    assert sa.echo_replies[0][3] == b"ping"
    packet = sa.poll_transmit(0.0) or [encode_ip(a.packed, b.packed, 17, b"\0" * 8)]
    assert decode_ip(kind(packet[0])).dst == b.packed
    client, server = link.open_tcp(b, 80, 1.0)
    assert client.send(kind(b"hello"), link.now) == 5
    got = bytearray()

    def app(now: float) -> bool:
        got.extend(server.recv(100, now))
        return got == b"hello"

    link.run(app, 1.0)
    sb.receive_packet(kind(b"\x45garbage"), link.now)  # counted, never raised
    assert sb.counters["internal_error"] == 0
