"""Every IPR message the official client sent or accepted, decoded field by field by our codecs."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import IPv4Address
from typing import Any

import pytest

from smolmix_cli.ipr.bincode import Writer
from smolmix_cli.ipr.bundle import LENGTH_PREFIX_SIZE, BundleDecoder, decode_bundle
from smolmix_cli.ipr.errors import MalformedIprMessage
from smolmix_cli.ipr.lp_frame import HEADER_SIZE, FrameKind, LpFrame, MsgType, is_stream_frame
from smolmix_cli.ipr.messages import (
    ConnectFailure,
    ConnectFailureReason,
    ConnectRequest,
    ConnectSuccess,
    ControlRequestKind,
    ControlResponseKind,
    DataRequest,
    DataResponse,
    IpPacketRequest,
    IpPacketResponse,
    RequestKind,
    ServiceProviderType,
    utc_timestamp,
)
from tests.ipr.recorded import (
    EXCHANGE,
    MESSAGES,
    STAGE1,
    STAGE2,
    STAGE3,
    V10_VARIANT,
    check_slices,
    fields_by_name,
    sender_tag_and_frame,
    value_of,
    with_request_id,
)
from tests.vectors import h

# --- helpers: what our decoded objects say each recorded field is ---------------------------


def lp_values(frame: LpFrame, raw: bytes) -> dict[str, Any]:
    return {
        "kind": FrameKind.SPHINX_STREAM,
        "stream_id": frame.stream_id,
        "msg_type": frame.msg_type,
        "sequence_num": frame.seq,
        "reserved": raw[HEADER_SIZE - 1],
    }


def check_lp_fields(raw: bytes, fields: list[dict[str, Any]]) -> LpFrame:
    frame = LpFrame.decode(raw)
    assert is_stream_frame(raw)
    ours = lp_values(frame, raw)
    for field in fields:
        if field["field"] == "content":
            assert len(frame.content) == field["len"]
            continue
        assert ours[field["field"]] == value_of(field["value"]), field
    header_fields = [f for f in fields if f["field"] != "content"]
    check_slices(raw[:HEADER_SIZE], header_fields)
    assert frame.encode() == raw
    return frame


def request_values(request: IpPacketRequest) -> dict[str, Any]:
    body = request.body
    values: dict[str, Any] = {
        "protocol.version": request.version,
        "protocol.service_provider_type": ServiceProviderType.IP_PACKET_ROUTER,
        "data": RequestKind.DATA if isinstance(body, DataRequest) else RequestKind.CONTROL,
    }
    if isinstance(body, DataRequest):
        values["ip_packets length"] = len(body.ip_packets)
        values["ip_packets (bundle)"] = "u16 BE length || packet, repeated"
        return values
    assert isinstance(body, ConnectRequest)
    ts = body.timestamp
    values |= {
        "trailing bytes": "none",
        "control": ControlRequestKind.CONNECT,
        "request_id": body.request_id,
        "buffer_timeout": body.buffer_timeout,
        "timestamp.year": ts.year,
        "timestamp.ordinal": ts.ordinal,
        "timestamp.hour": ts.hour,
        "timestamp.minute": ts.minute,
        "timestamp.second": ts.second,
        "timestamp.nanosecond": ts.nanosecond,
        "timestamp.offset_h_m_s": (ts.offset_hours, ts.offset_minutes, ts.offset_seconds),
    }
    return values


def check_request_fields(raw: bytes, fields: list[dict[str, Any]]) -> IpPacketRequest:
    request = IpPacketRequest.decode(raw)
    ours = request_values(request)
    assert set(ours) == {f["field"] for f in fields}
    for field in fields:
        assert ours[field["field"]] == value_of(field["value"]), field
    assert request.encode() == raw
    check_slices(raw, fields)
    return request


def response_values(response: IpPacketResponse) -> dict[str, Any]:
    body = response.body
    values: dict[str, Any] = {
        "version": response.version,
        "data": RequestKind.DATA if isinstance(body, DataResponse) else RequestKind.CONTROL,
    }
    if isinstance(body, DataResponse):
        values["ip_packet length"] = len(body.ip_packet)
        values["ip_packet (bundle)"] = None
        return values
    assert isinstance(body, ConnectSuccess)
    values |= {
        "control": ControlResponseKind.CONNECT,
        "request_id": body.request_id,
        "reply": 0,
        "ips.ipv4": body.ipv4,
        "ips.ipv6": body.ipv6,
    }
    if body.mtu is not None:
        values["mtu (v10 only)"] = body.mtu
    return values


def check_response_fields(raw: bytes, fields: list[dict[str, Any]]) -> IpPacketResponse:
    response = IpPacketResponse.decode(raw)
    ours = response_values(response)
    assert set(ours) == {f["field"] for f in fields}
    for field in fields:
        assert ours[field["field"]] == value_of(field.get("value")), field
    assert response.encode() == raw
    check_slices(raw, fields)
    return response


def check_bundle(bundle_bytes: bytes, recorded: list[dict[str, Any]]) -> None:
    """Every packet boundary: prefix position, packet bytes, the IPv4 addresses inside."""
    packets = decode_bundle(bundle_bytes)
    assert len(packets) == len(recorded)
    pos = 0
    for packet, entry in zip(packets, recorded, strict=True):
        prefix = bundle_bytes[pos : pos + LENGTH_PREFIX_SIZE]
        assert prefix == h(entry["length_prefix_hex"])
        assert packet == h(entry["packet_hex"])
        decoded = entry["decoded"]
        assert len(packet) == decoded["len"] == int.from_bytes(prefix, "big")
        assert packet[0] >> 4 == decoded["ip_version"]
        assert IPv4Address(packet[12:16]) == IPv4Address(decoded["src"])
        assert IPv4Address(packet[16:20]) == IPv4Address(decoded["dst"])
        pos += LENGTH_PREFIX_SIZE + len(packet)
    assert pos == len(bundle_bytes)


# --- stage 1: the Open frame and the ConnectRequest -----------------------------------------


def test_open_message_is_an_empty_open_frame() -> None:
    recorded = STAGE1["open"]
    _tag, surbs, frame = sender_tag_and_frame(recorded["nym_message_hex"])
    assert frame.msg_type is MsgType.OPEN and frame.seq == 0 and frame.content == b""
    assert surbs == fields_by_name(recorded["envelope_fields"])["surb_count"]["value"]
    check_lp_fields(h(recorded["lp_frame_hex"]), recorded["lp_frame_fields"])


def test_connect_request_lp_and_bincode_fields() -> None:
    recorded = STAGE1["connect_request"]
    _tag, _surbs, frame = sender_tag_and_frame(recorded["nym_message_hex"])
    assert frame.encode() == h(recorded["lp_frame_hex"])
    check_lp_fields(h(recorded["lp_frame_hex"]), recorded["lp_frame_fields"])
    assert frame.content == h(recorded["ipr_request_hex"])
    request = check_request_fields(frame.content, recorded["ipr_request_fields"])
    assert isinstance(request.body, ConnectRequest)
    stamp = request.body.timestamp.to_datetime()
    assert stamp.timetuple().tm_yday == request.body.timestamp.ordinal


def test_both_connect_messages_share_stream_and_sender_tag() -> None:
    tag_a, _, open_frame = sender_tag_and_frame(STAGE1["open"]["nym_message_hex"])
    tag_b, _, connect_frame = sender_tag_and_frame(STAGE1["connect_request"]["nym_message_hex"])
    assert tag_a == tag_b and open_frame.stream_id == connect_frame.stream_id


@pytest.mark.parametrize("recorded", MESSAGES["messages"], ids=lambda m: m["set_id"])
def test_ipr_messages_file_payloads(recorded: dict[str, Any]) -> None:
    """The earlier probe's two messages: an empty Open, then a v9 ConnectRequest in Data seq 0."""
    _tag, surbs, frame = sender_tag_and_frame(recorded["nym_message"])
    assert surbs == recorded["parsed"]["surb_count_u16"]
    assert frame.encode() == h(recorded["parsed"]["data_after_surbs"])
    if frame.msg_type is MsgType.OPEN:
        assert frame.content == b"" and frame.seq == 0
        return
    assert frame.seq == 0
    request = IpPacketRequest.decode(frame.content)
    assert isinstance(request.body, ConnectRequest) and request.version == 9
    assert request.body.buffer_timeout is None
    assert request.body.timestamp.nanosecond % 1_000_000 == 0  # whole milliseconds
    assert request.encode() == frame.content


