"""The client and gateway connection state machines talking to each other (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.errors import MalformedData
from smolmix_cli.mixnet.gateway.client_session import (
    CLAIM_THRESHOLD,
    ClientState,
    GatewayClientSession,
)
from smolmix_cli.mixnet.gateway.frames import RequestKind, encrypt_push, encrypt_request
from smolmix_cli.mixnet.gateway.gateway_connection import (
    FREE_TESTNET_BANDWIDTH,
    GatewayConnection,
    GatewayConnState,
    GatewayRegistry,
    mix_packet_cost,
)
from smolmix_cli.mixnet.gateway.handshake import (
    CURRENT_PROTOCOL_VERSION,
    MAX_REQUEST_TIMESTAMP_SKEW_S,
    ExcessiveTimestampSkew,
    IncompatibleProtocol,
    NotRegistered,
    RequestReuse,
    build_authenticate_v2,
    ed25519_public_bytes,
)
from smolmix_cli.mixnet.gateway.messages import (
    Authenticate,
    Bandwidth,
    ClaimFreeTestnetBandwidth,
    ErrorResponse,
    HandshakeError,
    OutOfBandwidth,
    Register,
    Send,
    SupportedProtocol,
    TypedError,
    parse_server_message,
)
from smolmix_cli.mixnet.gateway.session_events import (
    HANDSHAKE_STEP_TIMEOUT_S,
    Authenticated,
    BandwidthChanged,
    ClientAuthenticated,
    ClientRegistered,
    CredentialsRequired,
    Dropped,
    Failed,
    ForwardPacket,
    GatewayErrorReported,
    GatewayRejected,
    HandshakeTimeout,
    MessageReceived,
    Ready,
    Registered,
    SendBinary,
    SendText,
    SessionNotReady,
)
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from tests.mixnet.gateway_vectors import frames, handshake_vector, packets_vector
from tests.vectors import h, spec_text

NOW = 1_800_000_000.0


def _mix_packet() -> bytes:
    return h(packets_vector()["packets"][0]["mix_packet_v2"]["bytes"])


def _sphinx_len() -> int:
    return int(packets_vector()["packets"][0]["mix_packet_v2"]["sphinx_packet_len"])


class Link:
    """Delivers each side's Send* events to the other until both are quiet."""

    def __init__(
        self, client: GatewayClientSession, gateway: GatewayConnection, now: float = NOW
    ) -> None:
        self.client, self.gateway, self.now = client, gateway, now
        self.client_events: list[Any] = []
        self.gateway_events: list[Any] = []
        self.wire: list[tuple[str, str | bytes]] = []

    def pump(self, to_gateway: list[Any], to_client: list[Any] | None = None) -> None:
        queue: list[tuple[str, Any]] = [("c", ev) for ev in to_gateway] + [
            ("g", ev) for ev in (to_client or [])
        ]
        while queue:
            origin, ev = queue.pop(0)
            if origin == "c":
                self.client_events.append(ev)
                if isinstance(ev, SendText):
                    self.wire.append(("C->G", ev.text))
                    queue += [("g", e) for e in self.gateway.receive_text(ev.text, now=self.now)]
                elif isinstance(ev, SendBinary):
                    self.wire.append(("C->G", ev.data))
                    queue += [("g", e) for e in self.gateway.receive_binary(ev.data, now=self.now)]
            else:
                self.gateway_events.append(ev)
                if isinstance(ev, SendText):
                    self.wire.append(("G->C", ev.text))
                    queue += [("c", e) for e in self.client.receive_text(ev.text, now=self.now)]
                elif isinstance(ev, SendBinary):
                    self.wire.append(("G->C", ev.data))
                    queue += [("c", e) for e in self.client.receive_binary(ev.data)]

    def start(self) -> None:
        self.pump(self.client.start())

    def of(self, side: str, cls: type) -> list[Any]:
        events = self.client_events if side == "c" else self.gateway_events
        return [e for e in events if isinstance(e, cls)]


def _parties(**registry_kw: Any) -> tuple[Ed25519PrivateKey, GatewayRegistry]:
    return Ed25519PrivateKey.generate(), GatewayRegistry(
        Ed25519PrivateKey.generate(), **registry_kw
    )


def _register(client_id: Ed25519PrivateKey, registry: GatewayRegistry, **client_kw: Any) -> Link:
    client = GatewayClientSession(client_id, registry.identity_public, **client_kw)
    link = Link(client, GatewayConnection(registry))
    link.start()
    return link


