"""Garbage, truncated frames, wrong keys and replays at every listening port of a local network.

Each node must reject the input (close, count a drop) and keep serving: afterwards the
directory still answers, both gateways still register clients, and a fresh packet still
crosses all three mix layers to the exit gateway.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.abc
import pytest

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.directory.nym_api import NymApiClient
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from smolmix_cli.mixnet.keys import Ed25519KeyPair, X25519KeyPair
from smolmix_cli.mixnet.message.preparer import MessagePreparer
from smolmix_cli.mixnet.packet.sphinx import RouteHop
from smolmix_cli.mixnet.topology.topology import Topology
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.websocket import WebSocketError, connect_websocket
from tests.testnet.gw_client import ClientFailed, GwClient
from tests.testnet.nodes_util import frame_bytes, make_packet, send_raw

GARBAGE = bytes(range(256)) * 16  # not a frame header, not HTTP, not TLS


async def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.02)


def _valid_packet(topology: Topology, gateway: bytes) -> bytes:
    """A real loop-cover packet (final payload well formed) to a client of `gateway`, framed."""
    me = Recipient(
        Ed25519KeyPair.generate().public_bytes, X25519KeyPair.generate().public_bytes, gateway
    )
    preparer = MessagePreparer(me, bytes(16), average_packet_delay_ns=0, average_ack_delay_ns=0)
    mix_packet = preparer.cover_packet(topology).mix_packet
    return frame_bytes(mix_packet.packet, rotation=mix_packet.key_rotation)


async def _closes(port: int, data: bytes) -> bool:
    return await send_raw(port, data, wait_close=True)


async def _tls_closes(port: int, data: bytes) -> bool:
    """Raw bytes to a TLS port; True once the server hung up."""
    return await send_raw(port, data, wait_close=True)


def test_every_port_rejects_hostile_input_and_keeps_serving(tmp_path: Path) -> None:
    async def main() -> None:
        local = LocalNetwork(LocalNetworkOptions(tmp_path, mean_delay_ms=0.0, mix_nodes=3))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            with anyio.fail_after(60):
                await scenario(local, network)
            tg.cancel_scope.cancel()

    async def scenario(local: LocalNetwork, network: object) -> None:
        specs = local.specs
        exit_spec = specs[2]
        route = [
            specs[201].route_hop,
            specs[202].route_hop,
            specs[203].route_hop,
            exit_spec.route_hop,
        ]
        nodes = {**local.mixnodes, **local.gateways}

        # 1. mix ports (3 mix nodes + both gateways): garbage, truncated frame, wrong keys
        for node_id, node in nodes.items():
            port = specs[node_id].mix_port
            before = dict(node.counters)
            assert await _closes(port, GARBAGE), node_id
            good = frame_bytes(make_packet([specs[node_id].route_hop]))
            await send_raw(port, good[: len(good) // 2])  # then EOF mid-frame
            stranger = RouteHop(
                specs[node_id].route_hop.address, X25519KeyPair.generate().public_bytes
            )
            await send_raw(port, frame_bytes(make_packet([stranger, *route[1:]])))
            await _eventually(
                lambda n=node, b=before: (
                    n.counters["dropped_malformed"] > b["dropped_malformed"]
                    and n.counters["dropped_truncated"] > b["dropped_truncated"]
                    and n.counters["dropped_bad_mac"] > b["dropped_bad_mac"]
                )
            )

        # 2. a replayed packet: forwarded once, dropped the second time at layer 1
        net = local.network
        assert net is not None
        api = NymApiClient(net.api_urls, ssl_context=net.ssl_context(), timeout=5)
        topology = await api.topology()
        l1, exit_gw = local.mixnodes[201], local.gateways[2]
        finals = exit_gw.counters["final_hop"]
        packet = _valid_packet(topology, exit_spec.identity.public_bytes)
        await send_raw(specs[201].mix_port, packet)
        # the packet and then its SURB-ACK (addressed to the same gateway) reach the final hop
        await _eventually(lambda: exit_gw.counters["final_hop"] >= finals + 2)
        await anyio.sleep(0.2)
        after_first = exit_gw.counters["final_hop"]
        assert after_first == finals + 2
        await send_raw(specs[201].mix_port, packet)
        await _eventually(lambda: l1.counters["dropped_replay"] >= 1)
        await anyio.sleep(0.2)
        assert exit_gw.counters["final_hop"] == after_first

        # 3. WebSocket ports: garbage, plain HTTP without upgrade, nonsense after upgrade
        for node_id in (1, 2):
            ws_port = specs[node_id].ws_port
            assert ws_port is not None
            assert await _closes(ws_port, GARBAGE)
            assert await _closes(ws_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            ws = await connect_websocket(f"ws://127.0.0.1:{ws_port}/", timeout=5)
            try:
                await ws.send_text('{"type":"no such request"}')
                await ws.send_binary(GARBAGE)
                with anyio.fail_after(5):
                    try:
                        while True:
                            await ws.receive()
                    except WebSocketError:
                        pass  # the gateway closed on us
            finally:
                await ws.aclose(timeout=1)

        # 3b. wrong keys at the WebSocket: authenticateV2 with a key the gateway never issued
        for node_id in (1, 2):
            impostor = GwClient(
                specs[node_id].identity.public_bytes, shared_key=SharedKey(os.urandom(32))
            )
            with pytest.raises((ClientFailed, WebSocketError)):
                async with impostor.connect(f"ws://127.0.0.1:{specs[node_id].ws_port}/"):
                    pass
            # and a client that expects another gateway's identity is refused by the signature check
            wrong = GwClient(specs[3 - node_id].identity.public_bytes)
            with pytest.raises((ClientFailed, WebSocketError)):
                async with wrong.connect(f"ws://127.0.0.1:{specs[node_id].ws_port}/"):
                    pass

        # 4. the directory's TLS port: garbage, plain HTTP, a truncated TLS record
        directory = local.directory
        assert directory is not None
        assert await _tls_closes(directory.port, GARBAGE)
        assert await _tls_closes(directory.port, b"GET /api/ HTTP/1.1\r\nHost: x\r\n\r\n")
        # a truncated ClientHello: the server waits for the rest; we hang up instead
        await send_raw(directory.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        assert directory.counters["bad_requests"] >= 2

        # 5. still serving: topology, registrations at both gateways, a fresh packet end to end
        assert (await api.topology()).is_usable
        for node_id in (1, 2):
            client = GwClient(specs[node_id].identity.public_bytes)
            async with client.connect(f"ws://127.0.0.1:{specs[node_id].ws_port}/") as live:
                assert live.failure is None
            assert client.shared_key is not None
        finals = exit_gw.counters["final_hop"]
        await send_raw(
            specs[201].mix_port, _valid_packet(topology, exit_spec.identity.public_bytes)
        )
        await _eventually(lambda: exit_gw.counters["final_hop"] >= finals + 2)

    anyio.run(main)