# --- stage 2: the ConnectSuccess ----------------------------------------------------------


def test_connect_success_v9_fields() -> None:
    raw = h(STAGE2["message_data_hex"])
    frame = check_lp_fields(raw, STAGE2["lp_frame_fields"])
    assert frame.encode()[:HEADER_SIZE] == h(STAGE2["lp_frame_header_hex"])
    assert frame.content == h(STAGE2["ipr_response_hex"])
    response = check_response_fields(frame.content, STAGE2["ipr_response_fields"])
    request = IpPacketRequest.decode(h(STAGE1["connect_request"]["ipr_request_hex"]))
    assert response.request_id == request.request_id


def test_connect_success_v10_fields() -> None:
    request = check_request_fields(
        h(V10_VARIANT["connect_request_hex"]), V10_VARIANT["connect_request_fields"]
    )
    raw = h(V10_VARIANT["accepted_reply_message_data_hex"])
    frame = LpFrame.decode(raw)
    assert frame.msg_type is MsgType.DATA and frame.seq == 0
    assert frame.content == h(V10_VARIANT["accepted_reply_ipr_response_hex"])
    response = check_response_fields(frame.content, V10_VARIANT["accepted_reply_fields"])
    assert isinstance(response.body, ConnectSuccess)
    assert response.request_id == request.request_id
    assert EXCHANGE["mtu"]["v10_mtu_1280_reported"]["implied_ip_mtu"] == response.body.mtu


