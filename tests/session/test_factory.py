"""The factory's attach paths against a daemon with a stand-in tunnel (no network)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from smolmix_cli.config import Network
from smolmix_cli.options import GlobalOptions, session_args, tunnel_args
from smolmix_cli.session.factory import OptionError, _attach, open_tunnel
from smolmix_cli.session.paths import SessionPaths
from smolmix_cli.session.remote import RemoteTunnel
from tests.session.stand_in import Source, echo_tcp_server, running_daemon, short_runtime_dir

pytestmark = pytest.mark.anyio
NETWORK = Network(name="testnet", api_urls=(), ca_pem="-----BEGIN CERTIFICATE-----\nx\n")


@pytest.fixture
def paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionPaths]:
    base = short_runtime_dir()
    monkeypatch.setenv("SMOLMIX_RUNTIME_DIR", str(base / "rt"))
    yield SessionPaths.for_network("testnet")
    for child in (base / "rt").iterdir():
        child.unlink()
    (base / "rt").rmdir()
    base.rmdir()


def test_tunnel_args_name_every_shaping_option() -> None:
    options = GlobalOptions(
        network="testnet",
        ipr="ipr-address",
        cover=False,
        poisson=False,
        mix_delay_ms=0.0,
        dns_servers=("9.9.9.9",),
        mtu=1400,
    )
    assert tunnel_args(options) == [
        "--ipr",
        "ipr-address",
        "--no-cover",
        "--no-poisson",
        "--mix-delay-ms",
        "0.0",
        "--dns-server",
        "9.9.9.9",
        "--mtu",
        "1400",
    ]
    assert session_args(options)[:2] == ["--network", "testnet"]
    assert session_args(options)[-1] == "--no-session"
    # the words parse back into the same options (the spawned session gets the same tunnel)
    from click.testing import CliRunner

    from smolmix_cli.cli.main import cli
    from smolmix_cli.cli.options import global_options

    seen: list[GlobalOptions] = []

    @cli.command(name="probe-session-args")
    def probe() -> None:
        import click

        seen.append(global_options(click.get_current_context()))

    try:
        result = CliRunner().invoke(cli, [*session_args(options), "probe-session-args"])
    finally:
        del cli.commands["probe-session-args"]
        cli._help_option = None  # click caches "-h, --help" once invoked; the man page generator
        # reads the uncached one, so leave the group as an un-invoked import finds it
    assert result.exit_code == 0, result.output
    assert tunnel_args(seen[0]) == tunnel_args(options) and seen[0].session == "off"


async def test_auto_attaches_only_to_a_session_with_the_same_tunnel_options(
    paths: SessionPaths,
) -> None:
    plain = GlobalOptions(network="testnet")
    pinned = GlobalOptions(network="testnet", ipr="some-other-exit")
    async with running_daemon(paths, Source({}), tunnel_args=()):
        assert isinstance(await _attach(plain, NETWORK, start=False), RemoteTunnel)
        assert await _attach(pinned, NETWORK, start=False) is None  # boots in-process instead
        with pytest.raises(OptionError, match="other tunnel options"):
            await _attach(pinned, NETWORK, start=True)


async def test_attaching_waits_for_a_booting_session_and_asks_a_ready_one_once(
    paths: SessionPaths,
) -> None:
    options = GlobalOptions(network="testnet")
    async with running_daemon(paths, Source({}, delay=0.5), tunnel_args=()) as daemon:
        remote = await _attach(options, NETWORK, start=False)
        assert isinstance(remote, RemoteTunnel)
        assert remote.last_status["state"] == "ready"  # it waited for the boot
        assert daemon.counters.requests == 2  # status, then a status that waits
        assert isinstance(await _attach(options, NETWORK, start=False), RemoteTunnel)
        assert daemon.counters.requests == 3  # ready: one status, no second


async def test_open_tunnel_attached_session_is_reused_and_trusts_the_network_ca(
    paths: SessionPaths,
) -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(echo_tcp_server)
        async with (
            running_daemon(paths, Source({"echo.test": "127.0.0.1"})),
            open_tunnel(GlobalOptions(network="testnet"), network=NETWORK) as session,
        ):
            assert session.reused and session.boot_seconds == 0.0
            assert session.tunnel.snapshot().exit == "stand-in-exit"
            cafile = session.cafile(None)
            assert cafile is not None and Path(cafile).read_text().startswith("-----BEGIN")
            stream = await session.tunnel.open_tcp("echo.test", port)
            await stream.send(b"ping")
            assert await stream.receive() == b"ping"
            await stream.aclose()
        tg.cancel_scope.cancel()


async def test_auto_removes_a_stale_socket_and_boots_in_process(paths: SessionPaths) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(paths.socket))
    dead.close()
    assert await _attach(GlobalOptions(network="testnet"), NETWORK, start=False) is None
    assert not paths.socket.exists()
