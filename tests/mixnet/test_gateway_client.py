"""GatewayClient against a loopback gateway that runs GatewayConnection (real sockets)."""

from __future__ import annotations

import contextlib
import os
from contextlib import AbstractAsyncContextManager

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.gateway.client import GatewayClient, GatewayUnavailable
from smolmix_cli.mixnet.gateway.frames import RequestKind
from smolmix_cli.mixnet.gateway.gateway_connection import FREE_TESTNET_BANDWIDTH
from smolmix_cli.mixnet.gateway.handshake import ed25519_public_bytes
from smolmix_cli.mixnet.gateway.session_events import ForwardPacket
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.mixnet.packet.size import PacketSize, PacketType, SphinxKeyRotation
from smolmix_cli.websocket import WebSocketClosed, WebSocketConnection
from tests.mixnet.gateway_server import LoopbackGateway, run_gateway
from tests.mixnet.wsutil import ws_server
from tests.self_signed import self_signed_tls

pytestmark = pytest.mark.anyio_backends("asyncio", "trio")


def _packet(i: int) -> MixPacket:
    body = i.to_bytes(4, "big") + os.urandom(PacketSize.REGULAR.size - 4)
    return MixPacket(
        NodeAddress.from_host_port("127.0.0.1", 1789), body, PacketType.MIX, SphinxKeyRotation.ODD
    )


async def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


class Harness:
    def __init__(self, tls: bool = False) -> None:
        self.forwarded: list[ForwardPacket] = []
        self.gateway = LoopbackGateway(
            Ed25519PrivateKey.generate(),
            self.forwarded.append,
            ssl_context=self_signed_tls().server if tls else None,
        )
        self.identity = Ed25519PrivateKey.generate()
        self.client_id = ed25519_public_bytes(self.identity)
        self.pushes: list[bytes] = []
        self.keys: list[SharedKey | None] = []

    def options(self, **extra: object) -> dict[str, object]:
        base: dict[str, object] = {
            "on_push": self.pushes.append,
            "on_shared_key": self.keys.append,
            "connect_timeout": 5.0,
            "reconnect_initial_delay": 0.05,
            "reconnect_max_delay": 0.2,
            "keepalive_interval": None,
        }
        base.update(extra)
        return base

    def connect(
        self, gw: LoopbackGateway, **extra: object
    ) -> AbstractAsyncContextManager[GatewayClient]:
        """The client under test against `gw`, trusting the gateway's real identity."""
        gw_id = ed25519_public_bytes(gw.identity)
        return GatewayClient.connect(gw.url, self.identity, gw_id, **self.options(**extra))


@pytest.mark.anyio
@pytest.mark.parametrize("tls", [False, True])
async def test_register_forward_and_receive_pushes(tls: bool) -> None:
    h = Harness(tls)
    client_tls = None
    if tls:
        # One certificate for server and client trust.
        pair = self_signed_tls()
        h.gateway.ssl_context = pair.server
        client_tls = pair.client
    async with run_gateway(h.gateway) as gw:
        async with h.connect(gw, ssl_context=client_tls) as client:
            assert client.stats.connects == 1
            assert gw.registered == [h.client_id] and gw.authenticated == []
            assert client.stats.registrations == 1
            assert h.keys == [client.shared_key] and client.shared_key is not None
            packets = [_packet(i) for i in range(5)]
            for p in packets:
                await client.send_mix_packet(p)
            await _wait_for(lambda: len(h.forwarded) == 5)
            assert [f.kind for f in h.forwarded] == [RequestKind.FORWARD_SPHINX_V2] * 5
            assert [MixPacket.from_v2_bytes(f.mix_packet) for f in h.forwarded] == packets
            assert all(f.client == h.client_id for f in h.forwarded)
            # Bandwidth was claimed (free testnet allowance) and is being spent.
            record = gw.registry.clients[h.client_id]
            assert record.bandwidth == FREE_TESTNET_BANDWIDTH - 5 * PacketSize.REGULAR.size
            await _wait_for(lambda: client.stats.bandwidth_remaining == record.bandwidth)
            await gw.push(h.client_id, b"hello client")
            await _wait_for(lambda: h.pushes == [b"hello client"])
        assert not client.connected
        with pytest.raises(GatewayUnavailable):
            await client.send_mix_packet(_packet(9))