def test_v10_connect_success_without_mtu_is_refused_as_v10() -> None:
    """A v9-shaped reply carrying byte 10 does not parse as v10 (the client ignored it)."""
    request = IpPacketRequest.decode(h(V10_VARIANT["connect_request_hex"]))
    assert request.request_id is not None
    template = V10_VARIANT["v9_shaped_reply_to_v10_request"]["reply_ipr_response_hex"]
    v9_shaped = with_request_id(template, request.request_id)
    assert IpPacketResponse.decode(v9_shaped).version == 9
    with pytest.raises(MalformedIprMessage):
        IpPacketResponse.decode(bytes([10]) + v9_shaped[1:])


def test_connect_failure_variant() -> None:
    request_id = IpPacketRequest.decode(h(STAGE1["connect_request"]["ipr_request_hex"])).request_id
    assert request_id is not None
    raw = with_request_id(EXCHANGE["variants"]["connect_failure"]["ipr_response_hex"], request_id)
    response = IpPacketResponse.decode(raw)
    assert response.body == ConnectFailure(request_id, ConnectFailureReason.NO_AVAILABLE_IP)
    assert response.encode() == raw


def test_response_version_8_variant_parses_as_v9_layout() -> None:
    request_id = IpPacketRequest.decode(h(STAGE1["connect_request"]["ipr_request_hex"])).request_id
    assert request_id is not None
    raw = with_request_id(
        EXCHANGE["variants"]["response_version_8"]["ipr_response_hex"], request_id
    )
    response = IpPacketResponse.decode(raw)
    assert response.version == 8 and isinstance(response.body, ConnectSuccess)
    assert response.body == IpPacketResponse.decode(h(STAGE2["ipr_response_hex"])).body
    assert IpPacketResponse.decode(raw, layout_version=9) == response


