"""The exit logic on its own: allocation, version rules, timers, SURB economy, garbage."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address

from hypothesis import given, settings
from hypothesis import strategies as st

from smolmix_cli.ipr.bundle import decode_bundle, encode_bundle
from smolmix_cli.ipr.lp_frame import MAX_SEQ, LpFrame, MsgType
from smolmix_cli.ipr.messages import (
    V8,
    V9,
    V10,
    BuildInfo,
    ConnectRequest,
    ConnectSuccess,
    DataRequest,
    DataResponse,
    DisconnectFailureReason,
    DisconnectRequest,
    DisconnectResponse,
    HealthRequest,
    HealthResponse,
    InfoKind,
    InfoResponse,
    IpPacketRequest,
    IpPacketResponse,
    PingRequest,
    PongResponse,
    RequestBody,
    utc_timestamp,
)
from smolmix_cli.ipr.router_logic import (
    TUN_IPV4,
    TUN_IPV6,
    IprRouter,
    ReplyToClient,
    RequestSurbs,
    RouterConfig,
    address_pair,
    parse_packet,
    socket_text,
)
from tests.fuzzing import scaled
from tests.ipr.packets import udp_packet
from tests.ipr.scripted_rng import ScriptedRandom
from tests.ipr.strategies import requests

CFG = RouterConfig()
STAMP = utc_timestamp(datetime(2026, 11, 24, 22, 0, tzinfo=UTC))
TAG_A, TAG_B = bytes(range(16)), bytes(range(16, 32))
PLENTY = 1000


def framed(stream: int, body: RequestBody, version: int = V9, seq: int = 0) -> bytes:
    return LpFrame(stream, MsgType.DATA, seq, IpPacketRequest(version, body).encode()).encode()


def responses(router: IprRouter) -> list[tuple[LpFrame, IpPacketResponse]]:
    out = []
    for t in router.pop_transmits():
        if isinstance(t, ReplyToClient):
            frame = LpFrame.decode(t.payload)
            out.append((frame, IpPacketResponse.decode(frame.content)))
    return out


def connect(
    router: IprRouter, tag: bytes, stream: int, now: float = 0.0, version: int = V9
) -> ConnectSuccess:
    router.on_message(tag, framed(stream, ConnectRequest(77, STAMP), version), PLENTY, now)
    ((frame, response),) = responses(router)
    assert (frame.stream_id, frame.seq) == (stream, 0)
    assert isinstance(response.body, ConnectSuccess) and response.version == version
    return response.body


def test_allocation_skips_taken_and_tun_addresses() -> None:
    router = IprRouter(ScriptedRandom(ints=[300, 300, 1, 301]))
    first = connect(router, TAG_A, 1)
    second = connect(router, TAG_B, 2)
    assert (first.ipv4, first.ipv6) == address_pair(300)
    assert (second.ipv4, second.ipv6) == address_pair(301)
    assert address_pair(1) == (TUN_IPV4, TUN_IPV6)


def test_lp_reconnect_gets_new_addresses_raw_reconnect_keeps_them() -> None:
    router = IprRouter(ScriptedRandom(ints=[300, 400]))
    first = connect(router, TAG_A, 1)
    again = connect(router, TAG_A, 1)
    assert again.ipv4 != first.ipv4 and router.client_addresses(TAG_A) == (again.ipv4, again.ipv6)
    raw = IpPacketRequest(V8, ConnectRequest(5, STAMP)).encode()
    router.on_message(TAG_A, raw, PLENTY, 1.0)
    (reply,) = [t for t in router.pop_transmits() if isinstance(t, ReplyToClient)]
    response = IpPacketResponse.decode(reply.payload)  # raw: no LP frame around it
    assert response.version == V8 and isinstance(response.body, ConnectSuccess)
    assert response.body.ipv4 == again.ipv4


def test_v10_reports_the_mtu_and_v9_does_not() -> None:
    router = IprRouter(random.Random(3), RouterConfig(mtu=1280))
    assert connect(router, TAG_A, 1, version=V10).mtu == 1280
    assert connect(router, TAG_B, 2, version=V9).mtu is None


def test_version_rules_and_senderless_messages() -> None:
    router = IprRouter(random.Random(3))
    router.on_message(TAG_A, framed(1, ConnectRequest(1, STAMP), version=V8), PLENTY, 0.0)
    router.on_message(TAG_A, IpPacketRequest(V9, ConnectRequest(1, STAMP)).encode(), PLENTY, 0.0)
    router.on_message(None, framed(1, ConnectRequest(1, STAMP)), PLENTY, 0.0)
    assert router.pop_transmits() == []
    assert router.stats["version"] == 2 and router.stats["no sender tag"] == 1


def test_ping_health_disconnect_inline_replies() -> None:
    info = BuildInfo(binary_name="test-ipr", build_version="0.0.1")
    router = IprRouter(random.Random(3), RouterConfig(build_info=info))
    router.on_message(TAG_A, framed(9, DisconnectRequest(1, STAMP), seq=4), PLENTY, 0.0)
    ((frame, response),) = responses(router)
    assert frame.seq == 0 and frame.stream_id == 9
    failure = DisconnectFailureReason.CLIENT_NOT_CONNECTED
    assert response.body == DisconnectResponse(1, failure)
    connect(router, TAG_A, 9)
    router.on_message(TAG_A, framed(9, PingRequest(2, STAMP), seq=5), PLENTY, 0.0)
    router.on_message(TAG_A, framed(9, HealthRequest(3, STAMP), seq=6), PLENTY, 0.0)
    router.on_message(TAG_A, framed(9, DisconnectRequest(4, STAMP), seq=7), PLENTY, 0.0)
    bodies = [r.body for f, r in responses(router) if f.seq == 0]
    assert bodies == [PongResponse(2), HealthResponse(3, info, None), DisconnectResponse(4)]
    assert router.client_addresses(TAG_A) is None


def test_downlink_bundles_up_to_1500_and_seq_skips_0_on_wrap() -> None:
    router = IprRouter(random.Random(3))
    ok = connect(router, TAG_A, 5)
    packets = [udp_packet(IPv4Address("1.1.1.1"), ok.ipv4, 600) for _ in range(3)]
    for p in packets:
        router.on_downlink(p, 1.0)
    first = responses(router)  # the third packet pushed the first two out
    router.handle_timeout(1.0 + CFG.default_buffer_timeout)
    rest = responses(router)
    bundles = [r.body for _f, r in first + rest]
    assert all(isinstance(b, DataResponse) for b in bundles)
    unpacked = [decode_bundle(b.ip_packet) for b in bundles if isinstance(b, DataResponse)]
    assert unpacked == [packets[:2], packets[2:]]
    assert [f.seq for f, _ in first + rest] == [1, 2]
    client = router._clients[TAG_A]  # jump to the wrap
    client.seq = MAX_SEQ
    router.on_downlink(packets[0], 2.0)
    router.handle_timeout(2.0 + CFG.default_buffer_timeout)
    assert [f.seq for f, _ in responses(router)] == [1]


def _reply_fragments(payload_len: int) -> int:
    """The mixnet's reply cost, written out: 2 header bytes, 1 padding, 1,604 per packet."""
    return -(-(2 + payload_len + 1) // 1604)


def test_fragment_bundles_fill_reply_packets_and_hold_only_while_more_comes() -> None:
    """The local exit's departure: 9 full-size packets in one reply of 8 Sphinx packets;
    a partial bundle waits past upstream's timer only while the NAT has more for the
    client, then `bundle_hold` at most; one that saves nothing goes one per message."""
    more = [True]
    cfg = RouterConfig(bundle_fragments=8)
    router = IprRouter(
        random.Random(3),
        cfg,
        reply_surb_cost=_reply_fragments,
        downlink_pending=lambda _v4, _v6: more[0],
    )
    ok = connect(router, TAG_A, 5)
    packets = [udp_packet(IPv4Address("1.1.1.1"), ok.ipv4, 1392) for _ in range(12)]
    assert len(packets[0]) == 1420
    for p in packets[:9]:
        router.on_downlink(p, 1.0)
    router.settle(1.0)
    [(_frame, full)] = responses(router)  # the ninth filled it: nothing more fits
    assert isinstance(full.body, DataResponse)
    assert decode_bundle(full.body.ip_packet) == packets[:9]
    payload = LpFrame(5, MsgType.DATA, 1, full.encode()).encode()
    assert _reply_fragments(len(payload)) == 8
    for p in packets[9:11]:
        router.on_downlink(p, 1.01)
    router.handle_timeout(1.0 + cfg.default_buffer_timeout)  # more is coming: held
    assert responses(router) == []
    assert router.poll_deadline() == 1.01 + cfg.bundle_hold
    router.handle_timeout(1.01 + cfg.bundle_hold)
    alone = [r.body for _f, r in responses(router)]  # 2 packets take 2 fragments either way
    assert [decode_bundle(b.ip_packet) for b in alone if isinstance(b, DataResponse)] == [
        packets[9:10],
        packets[10:11],
    ]
    more[0] = False
    acks = [udp_packet(IPv4Address("1.1.1.1"), ok.ipv4, 12) for _ in range(3)]
    for p in acks:
        router.on_downlink(p, 2.0)
    router.settle(2.0)  # quiet since the last reply: at once, as upstream's timer
    [(_f, small)] = responses(router)
    assert isinstance(small.body, DataResponse) and decode_bundle(small.body.ip_packet) == acks
    for p in acks:
        router.on_downlink(p, 2.01)
    router.settle(2.01)  # within upstream's buffer timeout of that reply: bundled on
    assert responses(router) == []
    router.handle_timeout(2.0 + cfg.default_buffer_timeout)
    [(_f, small)] = responses(router)
    assert isinstance(small.body, DataResponse) and decode_bundle(small.body.ip_packet) == acks


def test_an_uploading_clients_acks_wait_for_the_hold() -> None:
    """Each reply spends a SURB that an upload has to send up: while the client's data
    messages are bundles of data segments, its ACKs are bundled for `bundle_hold` (not
    after one large packet alone: a ClientHello's answer is not held)."""
    cfg = RouterConfig(bundle_fragments=8)
    router = IprRouter(random.Random(3), cfg, reply_surb_cost=_reply_fragments)
    ok = connect(router, TAG_A, 5)
    out = IPv4Address("9.9.9.9")
    for t, (sizes, held) in enumerate((((1392, 1392), True), ((12,), False), ((1392,), False))):
        now = 2.0 + t
        data = DataRequest(encode_bundle([udp_packet(ok.ipv4, out, n) for n in sizes]))
        router.on_message(TAG_A, framed(5, data, seq=1), 2, now)
        assert len(router.pop_uplink()) == len(sizes)
        router.on_downlink(udp_packet(out, ok.ipv4, 12), now)
        router.settle(now)
        if held:
            assert responses(router) == [] and router.poll_deadline() == now + cfg.bundle_hold
            router.handle_timeout(now + cfg.bundle_hold)
            assert len(responses(router)) == 1
        else:  # quiet since the last reply: at once
            assert len(responses(router)) == 1


def test_without_bundling_no_bundle_crosses_a_fragment() -> None:
    """On a lossy path (the shell's `set_bundling(False)`) full-size packets go one per
    reply again, small ones still share a fragment."""
    cfg = RouterConfig(bundle_fragments=8)
    router = IprRouter(random.Random(3), cfg, reply_surb_cost=_reply_fragments)
    ok = connect(router, TAG_A, 5)
    router.set_bundling(False)
    packets = [udp_packet(IPv4Address("1.1.1.1"), ok.ipv4, 1392) for _ in range(9)]
    small = [udp_packet(IPv4Address("1.1.1.1"), ok.ipv4, 12) for _ in range(3)]
    for p in packets + small:
        router.on_downlink(p, 1.0)
    router.handle_timeout(1.0 + cfg.default_buffer_timeout)
    bodies = [r.body for _f, r in responses(router)]
    groups = [decode_bundle(b.ip_packet) for b in bodies if isinstance(b, DataResponse)]
    assert groups == [[p] for p in packets[:8]] + [[packets[8], *small]]  # one fragment
    router.set_bundling(True)
    for p in packets:
        router.on_downlink(p, 2.0)
    assert [len(decode_bundle(r.body.ip_packet)) for _f, r in responses(router)] == [9]  # type: ignore[union-attr]


def test_idle_clients_are_forgotten_silently_on_the_sweep() -> None:
    router = IprRouter(random.Random(3))
    ok = connect(router, TAG_A, 5, now=0.0)
    router.on_message(
        TAG_A,
        framed(5, DataRequest(encode_bundle([udp_packet(ok.ipv4, IPv4Address("9.9.9.9"))]))),
        2,
        25.0,
    )
    assert len(router.pop_uplink()) == 1
    for t in range(1, 20):
        router.handle_timeout(t * CFG.sweep_interval)
        if router.client_addresses(TAG_A) is None:
            break
    removed_at = t * CFG.sweep_interval
    assert removed_at - 25.0 >= CFG.idle_timeout > removed_at - 25.0 - CFG.sweep_interval
    assert router.pop_transmits() == []  # no notice
    router.on_message(
        TAG_A,
        framed(5, DataRequest(encode_bundle([udp_packet(ok.ipv4, IPv4Address("9.9.9.9"))]))),
        2,
        99.0,
    )
    assert router.pop_uplink() == [] and router.stats["unknown source"] == 1


def test_clients_without_downlink_for_5_min_are_removed_too() -> None:
    router = IprRouter(random.Random(3))
    ok = connect(router, TAG_A, 5, now=0.0)
    uplink = framed(5, DataRequest(encode_bundle([udp_packet(ok.ipv4, IPv4Address("9.9.9.9"))])))
    t = 0.0
    while router.client_addresses(TAG_A) is not None:
        t += CFG.sweep_interval
        router.on_message(TAG_A, uplink, 2, t)  # uplink keeps coming, nothing comes back
        router.handle_timeout(t)
        assert t < 2 * CFG.handler_idle_timeout
    assert CFG.handler_idle_timeout <= t < CFG.handler_idle_timeout + CFG.sweep_interval
    assert router.stats["quiet client removed"] == 1


def test_exit_policy_refusal_answers_with_info() -> None:
    router = IprRouter(random.Random(3), allow_destination=lambda ip, port: port != 53)
    ok = connect(router, TAG_A, 5)
    packet = udp_packet(ok.ipv4, IPv4Address("9.9.9.9"))
    router.on_message(TAG_A, framed(5, DataRequest(encode_bundle([packet])), seq=3), PLENTY, 1.0)
    assert router.pop_uplink() == []
    ((frame, response),) = responses(router)
    assert frame.seq == 0 and isinstance(response.body, InfoResponse)
    assert response.body.kind == InfoKind.EXIT_POLICY_FILTER_CHECK_FAILED
    info = parse_packet(packet)
    assert response.body.message == socket_text(info.destination, info.destination_port)


def test_ipv6_packets_are_routed_both_ways() -> None:
    router = IprRouter(random.Random(3))
    ok = connect(router, TAG_A, 5)
    up = udp_packet(ok.ipv6, IPv6Address("2001:4860::8888"))
    router.on_message(TAG_A, framed(5, DataRequest(encode_bundle([up]))), 2, 1.0)
    assert router.pop_uplink() == [up]
    down = udp_packet(IPv6Address("2001:4860::8888"), ok.ipv6)
    router.on_downlink(down, 1.0)
    router.handle_timeout(1.0 + CFG.default_buffer_timeout)
    ((_, response),) = responses(router)
    assert isinstance(response.body, DataResponse) and decode_bundle(response.body.ip_packet) == [
        down
    ]


def test_replies_wait_above_the_surb_reserve_then_flow_after_additional_surbs() -> None:
    router = IprRouter(random.Random(3))
    router.on_message(TAG_A, LpFrame(5, MsgType.OPEN, 0).encode(), 5, 0.0)
    router.on_message(TAG_A, framed(5, ConnectRequest(1, STAMP)), 2, 0.0)
    (request,) = router.pop_transmits()  # 7 SURBs: not above the reserve, so ask for more
    assert isinstance(request, RequestSurbs) and request.amount == CFG.surb_request_max
    assert router.queued_replies(TAG_A) == 1 and router.stats["stream open"] == 1
    router.handle_timeout(0.5)
    assert router.pop_transmits() == []  # one request at a time
    router.on_additional_surbs(TAG_A, request.amount, 1.0)
    reply, again = router.pop_transmits()
    assert isinstance(reply, ReplyToClient) and router.queued_replies(TAG_A) == 0
    assert isinstance(again, RequestSurbs)  # still below reserve + buffer
    assert router.surbs_available(TAG_A) == 7 - 1 + request.amount - 1 - 1


def test_surbs_spent_on_resends_are_debited_and_replenished() -> None:
    """The exit's mixnet client resends reply fragments through SURBs the router never
    handed out; the debit keeps the count true and asks for more when it runs low."""
    router = IprRouter(random.Random(3))
    router.on_message(TAG_A, framed(5, ConnectRequest(1, STAMP)), 80, 0.0)
    assert [type(t) for t in router.pop_transmits()] == [ReplyToClient]
    assert router.surbs_available(TAG_A) == 79
    router.on_surbs_spent(TAG_B, 3, 0.5)  # an unknown tag: nothing to debit
    router.on_surbs_spent(TAG_A, 10, 0.5)
    assert router.surbs_available(TAG_A) == 69 and router.pop_transmits() == []
    router.on_surbs_spent(TAG_A, 10, 0.6)
    (request,) = router.pop_transmits()  # 59 < reserve + buffer: ask, though nothing queued
    assert isinstance(request, RequestSurbs) and router.surbs_available(TAG_A) == 58
    router.on_surbs_spent(TAG_A, 500, 1.0)
    assert router.surbs_available(TAG_A) == 0 and router.pop_transmits() == []


def test_surbs_the_client_dropped_leave_the_account() -> None:
    router = IprRouter(random.Random(3))
    router.on_message(TAG_A, LpFrame(5, MsgType.OPEN, 0).encode(), 12, 0.0)
    router.on_surbs_dropped(TAG_A, 5)
    assert router.surbs_available(TAG_A) == 7
    router.on_surbs_dropped(TAG_A, 50)
    assert router.surbs_available(TAG_A) == 0
    router.on_surbs_dropped(TAG_B, 3)  # an account the router never had: nothing to do
    assert router.surbs_available(TAG_B) == 0


def test_unanswered_surb_request_is_repeated_after_the_wait() -> None:
    router = IprRouter(random.Random(3))
    router.on_message(TAG_A, framed(5, ConnectRequest(1, STAMP)), 3, 0.0)
    router.handle_timeout(0.1)
    assert [type(t) for t in router.pop_transmits()] == [RequestSurbs]
    router.handle_timeout(CFG.surb_rerequest_wait - 0.1)
    assert router.pop_transmits() == []
    router.handle_timeout(CFG.surb_rerequest_wait + 0.1)
    assert [type(t) for t in router.pop_transmits()] == [RequestSurbs]


def test_surbs_with_data_answer_an_open_request() -> None:
    """A request answered a few SURBs short, the rest coming with the client's data,
    is done: an account back at its reserve asks again at once, not 10 s later."""
    router = IprRouter(random.Random(3))
    router.on_message(TAG_A, framed(5, ConnectRequest(1, STAMP)), 3, 0.0)
    router.handle_timeout(0.1)
    (request,) = router.pop_transmits()
    assert isinstance(request, RequestSurbs)
    router.on_additional_surbs(TAG_A, request.amount - 15, 0.5)  # 15 short
    assert [type(t) for t in router.pop_transmits()] == [ReplyToClient]  # the queued answer
    router.on_message(TAG_A, LpFrame(5, MsgType.OPEN, 0).encode(), 6, 0.6)
    assert router.pop_transmits() == []
    router.on_surbs_spent(TAG_A, router.surbs_available(TAG_A) - 2, 1.0)
    assert [type(t) for t in router.pop_transmits()] == [RequestSurbs]


def _mutate(data: bytes, position: int, value: int) -> bytes:
    if not data:
        return data
    position %= len(data)
    return data[:position] + bytes([value]) + data[position + 1 :]


@settings(max_examples=scaled(300), deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            st.builds(
                lambda r, s: LpFrame(s, MsgType.DATA, 0, r.encode()).encode(),
                requests,
                st.integers(0, 3),
            ),
            st.builds(
                _mutate, requests.map(lambda r: r.encode()), st.integers(0, 99), st.integers(0, 255)
            ),
        ),
        max_size=12,
    ),
    st.integers(0, 20),
)
def test_any_input_is_handled_without_raising(payloads: list[bytes], surbs: int) -> None:
    router = IprRouter(random.Random(3))
    now = 0.0
    for payload in payloads:
        now += 1.0
        router.on_message(TAG_A, payload, surbs, now)
        router.on_downlink(payload, now)
        router.handle_timeout(now)
    for transmit in router.pop_transmits():
        if isinstance(transmit, ReplyToClient):
            payload = transmit.payload
            if payload[:2] == b"\x03\x00":
                payload = LpFrame.decode(payload).content
            assert IpPacketResponse.decode(payload).encode() == payload
    assert all(parse_packet(p) for p in router.pop_uplink())


@settings(max_examples=scaled(300), deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=120), st.integers(0, 119), st.integers(0, 255)),
        max_size=10,
    ),
)
def test_mangled_client_packets_are_handled(packets: list[tuple[bytes, int, int]]) -> None:
    """Data from a connected client: its real source address spliced into mangled packets."""
    router = IprRouter(random.Random(3))
    ok = connect(router, TAG_A, 5)
    for i, (raw, position, value) in enumerate(packets):
        packet = bytearray(udp_packet(ok.ipv4, IPv4Address("9.9.9.9"), len(raw)))
        packet[28:] = raw
        packet[position % len(packet)] = value
        bundle = encode_bundle([bytes(packet)])
        cut = bundle[: len(bundle) - (value % 3)]
        router.on_message(TAG_A, framed(5, DataRequest(cut), seq=i + 1), 2, 1.0 + i)
        router.on_downlink(bytes(packet), 1.0 + i)
        router.handle_timeout(1.0 + i)
    for sent in router.pop_uplink():
        assert parse_packet(sent).source == ok.ipv4
    for transmit in router.pop_transmits():
        if isinstance(transmit, ReplyToClient):
            assert LpFrame.decode(transmit.payload).stream_id == 5