def _reconnect(
    client_id: Ed25519PrivateKey, registry: GatewayRegistry, key: SharedKey | None, now: float
) -> Link:
    """The same client back later with its stored key."""
    client = GatewayClientSession(client_id, registry.identity_public, shared_key=key)
    link = Link(client, GatewayConnection(registry), now)
    link.start()
    return link


# --------------------------------------------------------------------------- happy paths


def test_register_claim_forward_push() -> None:
    client_id, registry = _parties()
    link = _register(client_id, registry)
    client, gateway = link.client, link.gateway
    ident = ed25519_public_bytes(client_id)
    assert client.state is ClientState.READY and gateway.state is GatewayConnState.AUTHENTICATED
    assert link.of("g", ClientRegistered) == [ClientRegistered(ident)]
    [registered] = link.of("c", Registered)
    assert registered.shared_key == registry.clients[ident].shared_key
    assert link.of("c", Ready) == [Ready()]
    # the text exchange has the recorded shape: same types in the same order
    recorded_types = [
        json.loads(f["text"])["type"] for f in frames("registration") if f["ws_type"] == "text"
    ]
    ours = [json.loads(t)["type"] for _, t in link.wire if isinstance(t, str)]
    assert ours[: len(recorded_types)] == recorded_types
    assert ours[len(recorded_types) :] == ["claimFreeTestnetBandwidth", "bandwidth"]
    assert client.bandwidth_remaining == FREE_TESTNET_BANDWIDTH == registry.clients[ident].bandwidth

    link.pump(client.send_mix_packet(_mix_packet()))
    assert link.of("g", ForwardPacket) == [
        ForwardPacket(RequestKind.FORWARD_SPHINX_V2, _mix_packet(), ident)
    ]
    assert client.bandwidth_remaining == FREE_TESTNET_BANDWIDTH - _sphinx_len()

    link.pump([], gateway.push(b"ack bytes"))
    assert link.of("c", MessageReceived) == [MessageReceived(b"ack bytes")]


def test_reconnect_with_authenticate_v2_keeps_key_and_bandwidth() -> None:
    client_id, registry = _parties()
    first = _register(client_id, registry)
    key = first.client.shared_key
    assert key is not None
    first.pump(first.client.send_mix_packet(_mix_packet()))
    first.gateway.connection_lost()

    second = _reconnect(client_id, registry, key, NOW + 10)
    types = [json.loads(t)["type"] for _, t in second.wire]
    assert types == ["supportedProtocol", "supportedProtocol", "authenticateV2", "authenticate"]
    assert second.of("c", Authenticated) == [
        Authenticated(CURRENT_PROTOCOL_VERSION, FREE_TESTNET_BANDWIDTH - _sphinx_len())
    ]
    assert second.client.state is ClientState.READY
    assert second.of("g", ClientAuthenticated)


def test_authenticate_with_zero_bandwidth_claims_like_the_recording() -> None:
    client_id, registry = _parties()
    first = _register(client_id, registry)
    ident = ed25519_public_bytes(client_id)
    registry.clients[ident].bandwidth = 0
    first.gateway.connection_lost()
    second = _reconnect(client_id, registry, first.client.shared_key, NOW + 1)
    recorded = [
        json.loads(f["text"])["type"] for f in frames("authentication") if f["ws_type"] == "text"
    ]
    ours = [json.loads(t)["type"] for _, t in second.wire]
    assert ours == recorded[: len(ours)] and len(ours) == 6


def test_stored_messages_pushed_before_the_authenticate_reply() -> None:
    client_id, registry = _parties()
    first = _register(client_id, registry)
    first.gateway.connection_lost()
    ident = ed25519_public_bytes(client_id)
    registry.store_message(ident, b"stored-1")
    registry.store_message(ident, b"stored-2")
    second = _reconnect(client_id, registry, first.client.shared_key, NOW + 1)
    kinds = ["bin" if isinstance(d, bytes) else json.loads(d)["type"] for _, d in second.wire]
    assert kinds[3:6] == ["bin", "bin", "authenticate"]
    assert second.of("c", MessageReceived) == [
        MessageReceived(b"stored-1"),
        MessageReceived(b"stored-2"),
    ]
    assert registry.clients[ident].stored_messages == []


