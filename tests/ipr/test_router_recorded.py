"""Our exit logic, fed what the official client sent, answers with the bytes the client accepted."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

from smolmix_cli.ipr.bundle import decode_bundle
from smolmix_cli.ipr.lp_frame import LpFrame, MsgType
from smolmix_cli.ipr.messages import (
    V8,
    ConnectRequest,
    ConnectSuccess,
    DataRequest,
    IpPacketRequest,
    IpPacketResponse,
)
from smolmix_cli.ipr.router_logic import (
    FIRST_HOST,
    TUN_IPV4,
    IprRouter,
    ReplyToClient,
    RequestSurbs,
    RouterConfig,
    address_pair,
)
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.message.message import ReplyContentTag, ReplyMessage, encode_message
from tests.ipr.recorded import (
    EXCHANGE,
    STAGE1,
    STAGE2,
    STAGE3,
    V10_VARIANT,
    sender_tag_and_frame,
    with_request_id,
)
from tests.ipr.scripted_rng import ScriptedRandom
from tests.vectors import h

BUFFER = RouterConfig().default_buffer_timeout


def host_number(ipv4: IPv4Address) -> int:
    """The allocator's n for a recorded address (10.0.n>>8.n&0xff)."""
    n = int(ipv4) - int(address_pair(0)[0])
    assert address_pair(n)[0] == ipv4
    return n


def recorded_pair_n() -> int:
    response = IpPacketResponse.decode(h(STAGE2["ipr_response_hex"]))
    assert isinstance(response.body, ConnectSuccess)
    return host_number(response.body.ipv4)


def replies(router: IprRouter) -> list[bytes]:
    return [t.payload for t in router.pop_transmits() if isinstance(t, ReplyToClient)]


def connect_main_capture(router: IprRouter) -> tuple[bytes, list[bytes]]:
    tag, open_surbs, open_frame = sender_tag_and_frame(STAGE1["open"]["nym_message_hex"])
    router.on_message(tag, open_frame.encode(), open_surbs, now=0.0)
    first = router.pop_transmits()
    tag_b, surbs, frame = sender_tag_and_frame(STAGE1["connect_request"]["nym_message_hex"])
    assert tag_b == tag
    router.on_message(tag, frame.encode(), surbs, now=0.1)
    return tag, [t.payload for t in first if isinstance(t, ReplyToClient)] + replies(router)


def test_open_alone_gets_no_answer_and_connect_gets_the_recorded_success() -> None:
    router = IprRouter(ScriptedRandom(ints=[recorded_pair_n()]))
    tag, sent = connect_main_capture(router)
    assert sent == [h(STAGE2["message_data_hex"])]
    assert router.stats["stream open"] == 1
    pair = router.client_addresses(tag)
    assert pair is not None and pair == address_pair(recorded_pair_n())


def test_stage3_uplink_packets_and_downlink_replies_reproduce_the_recording() -> None:
    router = IprRouter(ScriptedRandom(ints=[recorded_pair_n()]))
    tag, _ = connect_main_capture(router)
    now = 1.0
    for entry in STAGE3:
        now += 1.0
        packets = [h(b["packet_hex"]) for b in entry["bundle"]]
        if entry["dir"] == "client->IPR":
            payload = h(entry["lp_frame_header_hex"]) + h(entry["ipr_request_hex"])
            router.on_message(tag, payload, entry["nym_message"]["surb_count"], now)
            assert router.pop_uplink() == packets
            assert replies(router) == []
        else:
            for packet in packets:
                router.on_downlink(packet, now)
            assert replies(router) == []  # bundled until the flush timer
            deadline = router.poll_deadline()
            assert deadline is not None and deadline <= now + BUFFER
            router.handle_timeout(now + BUFFER)
            expected = h(entry["lp_frame_header_hex"]) + h(entry["ipr_response_hex"])
            assert replies(router) == [expected]
    assert sum(router.stats.values()) == router.stats["stream open"]


def test_v10_connect_gets_the_recorded_reply_with_mtu() -> None:
    expected = LpFrame.decode(h(V10_VARIANT["accepted_reply_message_data_hex"]))
    response = IpPacketResponse.decode(expected.content)
    assert isinstance(response.body, ConnectSuccess) and response.body.mtu is not None
    router = IprRouter(
        ScriptedRandom(ints=[host_number(response.body.ipv4)]),
        RouterConfig(mtu=response.body.mtu),
    )
    request = LpFrame(expected.stream_id, MsgType.DATA, 0, h(V10_VARIANT["connect_request_hex"]))
    router.on_message(bytes(16), request.encode(), 12, now=0.0)
    assert replies(router) == [h(V10_VARIANT["accepted_reply_message_data_hex"])]


