"""Sans-io parts of the tunnel: exit memory, option checks,
server parsing, exit-policy notices, and bundled uplink packets reaching the exit's router."""

from __future__ import annotations

import random
from dataclasses import asdict, fields
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smolmix_cli.config import MAINNET
from smolmix_cli.ipr.client_logic import ClientConfig as IprClientConfig
from smolmix_cli.ipr.client_logic import IprClient, SendToIpr
from smolmix_cli.ipr.router_logic import IprRouter, ReplyToClient
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.netstack.wire.ip import encode_ip
from smolmix_cli.tunnel.exits import EXIT_FILE, ExitCandidate, ExitMemory
from smolmix_cli.tunnel.ipr_link import parse_socket_text
from smolmix_cli.tunnel.options import TunnelOptions, for_local_network
from smolmix_cli.tunnel.tunnel import dns_servers_for, parse_server


def _key() -> bytes:
    return Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _recipient() -> Recipient:
    return Recipient(_key(), bytes(range(32)), _key())


def test_exit_memory_round_trip_and_garbage(tmp_path: Path) -> None:
    memory = ExitMemory(tmp_path)
    assert memory.load() is None
    candidate = ExitCandidate(_recipient(), "1.31.0")
    memory.save(candidate)
    assert ExitMemory(tmp_path).load() == candidate.key
    assert (tmp_path / EXIT_FILE).stat().st_mode & 0o777 == 0o600
    (tmp_path / EXIT_FILE).write_text('{"ipr": "nonsense"}')
    assert ExitMemory(tmp_path).load() is None
    in_memory = ExitMemory(None)
    in_memory.save(candidate)
    assert in_memory.load() == candidate.key


def test_options_are_checked() -> None:
    for bad in (
        {"tcp_buffer_size": 70000},
        {"mtu": 100},
        {"open_reply_surbs": -1},
        {"exit_attempts": 0},
        {"exit_attempt_timeout": 0.0},
        {"tcp_recv_window": 0},
        {"tcp_recv_window": (1 << 24) + 1},
    ):
        with pytest.raises(ValueError):
            TunnelOptions(**bad)  # type: ignore[arg-type]
    config = TunnelOptions(tcp_buffer_size=4096, tcp_keepalive=None).tcp_config()
    assert config.recv_buffer == 4096 and config.keepalive_idle is None
    # The scaled window applies at the seed's u16 buffer (the default); a lowered
    # buffer still sets the window, and None keeps the seed's.
    assert TunnelOptions().tcp_config().recv_buffer == 256 * 1024
    assert TunnelOptions(tcp_recv_window=None).tcp_config().recv_buffer == 0xFFFF
    assert TunnelOptions().tcp_config().send_buffer == 0xFFFF
    # The local network's zero-delay mixes keep the seed's window; shaped runs scale it.
    assert for_local_network().tcp_config().recv_buffer == 0xFFFF
    assert for_local_network(mean_delay_ms=50).tcp_config().recv_buffer == 256 * 1024


def test_options_extend_the_ipr_clients_config_and_keep_its_defaults() -> None:
    options = TunnelOptions()
    assert isinstance(options, IprClientConfig)
    ipr_fields = [f.name for f in fields(IprClientConfig)]
    assert {n: getattr(options, n) for n in ipr_fields} == asdict(IprClientConfig())
    pinned = ("connect_timeout", "open_reply_surbs", "data_reply_surbs", "ping_timeout")
    assert [getattr(options, n) for n in pinned] == [60.0, 10, 3, 30.0]
    assert (options.idle_timeout, options.keepalive_after) == (60.0, 45.0)
    local = for_local_network()
    assert (local.connect_timeout, local.cover, local.poisson, local.tcp_rto_min) == (
        20.0,
        False,
        False,
        0.2,
    )


def test_dns_servers_and_socket_text() -> None:
    assert parse_server("9.9.9.9") == ("9.9.9.9", 53)
    assert parse_server("[2620:fe::fe]:5353") == ("2620:fe::fe", 5353)
    with pytest.raises(ValueError):
        parse_server("dns.example:53")  # never a name: nothing may resolve it
    assert dns_servers_for(MAINNET, TunnelOptions()) == [("8.8.8.8", 53), ("1.1.1.1", 53)]
    assert parse_socket_text("198.51.100.7:443") == (IPv4Address("198.51.100.7"), 443)
    assert parse_socket_text("[2001:db8::1]:53") == (IPv6Address("2001:db8::1"), 53)
    assert parse_socket_text("nonsense") is None


def test_bundled_uplink_packets_all_reach_the_exit() -> None:
    client, router = IprClient(random.Random(3)), IprRouter(random.Random(4))
    tag = b"t" * 16
    client.connect(0.0, datetime(2026, 11, 24, tzinfo=UTC))
    for transmit in client.pop_transmits():
        assert isinstance(transmit, SendToIpr)
        router.on_message(tag, transmit.payload, transmit.reply_surbs + 10, 0.0)
    for reply in router.pop_transmits():
        if isinstance(reply, ReplyToClient):
            client.on_reply(reply.payload, 0.1)
    assert client.ipv4 is not None
    src, dst = client.ipv4.packed, IPv4Address("192.0.2.1").packed
    packets = [encode_ip(src, dst, 17, bytes(8) + bytes([i]) * i) for i in range(1, 6)]
    client.pop_events()
    client.send_packets(packets, 1.0)
    (message,) = client.pop_transmits()
    assert isinstance(message, SendToIpr)
    router.on_message(tag, message.payload, message.reply_surbs, 1.0)
    assert router.pop_uplink() == packets


def test_an_unreachable_directory_fails_the_tunnel_with_a_reason() -> None:
    import anyio

    from smolmix_cli.config import Network
    from smolmix_cli.mixnet.directory.api_urls import ApiUrl, DirectoryUnavailable
    from smolmix_cli.tunnel.options import for_local_network
    from smolmix_cli.tunnel.tunnel import Tunnel, TunnelState

    network = Network(name="nowhere", api_urls=(ApiUrl("http://127.0.0.1:9/api/"),))

    async def main() -> None:
        with anyio.fail_after(30):
            async with Tunnel.open(network, for_local_network()) as tunnel:
                with pytest.raises(DirectoryUnavailable):
                    await tunnel.wait_ready()
                assert tunnel.state is TunnelState.FAILED
                assert tunnel.reason.startswith("Nym directory unavailable: ")  # words, no class
                with pytest.raises(DirectoryUnavailable):
                    await tunnel.open_tcp("192.0.2.1", 80)
            assert tunnel.state is TunnelState.FAILED  # failed stays failed

    anyio.run(main)