def test_older_gateway_version_gives_forward_sphinx_v1() -> None:
    client_id, registry = _parties(protocol_version=4)
    link = _register(client_id, registry)
    assert link.client.protocol_version == 4
    [frame] = link.client.send_mix_packet(_mix_packet()[:1] + _mix_packet()[2:])
    assert isinstance(frame, SendBinary) and frame.data[0] == RequestKind.FORWARD_SPHINX


# --------------------------------------------------------------------------- bandwidth


def test_out_of_bandwidth_is_a_typed_reply() -> None:
    client_id, registry = _parties(free_bandwidth=_sphinx_len() + 10)
    link = _register(client_id, registry, claim_threshold=1)
    link.pump(link.client.send_mix_packet(_mix_packet()))
    assert len(link.of("g", ForwardPacket)) == 1
    sent = link.client.send_mix_packet(_mix_packet())
    binary = [e for e in sent if isinstance(e, SendBinary)]
    gw_events = link.gateway.receive_binary(binary[0].data, now=NOW)
    assert not [e for e in gw_events if isinstance(e, ForwardPacket)]
    [reply] = gw_events
    assert isinstance(reply, SendText)
    assert parse_server_message(reply.text) == TypedError(
        OutOfBandwidth(required=_sphinx_len(), available=10)
    )
    events = link.client.receive_text(reply.text, now=NOW)
    assert events == [GatewayErrorReported(reply.text, OutOfBandwidth(_sphinx_len(), 10))]
    assert link.client.state is ClientState.READY


def test_low_bandwidth_triggers_a_claim_before_the_packet() -> None:
    client_id, registry = _parties(free_bandwidth=CLAIM_THRESHOLD + _sphinx_len() - 1)
    link = _register(client_id, registry)
    link.pump(link.client.send_mix_packet(_mix_packet()))  # now below the threshold
    events = link.client.send_mix_packet(_mix_packet())
    assert (
        isinstance(events[0], SendText) and events[0].text == ClaimFreeTestnetBandwidth().to_json()
    )
    assert isinstance(events[1], SendBinary)
    assert (
        link.client.send_mix_packet(_mix_packet())[0].__class__ is SendBinary
    )  # no second claim pending


def test_send_replies_are_never_taken_as_the_pending_reply() -> None:
    client_id, registry = _parties()
    first = _register(client_id, registry)
    first.gateway.connection_lost()
    client = GatewayClientSession(
        client_id, registry.identity_public, shared_key=first.client.shared_key
    )
    client.start()
    client.receive_text(SupportedProtocol(6).to_json(), now=NOW)
    assert client.state is ClientState.AWAIT_AUTHENTICATE
    assert client.receive_text(Send(77).to_json(), now=NOW) == [BandwidthChanged(77)]
    assert client.state is ClientState.AWAIT_AUTHENTICATE
    events = client.receive_text(Authenticate(6, True, 0).to_json(), now=NOW)
    assert client.state is ClientState.CLAIMING and isinstance(events[-1], SendText)
    client.receive_text(Send(5).to_json(), now=NOW)
    assert client.state is ClientState.CLAIMING
    assert client.receive_text(Bandwidth(FREE_TESTNET_BANDWIDTH).to_json(), now=NOW)[-1] == Ready()


def test_binary_accepted_before_text_reply_and_dropped_without_key() -> None:
    client = GatewayClientSession(Ed25519PrivateKey.generate(), bytes(32))
    client.start()
    [dropped] = client.receive_binary(b"\x01\x01" + bytes(30))
    assert isinstance(dropped, Dropped)
    key = SharedKey(bytes(range(32)))
    client2 = GatewayClientSession(Ed25519PrivateKey.generate(), bytes(32), shared_key=key)
    client2.start()
    client2.receive_text(SupportedProtocol(6).to_json(), now=NOW)
    assert client2.receive_binary(encrypt_push(b"early", key)) == [MessageReceived(b"early")]
    [bad] = client2.receive_binary(b"\x01\x01" + bytes(40))
    assert isinstance(bad, Dropped)
    assert client2.state is ClientState.AWAIT_AUTHENTICATE


def test_mix_packet_cost() -> None:
    assert mix_packet_cost(RequestKind.FORWARD_SPHINX_V2, _mix_packet()) == _sphinx_len()
    v1 = _mix_packet()[:1] + _mix_packet()[2:]
    assert mix_packet_cost(RequestKind.FORWARD_SPHINX, v1) == _sphinx_len()
    sphinx = _mix_packet()[-_sphinx_len() :]
    v6 = _mix_packet()[:2] + b"\x06" + bytes(18) + sphinx
    assert mix_packet_cost(RequestKind.FORWARD_SPHINX_V2, v6) == _sphinx_len()
    not_a_packet_size = _mix_packet()[:2] + b"\x06" + bytes(18) + b"pkt"
    for bad in (
        b"",
        b"\x00\x02",
        b"\x00\x02\x05" + bytes(10),
        _mix_packet()[:9],
        not_a_packet_size,
    ):
        with pytest.raises(MalformedData):
            mix_packet_cost(RequestKind.FORWARD_SPHINX_V2, bad)