@pytest.mark.anyio
async def test_reconnects_with_stored_key_and_loses_nothing() -> None:
    h = Harness()
    async with run_gateway(h.gateway) as gw, h.connect(gw) as client:
        await client.send_mix_packet(_packet(0))
        await _wait_for(lambda: len(h.forwarded) == 1)
        # The gateway goes away for a while: the connection drops, reconnects fail.
        gw.refuse = True
        await gw.drop_client(h.client_id)
        await _wait_for(lambda: not client.connected)
        for i in range(1, 6):
            await client.send_mix_packet(_packet(i))
        # Messages for the client arrive meanwhile; the gateway stores them.
        await gw.push(h.client_id, b"while away 1")
        await gw.push(h.client_id, b"while away 2")
        await _wait_for(lambda: gw.accepted >= 3)  # a few refused attempts
        assert client.queued == 5
        gw.refuse = False
        await _wait_for(lambda: len(h.forwarded) == 6)
        # In order, each exactly once.
        ids = [
            int.from_bytes(MixPacket.from_v2_bytes(f.mix_packet).packet[:4], "big")
            for f in h.forwarded
        ]
        assert ids == list(range(6))
        await _wait_for(lambda: h.pushes == [b"while away 1", b"while away 2"])
        assert gw.registered == [h.client_id] and gw.authenticated == [h.client_id]
        assert client.stats.connection_losses == 1 and client.stats.authentications == 1
        assert client.queued == 0


@pytest.mark.anyio
async def test_stored_key_authenticates_and_unknown_key_reregisters() -> None:
    h = Harness()
    async with run_gateway(h.gateway) as gw:
        async with h.connect(gw) as first:
            key = first.shared_key
        assert key is not None
        async with h.connect(gw, shared_key=key) as second:
            assert second.stats.registrations == 0 and second.stats.authentications == 1
            assert second.shared_key == key
        # The gateway forgets the client: authentication fails, registration follows.
        gw.registry.clients.clear()
        h.keys.clear()
        async with h.connect(gw, shared_key=key) as third:
            assert third.stats.registrations == 1
            assert h.keys[0] is None and h.keys[1] == third.shared_key != key
            await third.send_mix_packet(_packet(1))
            await _wait_for(lambda: len(h.forwarded) == 1)


@pytest.mark.anyio
async def test_register_then_reauthenticate_like_the_official_client() -> None:
    h = Harness()
    async with (
        run_gateway(h.gateway) as gw,
        h.connect(gw, reauthenticate_after_register=True) as client,
    ):
        assert client.stats.connects == 2
        assert gw.registered == [h.client_id] and gw.authenticated == [h.client_id]
        await client.send_mix_packet(_packet(3))
        await _wait_for(lambda: len(h.forwarded) == 1)


@pytest.mark.anyio
async def test_first_connection_failure_raises() -> None:
    h = Harness()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(GatewayUnavailable):
        async with GatewayClient.connect(
            f"ws://127.0.0.1:{port}/", h.identity, os.urandom(32), **h.options()
        ):
            pass
    # A gateway with a different identity than expected: the handshake signature fails.
    async with run_gateway(h.gateway) as gw:
        wrong = ed25519_public_bytes(Ed25519PrivateKey.generate())
        with pytest.raises(GatewayUnavailable):
            async with GatewayClient.connect(gw.url, h.identity, wrong, **h.options()):
                pass


@pytest.mark.anyio
async def test_gives_up_after_max_attempts() -> None:
    h = Harness()
    async with run_gateway(h.gateway) as gw, h.connect(gw, max_reconnect_attempts=2) as client:
        gw.refuse = True
        await gw.drop_client(h.client_id)
        with anyio.fail_after(5):
            while True:
                try:
                    await client.send_mix_packet(_packet(0))
                except GatewayUnavailable as exc:
                    assert "2 reconnect attempts" in str(exc)
                    break
                await anyio.sleep(0.02)