def test_surb_request_follows_the_connect_success() -> None:
    """With the client's 12 SURBs the success goes out at once; then the exit asks for more."""
    router = IprRouter(ScriptedRandom(ints=[recorded_pair_n()]))
    tag, open_surbs, open_frame = sender_tag_and_frame(STAGE1["open"]["nym_message_hex"])
    router.on_message(tag, open_frame.encode(), open_surbs, 0.0)
    _, surbs, frame = sender_tag_and_frame(STAGE1["connect_request"]["nym_message_hex"])
    router.on_message(tag, frame.encode(), surbs, 0.1)
    transmits = router.pop_transmits()
    assert [type(t) for t in transmits] == [ReplyToClient, RequestSurbs]
    request = transmits[1]
    assert isinstance(request, RequestSurbs)
    fields = {
        f["field"]: f
        for f in EXCHANGE["variants"]["surb_request_exchange"]["ipr_surb_request_fields"]
    }
    assert request.amount == fields["amount"]["value"]
    # what the mixnet layer makes of it: the recorded SurbRequest message, byte for byte
    recipient = Recipient.from_bytes(
        b"".join(h(f["hex"]) for name, f in fields.items() if name.startswith("recipient."))
    )
    message = ReplyMessage(ReplyContentTag.SURB_REQUEST, recipient=recipient, amount=request.amount)
    recorded = EXCHANGE["variants"]["surb_request_exchange"]["ipr_surb_request_nym_message_hex"]
    assert encode_message(message) == h(recorded)
    assert router.surbs_available(tag) == open_surbs + surbs - 2


def _recorded_connect_request() -> IpPacketRequest:
    return IpPacketRequest.decode(h(STAGE1["connect_request"]["ipr_request_hex"]))


def test_raw_v8_connect_gets_the_recorded_v8_reply() -> None:
    request = _recorded_connect_request()
    assert isinstance(request.body, ConnectRequest)
    router = IprRouter(ScriptedRandom(ints=[recorded_pair_n()]))
    router.on_message(bytes(16), IpPacketRequest(V8, request.body).encode(), 12, 0.0)
    template = EXCHANGE["variants"]["response_version_8"]["ipr_response_hex"]
    assert replies(router) == [with_request_id(template, request.body.request_id)]


def test_no_free_address_gives_the_recorded_failure() -> None:
    request = _recorded_connect_request()
    assert request.request_id is not None
    tun_host = host_number(TUN_IPV4)
    attempts = RouterConfig().allocation_attempts
    router = IprRouter(ScriptedRandom(ints=[tun_host] * attempts))
    frame = LpFrame(1, MsgType.DATA, 0, request.encode())
    router.on_message(bytes(16), frame.encode(), 12, 0.0)
    (reply,) = replies(router)
    template = EXCHANGE["variants"]["connect_failure"]["ipr_response_hex"]
    assert LpFrame.decode(reply).content == with_request_id(template, request.request_id)
    assert tun_host < FIRST_HOST


def _client_packets() -> list[tuple[dict[str, Any], list[bytes]]]:
    return [
        (e, [h(b["packet_hex"]) for b in e["bundle"]]) for e in STAGE3 if e["dir"] == "client->IPR"
    ]


def test_uplink_from_an_unallocated_or_foreign_source_is_dropped() -> None:
    router = IprRouter(ScriptedRandom(ints=[recorded_pair_n()]))
    tag, _ = connect_main_capture(router)
    entry, packets = _client_packets()[0]
    payload = h(entry["lp_frame_header_hex"]) + h(entry["ipr_request_hex"])
    router.on_message(bytes(16), payload, 2, 1.0)  # another sender tag, our client's source IP
    assert router.pop_uplink() == [] and router.stats["spoofed source"] == 1
    request = IpPacketRequest.decode(h(entry["ipr_request_hex"]))
    assert isinstance(request.body, DataRequest)
    packet = bytearray(decode_bundle(request.body.ip_packets)[0])
    packet[15] ^= 0xFF  # a source nobody was given
    forged = IpPacketRequest(request.version, DataRequest(bytes([0, len(packet)]) + bytes(packet)))
    router.on_message(tag, LpFrame(1, MsgType.DATA, 9, forged.encode()).encode(), 2, 1.0)
    assert router.pop_uplink() == [] and router.stats["unknown source"] == 1
    router.on_message(tag, payload, 2, 1.0)
    assert router.pop_uplink() == packets