# --------------------------------------------------------------------------- refusals


def test_registration_rejected_while_same_client_connected() -> None:
    client_id, registry = _parties()
    _register(client_id, registry)
    again = _register(client_id, registry)
    [failed] = again.of("c", Failed)
    assert again.client.state is ClientState.FAILED
    assert again.of("g", Failed)
    assert "already an open connection" in str(failed.error)


def test_authenticate_v2_replay_on_a_new_connection_rejected() -> None:
    client_id, registry = _parties()
    first = _register(client_id, registry)
    key = first.client.shared_key
    assert key is not None
    first.gateway.connection_lost()
    request = build_authenticate_v2(client_id, key, 6, NOW + 5).to_json()
    conn = GatewayConnection(registry)
    assert isinstance(conn.receive_text(request, now=NOW + 5)[-1], ClientAuthenticated)
    conn.connection_lost()
    replay = GatewayConnection(registry).receive_text(request, now=NOW + 6)
    assert isinstance(replay[-1], Failed) and isinstance(replay[-1].error, RequestReuse)
    assert isinstance(parse_server_message(replay[0].text), ErrorResponse)


def test_authenticate_v2_skew_and_unregistered() -> None:
    client_id, registry = _parties()
    first = _register(client_id, registry)
    key = first.client.shared_key
    assert key is not None
    first.gateway.connection_lost()
    skewed = build_authenticate_v2(client_id, key, 6, NOW + 500).to_json()
    events = GatewayConnection(registry).receive_text(skewed, now=NOW)
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, ExcessiveTimestampSkew)
    stranger = build_authenticate_v2(Ed25519PrivateKey.generate(), key, 6, NOW).to_json()
    events = GatewayConnection(registry).receive_text(stranger, now=NOW)
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, NotRegistered)


def test_client_refuses_old_gateway() -> None:
    client = GatewayClientSession(Ed25519PrivateKey.generate(), bytes(32))
    client.start()
    [failed] = client.receive_text(SupportedProtocol(3).to_json(), now=NOW)
    assert isinstance(failed, Failed) and isinstance(failed.error, IncompatibleProtocol)
    assert client.state is ClientState.FAILED


def test_client_proposes_min_of_gateway_and_own_version() -> None:
    recorded = handshake_vector()["registration"]["connection_1_frames"]
    own = json.loads(recorded[2]["text"])["protocol_version"]
    for gateway_version in (own - 1, own, own + 1, 255):
        client = GatewayClientSession(Ed25519PrivateKey.generate(), bytes(32))
        client.start()
        [out] = client.receive_text(SupportedProtocol(gateway_version).to_json(), now=NOW)
        assert isinstance(out, SendText)
        assert json.loads(out.text)["protocol_version"] == min(gateway_version, own)


def test_gateway_refuses_requests_before_auth_and_garbage() -> None:
    _, registry = _parties()
    for text in (
        ClaimFreeTestnetBandwidth().to_json(),
        "not json",
        '{"type":"authenticate","address":"a","enc_address":"b","iv":"c"}',
    ):
        conn = GatewayConnection(registry)
        events = conn.receive_text(text, now=NOW)
        assert isinstance(events[0], SendText) and isinstance(
            parse_server_message(events[0].text), ErrorResponse
        )
        assert isinstance(events[-1], Failed)
        assert conn.state is GatewayConnState.CLOSED
    conn = GatewayConnection(registry)
    [dropped] = conn.receive_binary(b"\x02\x01" + bytes(40), now=NOW)
    assert isinstance(dropped, Dropped)


