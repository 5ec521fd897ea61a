"""The local network's gateways also speak wss, with a certificate from the network's CA."""

from __future__ import annotations

import ssl
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import pytest

from smolmix_cli.bootstrap import fetch_topology
from smolmix_cli.mixnet.client.client import ClientConfig, MixnetClient
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions


def test_client_registers_and_loops_a_message_over_wss(tmp_path: Path) -> None:
    async def main() -> None:
        local = LocalNetwork(LocalNetworkOptions(tmp_path, mean_delay_ms=0.0, demo_origin=False))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            with anyio.fail_after(60):
                assert network.entry_gateway is not None
                spec = local.specs[network.entry_gateway.node_id]
                assert spec.wss_port is not None and spec.wss_port != spec.ws_port
                url = f"wss://127.0.0.1:{spec.wss_port}"
                topology = await fetch_topology(network, 10)
                # the directory announces the wss port (no hostname, so ws stays the default)
                entry = topology.nodes[spec.node_id].entry
                assert entry is not None and entry.wss_port == spec.wss_port
                gateway = decode_key_base58(network.entry_gateway.identity, "gateway")

                def start(ssl_context: ssl.SSLContext) -> AbstractAsyncContextManager[MixnetClient]:
                    return MixnetClient.start(
                        topology,
                        gateway=gateway,
                        ssl_context=ssl_context,
                        gateway_url=url,
                        config=ClientConfig.fast(),
                    )

                async with start(network.ssl_context()) as client:
                    await client.send(client.address, b"over wss")
                    assert (await client.receive(timeout=20)).data == b"over wss"
                # without the network's CA the gateway's certificate is refused
                with pytest.raises(MixnetError):
                    async with start(ssl.create_default_context()):
                        pass
            tg.cancel_scope.cancel()

    anyio.run(main)
