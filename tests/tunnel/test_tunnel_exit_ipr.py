"""The tunnel against the local network's own exits (testnet/exit/ipr.py): discovery without a
pin, the network's resolver, the demo origin by name, the exit policy, ICMP, failover."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio
import pytest

from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.tunnel.errors import ExitPolicyDenied
from smolmix_cli.tunnel.options import for_local_network
from smolmix_cli.tunnel.tunnel import Tunnel, TunnelState


async def http_get(tunnel: Tunnel, host: str, path: str) -> bytes:
    stream = await tunnel.open_tcp(host, 80)
    await stream.send(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    reply = bytearray()
    try:
        while True:
            reply += await stream.receive()
    except anyio.EndOfStream:
        pass
    return bytes(reply)


def test_discovered_exit_carries_dns_http_icmp_and_enforces_policy(tmp_path: Path) -> None:
    async def main() -> None:
        local = LocalNetwork(LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, exits=2))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            assert network.demo is not None
            with anyio.fail_after(90):
                options = for_local_network(data_dir=tmp_path / "data")
                async with Tunnel.open(network, options) as tunnel:
                    await tunnel.wait_ready()
                    assert tunnel.exit is not None
                    assert tunnel.exit.key in {e.ipr_address for e in network.exits}
                    zone = network.demo.zone
                    assert await tunnel.resolve(zone) == [network.demo.ipv4]
                    reply = await http_get(tunnel, zone, "/bytes/20000")
                    head, _, body = reply.partition(b"\r\n\r\n")
                    assert head.startswith(b"HTTP/1.1 200")
                    assert len(body) == 20000
                    assert await tunnel.ping(network.demo.ipv4, timeout=10) > 0
                    with pytest.raises(ExitPolicyDenied):
                        await tunnel.open_tcp("192.168.1.1", 80)
                    first = tunnel.exit.key
                # the remembered exit is used again by the next tunnel
                async with Tunnel.open(network, options) as again:
                    await again.wait_ready()
                    assert again.exit is not None and again.exit.key == first
                    digest = hashlib.sha256(await http_get(again, zone, "/")).hexdigest()
                    assert digest
            assert again.state is TunnelState.SHUT_DOWN
            tg.cancel_scope.cancel()

    anyio.run(main)
