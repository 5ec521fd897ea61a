"""The tunnel end to end on a local network with the test exit: ready gate, TCP, UDP, ICMP."""

from __future__ import annotations

from pathlib import Path

import anyio

from smolmix_cli.apps.connector import Connector
from smolmix_cli.tunnel.tunnel import Tunnel, TunnelState
from tests.tunnel.conftest import harness
from tests.tunnel.exit_fixture import ECHO_HOST, SERVICE_HOST
from tests.tunnel.service_checks import download, echo_round


def test_ready_then_tcp_echo_udp_echo_and_icmp(tmp_path: Path) -> None:
    async def main() -> None:
        with anyio.fail_after(60):
            async with harness(tmp_path) as h, Tunnel.open(h.network, h.options()) as tunnel:
                assert tunnel.state is TunnelState.CONNECTING
                await tunnel.wait_ready()
                assert tunnel.state is TunnelState.READY
                assert isinstance(tunnel, Connector)
                assert tunnel.session is not None
                assert str(tunnel.session.ipv4).startswith("10.0.")
                await echo_round(tunnel, b"hello tunnel")
                reply = await tunnel.udp_exchange(str(SERVICE_HOST), 5000, b"ping-udp", 10)
                assert reply == b"ping-udp"
                rtt = await tunnel.ping(str(ECHO_HOST), timeout=10)
                assert rtt > 0
            assert tunnel.state is TunnelState.SHUT_DOWN

    anyio.run(main)


def test_one_mib_download_is_byte_exact(tmp_path: Path) -> None:
    size = 1 << 20

    async def main() -> None:
        with anyio.fail_after(90):
            async with harness(tmp_path) as h, Tunnel.open(h.network, h.options()) as tunnel:
                await download(tunnel, size)

    anyio.run(main)
