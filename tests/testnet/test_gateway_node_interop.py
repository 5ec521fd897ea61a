"""The project's reconnecting GatewayClient against a GatewayNode, across a gateway restart."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.gateway.client import GatewayClient
from smolmix_cli.mixnet.packet.size import PacketSize
from smolmix_cli.mixnet.topology.topology import NodeRole
from smolmix_cli.testnet.nodes.gateway import GatewayNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from tests.testnet.nodes_util import frame_bytes, make_packet, send_raw

pytestmark = pytest.mark.anyio


async def test_client_reauthenticates_after_the_gateway_restarts(tmp_path: Path) -> None:
    state = tmp_path / "registry.json"
    spec = NodeSpec.generate(40, NodeRole.ENTRY_GATEWAY)
    identity = Ed25519PrivateKey.generate()
    me = identity.public_key().public_bytes_raw()
    pushes: list[bytes] = []
    arrived = anyio.Event()

    def on_push(message: bytes) -> None:
        pushes.append(message)
        arrived.set()

    async def deliver(text: bytes) -> None:
        packet = make_packet([spec.route_hop], text, size=PacketSize.ACK, destination=me)
        await send_raw(spec.mix_port, frame_bytes(packet))

    async with anyio.create_task_group() as outer:
        first = GatewayNode(spec, state_path=state)
        spec = await outer.start(first.serve)
        url = spec.ws_url() or ""
        async with GatewayClient.connect(
            url,
            identity,
            spec.identity.public_bytes,
            on_push=on_push,
            reconnect_initial_delay=0.05,
            reconnect_max_delay=0.2,
        ) as client:
            await deliver(b"before restart")
            with anyio.fail_after(5):
                await arrived.wait()
            first.stop()
            with anyio.fail_after(5):
                while client.connected:
                    await anyio.sleep(0.01)
            second = GatewayNode(spec, state_path=state)
            await outer.start(second.serve)
            with anyio.fail_after(10):
                while not client.connected:
                    await anyio.sleep(0.02)
            await deliver(b"after restart")
            with anyio.fail_after(5):
                while len(pushes) < 2:
                    await anyio.sleep(0.01)
        outer.cancel_scope.cancel()
    assert pushes == [b"before restart", b"after restart"]
    assert first.counters["clients_registered"] == 1
    assert second.counters["clients_authenticated"] == 1
    assert second.counters["clients_registered"] == 0