def test_authenticated_gateway_survives_bad_input() -> None:
    client_id, registry = _parties()
    link = _register(client_id, registry)
    gw = link.gateway
    for text in ("{", '{"type":"nope"}', Register(6, True).to_json()):
        events = gw.receive_text(text, now=NOW)
        assert isinstance(parse_server_message(events[0].text), ErrorResponse)
    events = gw.receive_text('{"type":"handshakePayload","protocol_version":6,"data":[1]}', now=NOW)
    assert "illegal" in json.loads(events[0].text)["message"]
    events = gw.receive_binary(b"\x02\x01" + bytes(40), now=NOW)
    assert isinstance(events[-1], Dropped)
    key = registry.clients[ed25519_public_bytes(client_id)].shared_key
    events = gw.receive_binary(
        encrypt_request(RequestKind.FORWARD_SPHINX_V2, b"\x00\x02\x09", key), now=NOW
    )
    assert isinstance(events[-1], Dropped) and isinstance(events[-1].error, MalformedData)
    assert gw.state is GatewayConnState.AUTHENTICATED
    assert gw.receive_text('{"type":"supportedProtocol"}', now=NOW) == [
        SendText(SupportedProtocol(6).to_json())
    ]


def test_enforcing_gateway_refuses_free_bandwidth() -> None:
    client_id, registry = _parties(enforce_credentials=True)
    link = _register(client_id, registry)
    [failed] = link.of("c", Failed)
    assert link.client.state is ClientState.FAILED
    assert isinstance(failed.error, CredentialsRequired)
    assert registry.clients[ed25519_public_bytes(client_id)].bandwidth == 0
    # The refusal on the wire is nym-node's own text, byte for byte.
    assert link.wire[-1] == ("G->C", '{"type":"error","message":"' + ONLY + '"}')


ONLY = "This gateway is only accepting coconut credentials for bandwidth"


def _claiming_client() -> GatewayClientSession:
    client_id, registry = _parties()
    first = _register(client_id, registry)
    client = GatewayClientSession(
        client_id, registry.identity_public, shared_key=first.client.shared_key
    )
    client.start()
    client.receive_text(SupportedProtocol(6).to_json(), now=NOW)
    client.receive_text(Authenticate(6, True, 0).to_json(), now=NOW)
    assert client.state is ClientState.CLAIMING
    return client


def test_zk_nym_refusal_of_the_claim_is_credentials_required() -> None:
    # The exact reply nym-node sends with enforce_zk_nyms set (upstream
    # common/credential-verification/src/error.rs OnlyCoconutCredentials).
    text = '{"type":"error","message":"This gateway is only accepting coconut credentials for bandwidth"}'
    [failed] = _claiming_client().receive_text(text, now=NOW)
    assert isinstance(failed, Failed) and isinstance(failed.error, CredentialsRequired)
    assert "coconut credentials" in str(failed.error)


def test_other_claim_refusals() -> None:
    # Any other untyped error during the claim is a plain rejection ...
    [failed] = _claiming_client().receive_text(
        '{"type":"error","message":"Internal gateway storage error"}', now=NOW
    )
    assert isinstance(failed, Failed) and isinstance(failed.error, GatewayRejected)
    assert not isinstance(failed.error, CredentialsRequired)
    # ... while out_of_bandwidth in answer to the free claim means no free bandwidth here.
    oob = TypedError(OutOfBandwidth(required=1, available=0)).to_json()
    [failed] = _claiming_client().receive_text(oob, now=NOW)
    assert isinstance(failed, Failed) and isinstance(failed.error, CredentialsRequired)


def test_handshake_timeouts_both_sides() -> None:
    client_id, registry = _parties()
    client = GatewayClientSession(client_id, registry.identity_public)
    client.start()
    client.receive_text(SupportedProtocol(6).to_json(), now=NOW)
    assert client.poll_deadline() == NOW + HANDSHAKE_STEP_TIMEOUT_S
    assert client.handle_timeout(NOW + HANDSHAKE_STEP_TIMEOUT_S - 0.01) == []
    events = client.handle_timeout(NOW + HANDSHAKE_STEP_TIMEOUT_S)
    probe_text = '{"type":"handshakeError","message":"timed out waiting for a handshake message"}'
    assert events[0] == SendText(
        HandshakeError("timed out waiting for a handshake message").to_json()
    )
    assert events[0].text == probe_text or json.loads(events[0].text) == json.loads(probe_text)
    assert isinstance(events[1], Failed) and isinstance(events[1].error, HandshakeTimeout)

    conn = GatewayConnection(registry)
    c2 = GatewayClientSession(Ed25519PrivateKey.generate(), registry.identity_public)
    c2.start()
    [step1] = c2.receive_text(SupportedProtocol(6).to_json(), now=NOW)
    assert isinstance(step1, SendText)
    conn.receive_text(step1.text, now=NOW)
    assert conn.state is GatewayConnState.HANDSHAKE
    assert conn.poll_deadline() == NOW + HANDSHAKE_STEP_TIMEOUT_S
    assert conn.handle_timeout(NOW + HANDSHAKE_STEP_TIMEOUT_S - 0.01) == []
    events2 = conn.handle_timeout(NOW + HANDSHAKE_STEP_TIMEOUT_S)
    assert isinstance(events2[-1], Failed) and conn.state is GatewayConnState.CLOSED
    assert client.poll_deadline() is None and conn.poll_deadline() is None