# --- stage 3: every IP-level message, both ways ---------------------------------------------


@pytest.mark.parametrize("index", range(len(STAGE3)), ids=lambda i: f"{i}-{STAGE3[i]['dir']}")
def test_stage3_message(index: int) -> None:
    entry = STAGE3[index]
    header = h(entry["lp_frame_header_hex"])
    if entry["dir"] == "client->IPR":
        payload = h(entry["ipr_request_hex"])
        frame = check_lp_fields(header + payload, entry["lp_fields"])
        request = check_request_fields(frame.content, entry["ipr_request_fields"])
        assert isinstance(request.body, DataRequest)
        check_bundle(request.body.ip_packets, entry["bundle"])
    else:
        payload = h(entry["ipr_response_hex"])
        frame = check_lp_fields(header + payload, entry["lp_fields"])
        response = check_response_fields(frame.content, entry["ipr_response_fields"])
        assert isinstance(response.body, DataResponse)
        check_bundle(response.body.ip_packet, entry["bundle"])


def test_stage3_incremental_decoder_agrees_byte_by_byte() -> None:
    for entry in STAGE3:
        key = "ipr_request_hex" if entry["dir"] == "client->IPR" else "ipr_response_hex"
        body = IpPacketRequest if key == "ipr_request_hex" else IpPacketResponse
        decoded = body.decode(h(entry[key])).body
        bundle = decoded.ip_packets if isinstance(decoded, DataRequest) else decoded.ip_packet  # type: ignore[union-attr]
        decoder = BundleDecoder()
        packets = [p for i in range(len(bundle)) for p in decoder.feed(bundle[i : i + 1])]
        decoder.finish()
        assert packets == [h(b["packet_hex"]) for b in entry["bundle"]]


def test_stage3_sequence_numbers() -> None:
    """Client data seq 1, 2, …; the IPR's data replies seq 1, 2, … (control replies used 0)."""
    client = [
        LpFrame.decode(h(e["lp_frame_header_hex"])).seq for e in STAGE3 if e["dir"] == "client->IPR"
    ]
    ipr = [
        LpFrame.decode(h(e["lp_frame_header_hex"])).seq for e in STAGE3 if e["dir"] == "IPR->client"
    ]
    assert client == list(range(1, len(client) + 1))
    assert ipr == list(range(1, len(ipr) + 1))


# --- where the recording corrects the spec (regressions at codec level) -----------------------


def test_day_of_year_above_250_takes_three_bytes() -> None:
    """Spec §8.2's 29-byte ConnectRequest holds only up to day 250; day 328 made it 31 bytes."""
    recorded = STAGE1["connect_request"]
    fields = fields_by_name(recorded["ipr_request_fields"])
    ordinal = fields["timestamp.ordinal"]
    w = Writer()
    w.u16(ordinal["value"])
    assert w.getvalue() == h(ordinal["hex"]) and ordinal["len"] == len(w.getvalue())
    request = IpPacketRequest.decode(h(recorded["ipr_request_hex"]))
    lp_content = next(f for f in recorded["lp_frame_fields"] if f["field"] == "content")
    assert len(request.encode()) == lp_content["len"]


def test_published_client_timestamps_are_whole_milliseconds() -> None:
    nanos = fields_by_name(STAGE1["connect_request"]["ipr_request_fields"])["timestamp.nanosecond"]
    stamp = utc_timestamp(
        IpPacketRequest.decode(
            h(STAGE1["connect_request"]["ipr_request_hex"])
        ).body.timestamp.to_datetime()  # type: ignore[union-attr]
        + timedelta(microseconds=123)
    )
    assert stamp.nanosecond == nanos["value"] and stamp.nanosecond % 1_000_000 == 0
