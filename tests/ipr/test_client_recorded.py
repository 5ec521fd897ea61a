"""Our client logic, given the recorded stream id, request id and time, sends the recorded bytes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from smolmix_cli.ipr.client_logic import (
    ClientConfig,
    ClientState,
    Connected,
    ConnectFailed,
    IprClient,
    PacketsReceived,
    SendAdditionalSurbs,
    SendToIpr,
    version_for_exit,
)
from smolmix_cli.ipr.lp_frame import LpFrame, MsgType
from smolmix_cli.ipr.messages import V9, V10, ConnectRequest, IpPacketRequest, IpPacketResponse
from tests.ipr.recorded import (
    EXCHANGE,
    MESSAGES,
    STAGE1,
    STAGE2,
    STAGE3,
    V10_VARIANT,
    sender_tag_and_frame,
    with_request_id,
)
from tests.ipr.scripted_rng import ScriptedRandom
from tests.vectors import h

MTU_UNREPORTED = EXCHANGE["mtu"]["v9_mtu_unreported"]["implied_ip_mtu"]


def recorded_connect(lp_payload: bytes) -> tuple[int, int, datetime]:
    """Stream id, request id and wall clock of a recorded ConnectRequest frame."""
    frame = LpFrame.decode(lp_payload)
    request = IpPacketRequest.decode(frame.content)
    assert isinstance(request.body, ConnectRequest)
    return frame.stream_id, request.body.request_id, request.body.timestamp.to_datetime()


def sends(client: IprClient) -> list[SendToIpr]:
    out = client.pop_transmits()
    assert all(isinstance(t, SendToIpr) for t in out)
    return [t for t in out if isinstance(t, SendToIpr)]


# The published client's SURB counts: 2 on every data message (ours sizes them).
PUBLISHED = ClientConfig(surb_sizing=False, data_reply_surbs=2)


def main_client() -> IprClient:
    stream, request_id, wall = recorded_connect(h(STAGE1["connect_request"]["lp_frame_hex"]))
    client = IprClient(ScriptedRandom(u64s=[stream, request_id]), PUBLISHED)
    client.connect(0.0, wall)
    return client


def test_connect_messages_match_the_recording() -> None:
    client = main_client()
    sent = sends(client)
    recorded = [STAGE1["open"], STAGE1["connect_request"]]
    assert [s.payload for s in sent] == [h(r["lp_frame_hex"]) for r in recorded]
    assert [s.reply_surbs for s in sent] == [
        sender_tag_and_frame(r["nym_message_hex"])[1] for r in recorded
    ]
    assert client.state is ClientState.CONNECTING


def test_connect_messages_match_the_earlier_probe() -> None:
    open_msg, connect_msg = MESSAGES["messages"]
    stream, request_id, wall = recorded_connect(h(connect_msg["parsed"]["data_after_surbs"]))
    client = IprClient(ScriptedRandom(u64s=[stream, request_id]))
    client.connect(0.0, wall)
    sent = sends(client)
    assert [s.payload for s in sent] == [
        h(open_msg["parsed"]["data_after_surbs"]),
        h(connect_msg["parsed"]["data_after_surbs"]),
    ]
    assert [s.reply_surbs for s in sent] == [
        open_msg["parsed"]["surb_count_u16"],
        connect_msg["parsed"]["surb_count_u16"],
    ]


def test_recorded_success_connects_with_default_mtu() -> None:
    client = main_client()
    client.pop_transmits()
    client.on_reply(h(STAGE2["message_data_hex"]), 0.1)
    (event,) = client.pop_events()
    response = IpPacketResponse.decode(h(STAGE2["ipr_response_hex"]))
    assert isinstance(event, Connected)
    assert (event.ipv4, event.ipv6) == (client.ipv4, client.ipv6)
    assert event.ipv4 == getattr(response.body, "ipv4")  # noqa: B009
    assert event.mtu == MTU_UNREPORTED and not event.mtu_reported and event.version == V9
    assert client.state is ClientState.CONNECTED


def _stage3_uplink() -> list[dict[str, Any]]:
    return [e for e in STAGE3 if e["dir"] == "client->IPR"]


def test_stage3_uplink_messages_and_downlink_packets() -> None:
    client = main_client()
    client.pop_transmits()
    client.on_reply(h(STAGE2["message_data_hex"]), 0.1)
    client.pop_events()
    now = 0.1
    for entry in STAGE3:
        now += 0.5
        packets = [h(b["packet_hex"]) for b in entry["bundle"]]
        if entry["dir"] == "client->IPR":
            (packet,) = packets
            client.send_packet(packet, now)
            (sent,) = sends(client)
            assert sent.payload == h(entry["lp_frame_header_hex"]) + h(entry["ipr_request_hex"])
            assert sent.reply_surbs == entry["nym_message"]["surb_count"]
        else:
            client.on_reply(h(entry["lp_frame_header_hex"]) + h(entry["ipr_response_hex"]), now)
            assert client.pop_events() == [PacketsReceived(tuple(packets))]
    assert client.dropped == 0


def test_v8_version_byte_is_accepted_on_the_v9_path() -> None:
    client = main_client()
    client.pop_transmits()
    _, request_id, _ = recorded_connect(h(STAGE1["connect_request"]["lp_frame_hex"]))
    body = with_request_id(
        EXCHANGE["variants"]["response_version_8"]["ipr_response_hex"], request_id
    )
    header = h(STAGE2["lp_frame_header_hex"])
    client.on_reply(header + body, 0.1)
    (event,) = client.pop_events()
    assert isinstance(event, Connected) and event.mtu == MTU_UNREPORTED


def test_connect_failure_is_reported() -> None:
    client = main_client()
    client.pop_transmits()
    _, request_id, _ = recorded_connect(h(STAGE1["connect_request"]["lp_frame_hex"]))
    body = with_request_id(EXCHANGE["variants"]["connect_failure"]["ipr_response_hex"], request_id)
    client.on_reply(h(STAGE2["lp_frame_header_hex"]) + body, 0.1)
    (event,) = client.pop_events()
    assert isinstance(event, ConnectFailed) and event.reason == "NO_AVAILABLE_IP"
    assert client.state is ClientState.FAILED


def v10_client() -> tuple[IprClient, int, int]:
    reply = LpFrame.decode(h(V10_VARIANT["accepted_reply_message_data_hex"]))
    request = IpPacketRequest.decode(h(V10_VARIANT["connect_request_hex"]))
    assert isinstance(request.body, ConnectRequest)
    wall = request.body.timestamp.to_datetime()
    client = IprClient(ScriptedRandom(u64s=[reply.stream_id, request.body.request_id]))
    client.connect(0.0, wall, version=V10)
    return client, reply.stream_id, request.body.request_id


def test_v10_connect_request_and_reply_with_mtu() -> None:
    client, stream, _ = v10_client()
    open_msg, connect_msg = sends(client)
    assert open_msg.payload == LpFrame(stream, MsgType.OPEN, 0).encode()
    frame = LpFrame.decode(connect_msg.payload)
    assert (frame.msg_type, frame.seq) == (MsgType.DATA, 0)
    assert frame.content == h(V10_VARIANT["connect_request_hex"])
    client.on_reply(h(V10_VARIANT["accepted_reply_message_data_hex"]), 0.1)
    (event,) = client.pop_events()
    response = IpPacketResponse.decode(h(V10_VARIANT["accepted_reply_ipr_response_hex"]))
    assert isinstance(event, Connected) and event.mtu_reported and event.version == V10
    assert event.mtu == getattr(response.body, "mtu")  # noqa: B009
    assert event.mtu == EXCHANGE["mtu"]["v10_mtu_1280_reported"]["implied_ip_mtu"]


def test_v9_shaped_reply_to_v10_is_ignored_then_v9_after_15_s() -> None:
    client, stream, request_id = v10_client()
    client.pop_transmits()
    template = V10_VARIANT["v9_shaped_reply_to_v10_request"]["reply_ipr_response_hex"]
    reply = LpFrame(stream, MsgType.DATA, 0, with_request_id(template, request_id)).encode()
    client.on_reply(reply, 0.1)
    assert client.pop_events() == [] and client.dropped == 1
    fallback = ClientConfig().v10_fallback_after
    assert client.poll_deadline() == fallback
    client.handle_timeout(fallback - 0.001)
    assert client.pop_transmits() == []
    client.handle_timeout(fallback)
    (retry,) = sends(client)
    frame = LpFrame.decode(retry.payload)
    assert (frame.stream_id, frame.msg_type, frame.seq) == (stream, MsgType.DATA, 0)
    request = IpPacketRequest.decode(frame.content)
    assert request.version == V9 and request.request_id != request_id
    assert retry.reply_surbs == 2  # the connect brings what the exit needs to answer
    assert request.request_id is not None
    client.on_reply(
        LpFrame(stream, MsgType.DATA, 0, with_request_id(template, request.request_id)).encode(),
        fallback + 0.5,
    )
    (event,) = client.pop_events()
    assert isinstance(event, Connected) and event.version == V9 and not event.mtu_reported


def test_v10_tagged_reply_without_mtu_connects_with_the_fallback_mtu() -> None:
    """An exit that tags its success v10 but predates the mtu field (v9 layout) is accepted
    at once with MTU 1420 rather than left to the 15 s v9 fallback (upstream connect_v10)."""
    client, stream, request_id = v10_client()
    client.pop_transmits()
    template = V10_VARIANT["v9_shaped_reply_to_v10_request"]["reply_ipr_response_hex"]
    content = with_request_id(template, request_id)
    assert content[0] == V9
    tagged_v10 = bytes([V10]) + content[1:]
    client.on_reply(LpFrame(stream, MsgType.DATA, 0, tagged_v10).encode(), 0.1)
    (event,) = client.pop_events()
    assert isinstance(event, Connected) and not event.mtu_reported
    assert event.mtu == ClientConfig().default_mtu == MTU_UNREPORTED == 1420
    assert client.state is ClientState.CONNECTED and client.dropped == 0


def test_v10_tagged_reply_that_is_no_connect_success_is_dropped() -> None:
    client, stream, request_id = v10_client()
    client.pop_transmits()
    template = V10_VARIANT["v9_shaped_reply_to_v10_request"]["reply_ipr_response_hex"]
    truncated = bytes([V10]) + with_request_id(template, request_id)[1:-3]
    client.on_reply(LpFrame(stream, MsgType.DATA, 0, truncated).encode(), 0.1)
    assert client.pop_events() == [] and client.dropped == 1
    assert client.state is ClientState.CONNECTING


def test_v10_starts_at_release_1_37_0() -> None:
    assert version_for_exit("1.36.9") == V9
    assert version_for_exit("1.37.0") == V10
    assert version_for_exit("v1.40.1-rc") == V10


def test_exit_version_choice_from_the_directory() -> None:
    served = V10_VARIANT["described_json_served"]["data"][0]["description"]["build_information"]
    assert version_for_exit(served["build_version"]) == V10
    stage2_console = " ".join(line["line"] for line in EXCHANGE["stage2_client_console"])
    assert "defaulting to v9" in stage2_console
    assert version_for_exit(None) == V9
    triggering, not_triggering = re.findall(r"'(\d+\.\d+\.\d+)'", V10_VARIANT["trigger"])
    assert version_for_exit(triggering) == V10
    assert version_for_exit(not_triggering) == V9


def test_recorded_surb_request_gets_one_answer_of_the_recorded_size() -> None:
    variant = EXCHANGE["variants"]["surb_request_exchange"]
    requested = next(f for f in variant["ipr_surb_request_fields"] if f["field"] == "amount")
    answered = next(
        f for f in variant["client_answer"]["envelope_fields"] if f["field"] == "surb_count"
    )
    client = main_client()
    client.pop_transmits()
    client.on_reply(h(STAGE2["message_data_hex"]), 0.1)
    client.on_surb_request(requested["value"], 0.2)
    assert client.pop_transmits() == [SendAdditionalSurbs(answered["value"])]
