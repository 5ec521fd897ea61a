"""The Python API against a local network: each part once, async and blocking, and its
errors against the CLI's exit codes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio
import dnslib
import pytest

from smolmix_cli import api
from smolmix_cli.api.errors import _BY_CODE, error_for
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.session.paths import SessionPaths
from smolmix_cli.session.remote import RemoteTunnel
from tests.api.conftest import LocalNet
from tests.error_samples import SAMPLES, Sample

DEMO = "demo.smolmix.test"
DEMO_IPV4 = "198.18.0.1"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.id)
def test_errors_carry_the_cli_exit_code_and_line(sample: Sample) -> None:
    if sample.code is ExitCode.INTERRUPTED:
        pytest.skip("KeyboardInterrupt is never turned into an API error")
    error = error_for(sample.make())
    assert (error.code, str(error)) == (sample.code, sample.line)
    assert type(error) is _BY_CODE.get(sample.code, api.Error)


def test_options_as_the_cli_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from smolmix_cli.api.tunnel import global_options

    monkeypatch.setenv("SMOLMIX_NETWORK", "testnet")
    monkeypatch.setenv("SMOLMIX_NO_SESSION", "1")
    chosen = global_options(None, None, 5.0, api.GlobalOptions(mtu=1400))
    assert (chosen.network, chosen.session, chosen.boot_timeout, chosen.mtu) == (
        "testnet",
        "off",
        5.0,
        1400,
    )
    assert global_options("mainnet", "start", 90.0, None).session == "start"
    with pytest.raises(api.UsageError) as caught:
        global_options(None, "sometimes", 90.0, None)  # type: ignore[arg-type]
    assert caught.value.code == ExitCode.USAGE


def test_a_network_that_is_not_there_fails_as_the_cli(tmp_path: Path) -> None:
    async def main() -> None:
        async with api.connect(tmp_path / "network.json", session="off"):
            pass

    with pytest.raises(api.NetworkError) as caught:
        anyio.run(main)
    assert caught.value.code == ExitCode.TESTNET_UNAVAILABLE


@pytest.mark.anyio
async def test_fetch_streams_follows_and_fails_as_the_cli(net: LocalNet) -> None:
    phases: list[str] = []
    async with api.connect(net.file, session="off", on_phase=phases.append) as tunnel:
        assert not tunnel.attached and any("tunnel ready" in p for p in phases)
        progress: list[tuple[int, int | None]] = []

        def seen(received: int, total: int | None) -> None:
            progress.append((received, total))

        response = await tunnel.fetch(f"https://{DEMO}/bytes/20000", on_progress=seen)
        assert response.status == 200 and response.http_version == "1.1"
        body = await response.read()
        assert hashlib.sha256(body).hexdigest() == response.header("X-Sha256")
        assert progress[-1] == (20000, 20000)

        async with await tunnel.fetch(
            f"{net.loopback()}/redirect/2", follow_redirects=True, headers={"X-Api": "1"}
        ) as hops:
            assert hops.status == 200 and hops.url == f"{net.loopback()}/echo"
            assert b'["x-api", "1"]' in await hops.read()

        big = await tunnel.fetch(f"{net.loopback()}/bytes/{10 << 20}")
        assert await big.receive_piece()
        await big.aclose()  # stops the transfer; the tunnel goes on

        failures: list[tuple[str, float | None, type[api.Error], ExitCode]] = [
            ("http://nope.smolmix.test/", None, api.ResolveError, ExitCode.RESOLVE_FAILED),
            ("http://127.0.0.1:1/", None, api.ConnectError, ExitCode.CONNECT_FAILED),
            ("http://[bad/", None, api.UsageError, ExitCode.MALFORMED_URL),
            (f"{net.loopback()}/slow/20", 0.5, api.Timeout, ExitCode.TIMEOUT),
        ]
        for url, timeout, kind, code in failures:
            with pytest.raises(kind) as caught:
                await tunnel.fetch(url, timeout=timeout)
            assert caught.value.code == code, url
        partial = await tunnel.fetch(f"{net.loopback()}/partial/1000")
        with pytest.raises(api.HttpError) as cut:
            await partial.read()
        assert cut.value.code == ExitCode.PARTIAL_FILE


@pytest.mark.anyio
async def test_websocket_resolve_tcp_udp(net: LocalNet) -> None:
    async with api.connect(net.file, session="off") as tunnel:
        async with await tunnel.websocket(f"wss://{DEMO}:8443/", subprotocols=["echo"]) as ws:
            assert ws.subprotocol == "echo"
            await ws.send("text")
            assert await ws.receive() == "text"
            await ws.send(b"\x00\x01")
            assert await ws.receive() == b"\x00\x01"
            await ws.send("close:4001:bye")
            with pytest.raises(api.WebSocketClosed) as closed:
                await ws.receive()
            assert (closed.value.close_code, closed.value.reason) == (4001, "bye")

        assert [r.data for r in await tunnel.resolve(DEMO)] == [DEMO_IPV4]
        (mx,) = await tunnel.resolve(DEMO, "MX", tcp=True)
        assert (mx.type, mx.data) == ("MX", f"10 mail.{DEMO}.")
        assert await tunnel.resolve(f"nope.{DEMO}") == []  # NXDOMAIN: no records, no error
        assert DEMO_IPV4 in await tunnel.addresses(DEMO)

        stream = await tunnel.open_tcp(DEMO, 443, tls=True)
        await stream.send(
            f"GET /echo HTTP/1.1\r\nHost: {DEMO}\r\nConnection: close\r\n\r\n".encode()
        )
        reply = b""
        with pytest.raises(anyio.EndOfStream):
            while True:
                reply += await stream.receive()
        assert reply.startswith(b"HTTP/1.1 200 ")
        await stream.aclose()

        question = dnslib.DNSRecord.question(DEMO, "A")
        answer = dnslib.DNSRecord.parse(
            await tunnel.udp_exchange(DEMO_IPV4, 53, question.pack(), timeout=10)
        )
        assert answer.header.id == question.header.id and str(answer.rr[0].rdata) == DEMO_IPV4

    with pytest.raises(ZeroDivisionError):  # the caller's own failure: as raised, not wrapped
        async with api.connect(net.file, session="off"):
            _ = 1 / 0


def test_the_blocking_tunnel(net: LocalNet) -> None:
    with api.connect_sync(net.file, session="off") as tunnel:
        with tunnel.fetch(f"{net.loopback()}/bytes/30000") as response:
            body = b"".join(response.iter_bytes())
        assert hashlib.sha256(body).hexdigest() == response.header("x-sha256")
        with tunnel.websocket(f"ws://{DEMO}:8080/") as ws:
            ws.send("hello")
            assert ws.receive() == "hello"
        assert tunnel.resolve(DEMO, "A")[0].data == DEMO_IPV4
        with tunnel.open_tcp(DEMO, 80) as stream:
            stream.send(f"HEAD / HTTP/1.1\r\nHost: {DEMO}\r\n\r\n".encode())
            assert stream.receive().startswith(b"HTTP/1.1 200 ")
        with pytest.raises(api.ResolveError):
            tunnel.fetch("http://nope.smolmix.test/")


def stop_session(network: Path) -> None:
    async def stop() -> None:
        await RemoteTunnel(SessionPaths.for_network(str(network)).socket).stop()

    anyio.run(stop)


@pytest.mark.anyio
async def test_attached_to_the_background_session(net: LocalNet) -> None:
    """`session="start"` starts the network's background session as `--session start` does;
    later tunnels attach to it (`"auto"`, the default) and boot nothing."""
    try:
        async with api.connect(net.file, session="start") as started:
            assert started.attached
            assert (await (await started.fetch(f"https://{DEMO}/")).read()).startswith(b"<!")
        async with api.connect(net.file) as tunnel:
            assert tunnel.attached and tunnel.boot_seconds == 0.0
            assert [r.data for r in await tunnel.resolve(DEMO)] == [DEMO_IPV4]
            with pytest.raises(api.ResolveError) as caught:  # rebuilt from the daemon's frame
                await tunnel.fetch("http://nope.smolmix.test/")
            assert caught.value.code == ExitCode.RESOLVE_FAILED
    finally:
        await anyio.to_thread.run_sync(stop_session, net.file)