@pytest.mark.anyio
async def test_keepalive_pings_keep_a_healthy_connection() -> None:
    h = Harness()
    async with (
        run_gateway(h.gateway) as gw,
        h.connect(gw, keepalive_interval=0.02, keepalive_timeout=1.0) as client,
    ):
        await anyio.sleep(0.4)
        assert client.stats.connection_losses == 0 and client.stats.connects == 1
        await client.send_mix_packet(_packet(4))
        await _wait_for(lambda: len(h.forwarded) == 1)


@pytest.mark.anyio
async def test_pushes_before_the_register_reply_are_kept() -> None:
    """A gateway pushes stored messages while registering, before its reply (spec 3.8)."""
    h = Harness()
    async with run_gateway(h.gateway) as gw:
        async with h.connect(gw):
            pass
        await _wait_for(lambda: h.client_id not in gw.connections)
        await gw.push(h.client_id, b"stored while away")
        assert len(gw.registry.clients[h.client_id].stored_messages) == 1
        # Same identity, key lost: registers again; the stored push precedes `register`.
        async with h.connect(gw) as again:
            assert again.stats.registrations == 1
            await _wait_for(lambda: h.pushes == [b"stored while away"])
            assert again.stats.frames_dropped == 0


@pytest.mark.anyio
async def test_garbage_from_the_gateway_is_dropped_or_typed() -> None:
    h = Harness()
    async with run_gateway(h.gateway) as gw, h.connect(gw) as client:
        ws = gw.connections[h.client_id]
        await ws.send_binary(b"\x01\x01" + os.urandom(40))  # does not decrypt
        await ws.send_binary(b"")
        await ws.send_text("{not json")
        await ws.send_text('{"type":"noSuchThing"}')
        await _wait_for(lambda: client.stats.frames_dropped >= 4)
        await gw.push(h.client_id, b"still fine")
        await _wait_for(lambda: h.pushes == [b"still fine"])
        assert client.stats.connection_losses == 0

    # A "gateway" that answers the first request with nonsense: a typed error at start.
    async def nonsense(conn: WebSocketConnection) -> None:
        await conn.receive(timeout=5)
        await conn.send_text('{"type":"supportedProtocol","version":"six"}')
        with contextlib.suppress(WebSocketClosed):
            await conn.receive(timeout=5)  # answers the client's close

    async with ws_server(nonsense) as server:
        with pytest.raises(GatewayUnavailable):
            async with GatewayClient.connect(
                f"ws://127.0.0.1:{server.port}/", h.identity, os.urandom(32), **h.options()
            ):
                pass


@pytest.mark.anyio
async def test_websocket_failures_become_gateway_errors() -> None:
    """The WebSocket layer's errors never leave the client: it raises its own, exit 5."""
    from smolmix_cli.errors_map import classify
    from smolmix_cli.exit_codes import ExitCode
    from smolmix_cli.websocket import WebSocketError

    h = Harness()

    async def hang_up(conn: WebSocketConnection) -> None:
        await conn.aclose(1011, "go away")

    async def refuse(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")

    async with (
        ws_server(hang_up) as server,
        await anyio.create_tcp_listener(local_host="127.0.0.1") as refusing,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(refusing.serve, refuse)
        refusing_port = refusing.extra(anyio.abc.SocketAttribute.local_port)
        for url in (f"ws://127.0.0.1:{server.port}/", f"ws://127.0.0.1:{refusing_port}/"):
            with pytest.raises(GatewayUnavailable) as info:
                async with GatewayClient.connect(url, h.identity, os.urandom(32), **h.options()):
                    pass
            assert isinstance(info.value.__cause__, WebSocketError)
            error = classify(info.value)
            assert error.code is ExitCode.NETWORK_UNREACHABLE
            assert str(error).startswith(f"gateway unreachable: cannot use gateway at {url}")
        tg.cancel_scope.cancel()