def test_client_handshake_failure_sends_handshake_error() -> None:
    client_id, registry = _parties()
    conn = GatewayConnection(registry)
    client = GatewayClientSession(
        client_id, ed25519_public_bytes(Ed25519PrivateKey.generate())
    )  # wrong gateway id
    link = Link(client, conn)
    link.start()
    [failed] = link.of("c", Failed)
    texts = [(d, json.loads(t)["type"]) for d, t in link.wire if isinstance(t, str)]
    # the client aborts on the bad gateway signature; the gateway answers with an error
    assert texts[-2:] == [("C->G", "handshakeError"), ("G->C", "error")]
    assert conn.state is GatewayConnState.CLOSED
    assert ed25519_public_bytes(client_id) not in registry.clients
    del failed


def test_send_before_ready_is_refused() -> None:
    client = GatewayClientSession(Ed25519PrivateKey.generate(), bytes(32))
    with pytest.raises(SessionNotReady):
        client.send_mix_packet(b"x")
    with pytest.raises(SessionNotReady):
        GatewayConnection(_parties()[1]).push(b"x")


def test_gateway_handshake_failure_sends_handshake_error_then_error() -> None:
    client_id, registry = _parties()
    conn = GatewayConnection(registry)
    client = GatewayClientSession(client_id, registry.identity_public)
    client.start()
    [step1] = client.receive_text(SupportedProtocol(6).to_json(), now=NOW)
    assert isinstance(step1, SendText)
    [step2] = conn.receive_text(step1.text, now=NOW)
    assert isinstance(step2, SendText)
    [step3] = client.receive_text(step2.text, now=NOW)
    assert isinstance(step3, SendText)
    tampered = json.loads(step3.text)
    tampered["data"][0] ^= 1
    events = conn.receive_text(json.dumps(tampered), now=NOW)
    assert [type(e) for e in events] == [SendText, SendText, Failed]
    assert isinstance(events[0], SendText) and isinstance(events[1], SendText)
    assert json.loads(events[0].text)["type"] == "handshakeError"
    assert json.loads(events[1].text)["message"].startswith(
        "Failed to perform registration handshake"
    )
    assert conn.state is GatewayConnState.CLOSED
    assert ed25519_public_bytes(client_id) not in registry.clients and not registry.connected


def test_client_drops_garbage_during_handshake_but_fails_on_garbage_reply() -> None:
    client = GatewayClientSession(Ed25519PrivateKey.generate(), bytes(32))
    client.start()
    [failed] = client.receive_text("{", now=NOW)
    assert isinstance(failed, Failed) and isinstance(failed.error, MalformedData)
    client = GatewayClientSession(Ed25519PrivateKey.generate(), bytes(32))
    client.start()
    client.receive_text(SupportedProtocol(6).to_json(), now=NOW)
    [dropped] = client.receive_text("{", now=NOW)
    assert isinstance(dropped, Dropped) and client.state is ClientState.HANDSHAKE
    [dropped] = client.receive_text(Bandwidth(5).to_json(), now=NOW)
    assert isinstance(dropped, Dropped) and client.state is ClientState.HANDSHAKE


def test_constants_match_spec_and_recording() -> None:
    spec = spec_text("nym-mixnet.md")
    recorded_total = json.loads(frames("authentication")[5]["text"])["available_total"]
    assert recorded_total == FREE_TESTNET_BANDWIDTH
    assert f"({FREE_TESTNET_BANDWIDTH:,} bytes)" in spec
    assert f"bandwidth < {CLAIM_THRESHOLD:,} bytes" in spec
    assert f"|skew| <= {MAX_REQUEST_TIMESTAMP_SKEW_S} s" in spec
    assert f"time out after {HANDSHAKE_STEP_TIMEOUT_S:g} s" in spec
    own = json.loads(frames("registration")[1]["text"])["version"]
    assert own == CURRENT_PROTOCOL_VERSION
