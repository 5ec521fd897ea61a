"""The client state machine on its own: timers, SURB answers, control replies, garbage."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolmix_cli.ipr.client_logic import (
    ClientConfig,
    ClientState,
    Connected,
    ConnectFailed,
    HealthReceived,
    InfoReceived,
    IprClient,
    KeepaliveDue,
    NotConnected,
    PongReceived,
    ReconnectNeeded,
    SendAdditionalSurbs,
    SendToIpr,
)
from smolmix_cli.ipr.lp_frame import MAX_SEQ, LpFrame, MsgType
from smolmix_cli.ipr.messages import (
    V9,
    BuildInfo,
    ConnectSuccess,
    DisconnectResponse,
    HealthResponse,
    InfoKind,
    InfoLevel,
    InfoResponse,
    IpPacketRequest,
    IpPacketResponse,
    PingRequest,
    PongResponse,
    ResponseBody,
    UnrequestedDisconnect,
    UnrequestedDisconnectReason,
)
from tests.fuzzing import scaled

CFG = ClientConfig()
WALL = datetime(2026, 11, 24, 22, 0, 0, tzinfo=UTC)
V4, V6 = IPv4Address("10.0.3.4"), IPv6Address("fc00::304")


def _reply(client: IprClient, body: ResponseBody, seq: int = 0) -> bytes:
    assert client.stream_id is not None
    payload = IpPacketResponse(V9, body).encode()
    return LpFrame(client.stream_id, MsgType.DATA, seq, payload).encode()


def connected_client(now: float = 0.0) -> IprClient:
    client = IprClient(random.Random(1))
    client.connect(now, WALL)
    _open, connect = client.pop_transmits()
    assert isinstance(connect, SendToIpr)
    request = IpPacketRequest.decode(LpFrame.decode(connect.payload).content)
    assert request.request_id is not None
    client.on_reply(_reply(client, ConnectSuccess(request.request_id, V4, V6)), now)
    assert isinstance(client.pop_events()[0], Connected)
    return client


def test_nothing_goes_out_before_connect() -> None:
    client = IprClient(random.Random(0))
    with pytest.raises(NotConnected):
        client.send_packet(b"\x45", 0.0)
    with pytest.raises(NotConnected):
        client.ping(0.0)
    client.on_surb_request(50, 0.0)
    assert client.pop_transmits() == [] and client.poll_deadline() is None


def test_connect_times_out_after_60_s() -> None:
    client = IprClient(random.Random(0))
    client.connect(5.0, WALL)
    assert client.poll_deadline() == 5.0 + CFG.connect_timeout
    client.handle_timeout(5.0 + CFG.connect_timeout - 0.01)
    assert client.pop_events() == []
    client.handle_timeout(5.0 + CFG.connect_timeout)
    assert client.pop_events() == [ConnectFailed("timeout")]
    assert client.state is ClientState.FAILED


def test_reply_for_another_request_or_stream_is_ignored() -> None:
    client = IprClient(random.Random(0))
    client.connect(0.0, WALL)
    client.pop_transmits()
    client.on_reply(_reply(client, ConnectSuccess(12345, V4, V6)), 0.1)
    assert client.stream_id is not None
    other = LpFrame(client.stream_id ^ 1, MsgType.DATA, 0, b"").encode()
    client.on_reply(other, 0.1)
    client.on_reply(b"garbage", 0.1)
    assert client.pop_events() == [] and client.dropped == 3
    assert client.state is ClientState.CONNECTING


def test_data_seq_counts_from_1_and_skips_0_on_wrap() -> None:
    client = connected_client()
    seqs = []
    for _ in range(3):
        client.send_packet(b"p", 1.0)
        (sent,) = client.pop_transmits()
        assert isinstance(sent, SendToIpr) and sent.reply_surbs == CFG.data_reply_surbs
        seqs.append(LpFrame.decode(sent.payload).seq)
    assert seqs == [1, 2, 3]
    client._seq = MAX_SEQ  # jump to the wrap instead of sending 2**32 packets
    client.send_packet(b"p", 1.0)
    (sent,) = client.pop_transmits()
    assert isinstance(sent, SendToIpr) and LpFrame.decode(sent.payload).seq == 1


@pytest.mark.parametrize("amount", [1, 50, 100, 101, 250, 500, 10_000])
def test_surb_requests_are_answered_bounded_and_batched(amount: int) -> None:
    client = connected_client()
    client.on_surb_request(amount, 1.0)
    batches = client.pop_transmits()
    assert all(isinstance(b, SendAdditionalSurbs) for b in batches)
    counts = [b.count for b in batches if isinstance(b, SendAdditionalSurbs)]
    assert sum(counts) == min(amount, CFG.max_surbs_answered)
    assert all(0 < c <= CFG.surbs_per_message for c in counts)


def test_keepalive_hint_then_reconnect_after_60_s_without_uplink_data() -> None:
    client = connected_client(now=0.0)
    client.send_packet(b"p", 10.0)
    client.pop_transmits()
    assert client.poll_deadline() == 10.0 + CFG.keepalive_after
    client.handle_timeout(10.0 + CFG.keepalive_after)
    assert client.pop_events() == [KeepaliveDue(CFG.keepalive_after)]
    client.ping(20.0 + CFG.keepalive_after)  # pings do not count as activity at the exit
    client.handle_timeout(10.0 + CFG.idle_timeout)
    assert client.pop_events() == [ReconnectNeeded("idle")]
    assert client.state is ClientState.LOST
    with pytest.raises(NotConnected):
        client.send_packet(b"p", 100.0)


def test_sending_data_postpones_the_idle_drop() -> None:
    client = connected_client(now=0.0)
    for t in range(10, 200, 30):
        client.send_packet(b"p", float(t))
        client.handle_timeout(float(t) + 29)
    assert client.state is ClientState.CONNECTED
    assert not any(isinstance(e, ReconnectNeeded) for e in client.pop_events())


def test_ping_pong_round_trip_and_missing_pongs() -> None:
    client = connected_client()
    client.send_packet(b"p", 1.0)
    request_id = client.ping(2.0)
    (sent,) = [t for t in client.pop_transmits() if isinstance(t, SendToIpr)][-1:]
    request = IpPacketRequest.decode(LpFrame.decode(sent.payload).content)
    assert isinstance(request.body, PingRequest) and request.body.request_id == request_id
    client.on_reply(_reply(client, PongResponse(request_id)), 3.5)
    assert client.pop_events() == [PongReceived(request_id, 1.5)]
    client.on_reply(_reply(client, PongResponse(request_id)), 3.6)  # repeated: not ours any more
    assert client.pop_events() == [] and client.dropped == 1
    client.send_packet(b"p", 4.0)
    client.ping(4.0)
    client.ping(5.0)
    client.send_packet(b"p", 30.0)
    client.handle_timeout(5.0 + CFG.ping_timeout)
    assert client.pop_events() == [ReconnectNeeded("pongs missing")]


@pytest.mark.parametrize(
    "body",
    [
        DisconnectResponse(0),
        UnrequestedDisconnect(UnrequestedDisconnectReason.CLIENT_MIXNET_TRAFFIC_TIMEOUT),
    ],
)
def test_disconnect_notices_ask_for_a_reconnect(body: ResponseBody) -> None:
    client = connected_client()
    client.on_reply(_reply(client, body), 1.0)
    assert client.pop_events() == [ReconnectNeeded("disconnected")]


def test_health_and_info_are_reported() -> None:
    client = connected_client()
    health = HealthResponse(7, BuildInfo(binary_name="nym-node"), None)
    info = InfoResponse(0, InfoKind.EXIT_POLICY_FILTER_CHECK_FAILED, InfoLevel.WARN, "1.2.3.4:25")
    client.on_reply(_reply(client, health), 1.0)
    client.on_reply(_reply(client, info), 1.0)
    assert client.pop_events() == [HealthReceived(health), InfoReceived(info)]


@settings(max_examples=scaled(300), deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=10), st.booleans())
def test_garbage_replies_never_raise(payloads: list[bytes], framed: bool) -> None:
    client = connected_client()
    assert client.stream_id is not None
    for payload in payloads:
        data = LpFrame(client.stream_id, MsgType.DATA, 1, payload).encode() if framed else payload
        client.on_reply(data, 1.0)
    for event in client.pop_events():
        assert not isinstance(event, Connected)


def _tcp(flags: int, payload: bytes = b"", v6: bool = False) -> bytes:
    from smolmix_cli.netstack.wire.ip import encode_ip, pseudo_header
    from smolmix_cli.netstack.wire.tcp import TcpSegment, encode_tcp

    src, dst = (V6, IPv6Address("2001:db8::1")) if v6 else (V4, IPv4Address("192.0.2.1"))
    seg = TcpSegment(40000, 443, 1, 1, flags, 1000, payload, timestamps=(1, 2), sack_blocks=())
    length = 20 + 12 + len(payload)
    tcp = encode_tcp(seg, pseudo_header(src, dst, 6, length))
    return encode_ip(src.packed, dst.packed, 6, tcp)


@pytest.mark.parametrize("v6", [False, True])
def test_lone_tcp_acks_go_without_mixnet_retransmission(v6: bool) -> None:
    """A lone ACK is superseded by the next one: resending it only costs packets."""
    from smolmix_cli.ipr.lone_ack import is_lone_tcp_ack
    from smolmix_cli.netstack.wire.tcp import ACK, FIN, PSH, SYN

    lone = _tcp(ACK, v6=v6)
    assert is_lone_tcp_ack(lone)
    for other in (_tcp(ACK | PSH, b"data", v6), _tcp(ACK | FIN, v6=v6), _tcp(SYN, v6=v6)):
        assert not is_lone_tcp_ack(other)
    assert not is_lone_tcp_ack(b"\x45") and not is_lone_tcp_ack(b"")
    client = connected_client()
    client.send_packet(lone, 1.0)
    client.send_packet(_tcp(ACK | PSH, b"data", v6), 1.0)
    ack, data = client.pop_transmits()
    assert isinstance(ack, SendToIpr) and isinstance(data, SendToIpr)
    assert not ack.retransmit and data.retransmit
    assert ack.reply_surbs == data.reply_surbs == ClientConfig().data_reply_surbs
    resending = IprClient(random.Random(1), ClientConfig(resend_lone_acks=True))
    assert resending.config.resend_lone_acks


def test_packed_packets_share_messages_only_where_that_saves_sphinx_packets() -> None:
    """18 full-size segments in one Data message of 16 Sphinx packets (one per message:
    18); a partial bundle that saves nothing goes one packet per message; a bundle of
    lone ACKs only is sent once, like a lone ACK; on a lossy path (under 90 % of our
    fragments acked) packets go one per message again."""
    from smolmix_cli.ipr.bundle import decode_bundle, encode_bundle
    from smolmix_cli.ipr.client_logic import MessageSizes
    from smolmix_cli.ipr.messages import DataRequest
    from smolmix_cli.mixnet.message.preparer import (
        fragments_needed,
        reply_fragments,
        surbs_that_fit,
    )
    from smolmix_cli.netstack.wire.tcp import ACK, PSH

    sizes = MessageSizes(surbs_that_fit, reply_fragments, fragments_needed)
    client = IprClient(random.Random(1), ClientConfig(), sizes)
    client.connect(0.0, WALL)
    _open, connect = client.pop_transmits()
    assert isinstance(connect, SendToIpr)
    request = IpPacketRequest.decode(LpFrame.decode(connect.payload).content)
    client.on_reply(_reply(client, ConnectSuccess(request.request_id, V4, V6)), 0.0)
    full = [_tcp(ACK | PSH, bytes([i]) * 1368) for i in range(21)]
    assert len(full[0]) == 1420
    for packet in full[:18]:
        client.pack(packet, 1.0)
    assert client.pop_transmits() == []  # a 20-byte packet would still fit
    client.pack(full[18], 2.0)  # the nineteenth does not
    [bundle] = client.pop_transmits()
    assert isinstance(bundle, SendToIpr) and bundle.retransmit
    body = IpPacketRequest.decode(LpFrame.decode(bundle.payload).content).body
    assert isinstance(body, DataRequest) and body.ip_packets == encode_bundle(full[:18])
    assert decode_bundle(body.ip_packets) == full[:18]
    assert fragments_needed(len(bundle.payload), bundle.reply_surbs) == 16
    for packet in full[19:]:
        client.pack(packet, 2.05)
    assert client.packed == 3 and client.packed_since == 2.0 and client.pop_transmits() == []
    client.flush_packed(2.1)
    singles = client.pop_transmits()
    assert [len(t.payload) for t in singles if isinstance(t, SendToIpr)] == [1444] * 3
    acks = [_tcp(ACK), _tcp(ACK, v6=True)]
    for packet in acks:
        client.pack(packet, 3.0)
    client.flush_packed(3.0)
    [both] = client.pop_transmits()
    assert isinstance(both, SendToIpr) and not both.retransmit
    client.bundle_gate.observe(0, 0)
    client.bundle_gate.observe(500, 500)  # half our fragments unacked in time
    for packet in acks:
        client.pack(packet, 4.0)
    assert client.packed == 0 and len(client.pop_transmits()) == 2
