"""Our codecs against the byte vectors of spec §8 (upstream fixtures and derived vectors)."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address

import pytest

from smolmix_cli.ipr.bundle import (
    LENGTH_PREFIX_SIZE,
    MAX_BUNDLE_SIZE,
    BundleEncoder,
    FragmentPacker,
    decode_bundle,
    encode_bundle,
)
from smolmix_cli.ipr.errors import MalformedIprFrame, MalformedIprMessage
from smolmix_cli.ipr.lp_frame import HEADER_SIZE, LpFrame, MsgType, is_stream_frame
from smolmix_cli.ipr.messages import (
    MAX_NON_STREAM_VERSION,
    SPHINX_STREAM_VERSION_THRESHOLD,
    V9,
    ConnectFailure,
    ConnectFailureReason,
    ConnectRequest,
    ConnectSuccess,
    DataRequest,
    DataResponse,
    DisconnectRequest,
    HealthRequest,
    InfoKind,
    InfoLevel,
    InfoResponse,
    IpPacketRequest,
    IpPacketResponse,
    OffsetDateTime,
    PingRequest,
    PongResponse,
    RequestBody,
    UnrequestedDisconnect,
    UnrequestedDisconnectReason,
)
from tests.ipr.spec_vectors import (
    backticked_hex,
    common_request_id,
    common_stream_id,
    common_timestamp,
    derived,
    fixture,
    leading_hex,
    parse_utc_timestamp,
)

STREAM = common_stream_id()
REQUEST = common_request_id()
STAMP = common_timestamp()


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


# --- §8.2 derived vectors -----------------------------------------------------------------


def test_lp_open_empty() -> None:
    _, cell = derived("LP Open, seq 0, empty")
    assert LpFrame(STREAM, MsgType.OPEN, 0).encode() == leading_hex(cell)
    assert LpFrame.decode(leading_hex(cell)) == LpFrame(STREAM, MsgType.OPEN, 0)


def test_v9_connect_request_and_its_data_frame() -> None:
    name, cell = derived("v9 ConnectRequest")
    encoded = IpPacketRequest(V9, ConnectRequest(REQUEST, STAMP)).encode()
    assert encoded == leading_hex(cell)
    assert len(encoded) == _ints(name)[-1]
    name, cell = derived("the same in an LP Data frame with seq 0")
    framed = LpFrame(STREAM, MsgType.DATA, 0, encoded).encode()
    assert framed[:HEADER_SIZE] == leading_hex(cell) and len(framed) == _ints(name)[-1]


def test_connect_request_with_buffer_timeout_and_zero_nanos() -> None:
    name, cell = derived("ConnectRequest with `buffer_timeout = Some(")
    timeout_ms = int(re.search(r"Some\((\d+)\)", name).group(1))  # type: ignore[union-attr]
    stamp = OffsetDateTime(STAMP.year, STAMP.ordinal, STAMP.hour, STAMP.minute, STAMP.second, 0)
    request = IpPacketRequest(V9, ConnectRequest(REQUEST, stamp, timeout_ms))
    assert request.encode() == leading_hex(cell)
    assert IpPacketRequest.decode(leading_hex(cell)) == request


def test_disconnect_ping_health_requests() -> None:
    _, cell = derived("v9 Disconnect / Ping / Health request")
    head, tail = cell.split("{", 1)
    alternatives, rest = tail.split("}", 1)
    codes = [int(c, 16) for c in re.findall(r"\b[0-9A-F]{2}\b", alternatives)]
    stamp = OffsetDateTime(STAMP.year, STAMP.ordinal, STAMP.hour, STAMP.minute, STAMP.second, 0)
    bodies: tuple[RequestBody, ...] = (
        DisconnectRequest(REQUEST, stamp),
        PingRequest(REQUEST, stamp),
        HealthRequest(REQUEST, stamp),
    )
    for code, body in zip(codes, bodies, strict=True):
        expected = leading_hex(head) + bytes([code]) + leading_hex(rest)
        request = IpPacketRequest(V9, body)
        assert request.encode() == expected
        assert IpPacketRequest.decode(expected) == request


def test_bundle_data_request_and_frame() -> None:
    name, cell = derived("bundle of one 20-byte IPv4 header")
    bundle = leading_hex(cell)
    packet = bundle[LENGTH_PREFIX_SIZE:]
    assert len(packet) == _ints(name)[0]
    assert IPv4Address(packet[12:16]) == IPv4Address(re.search(r"\((\S+) →", name).group(1))  # type: ignore[union-attr]
    assert encode_bundle([packet]) == bundle and decode_bundle(bundle) == [packet]
    name, cell = derived("v9 DataRequest containing that bundle")
    request = IpPacketRequest(V9, DataRequest(bundle))
    assert request.encode() == leading_hex(cell) + bundle
    assert len(request.encode()) == _ints(name)[-1]
    _, cell = derived("the same in an LP Data frame with seq 1")
    framed = LpFrame(STREAM, MsgType.DATA, 1, request.encode()).encode()
    assert framed.startswith(leading_hex(cell))


def test_packed_bundles_are_the_spec_codec_repeated() -> None:
    """A bundle crossing fragment boundaries is still §5.6's `len:u16 BE || packet`,
    repeated: the vector's packet, several times, in one DataRequest byte for byte."""
    _, cell = derived("bundle of one 20-byte IPv4 header")
    one = leading_hex(cell)
    packet = one[LENGTH_PREFIX_SIZE:]
    packer = FragmentPacker(lambda n: -(-n // 50), 2)  # two 50-byte "fragments"
    out = [b for _ in range(5) for b in packer.push(packet)] + packer.flush()
    assert out == [one * 4, one]  # 88 bytes fit, 110 would not; the fifth alone
    _, cell = derived("v9 DataRequest containing that bundle")
    request = IpPacketRequest(V9, DataRequest(out[0])).encode()
    assert request[:3] == leading_hex(cell)[:3] and request.endswith(one * 4)
    assert decode_bundle(out[0]) == [packet] * 4


def test_connect_success_and_inline_wrapping() -> None:
    name, cell = derived("ConnectSuccess,")
    v4, v6 = re.search(r"ConnectSuccess, (\S+) / (\S+)", name).groups()  # type: ignore[union-attr]
    response = IpPacketResponse(V9, ConnectSuccess(REQUEST, IPv4Address(v4), IPv6Address(v6)))
    assert response.encode() == leading_hex(cell)
    assert IpPacketResponse.decode(leading_hex(cell)) == response
    _, cell = derived("the IPR's inline wrapping of it")
    framed = LpFrame(STREAM, MsgType.DATA, 0, response.encode()).encode()
    assert framed[:HEADER_SIZE] == leading_hex(cell)


@pytest.mark.parametrize(
    ("name_start", "response"),
    [
        (
            "Connect Failure(NoAvailableIp)",
            IpPacketResponse(V9, ConnectFailure(REQUEST, ConnectFailureReason.NO_AVAILABLE_IP)),
        ),
        ("Pong", IpPacketResponse(V9, PongResponse(REQUEST))),
        (
            "UnrequestedDisconnect(ClientMixnetTrafficTimeout)",
            IpPacketResponse(
                V9,
                UnrequestedDisconnect(UnrequestedDisconnectReason.CLIENT_MIXNET_TRAFFIC_TIMEOUT),
            ),
        ),
    ],
)
def test_control_responses(name_start: str, response: IpPacketResponse) -> None:
    _, cell = derived(name_start)
    assert response.encode() == leading_hex(cell)
    assert IpPacketResponse.decode(leading_hex(cell)) == response


def test_data_response_with_two_packets() -> None:
    name, cell = derived("DataResponse with two packets")
    packets = [p.encode() for p in re.findall(r'"(\w+)"', name)]
    response = IpPacketResponse(V9, DataResponse(encode_bundle(packets)))
    assert response.encode() == leading_hex(cell)
    decoded = IpPacketResponse.decode(leading_hex(cell)).body
    assert isinstance(decoded, DataResponse) and decode_bundle(decoded.ip_packet) == packets


def test_info_exit_policy_filter_check_failed() -> None:
    name, cell = derived("Info ExitPolicyFilterCheckFailed")
    destination = re.search(r'"([^"]+)"', name).group(1)  # type: ignore[union-attr]
    response = IpPacketResponse(
        V9, InfoResponse(0, InfoKind.EXIT_POLICY_FILTER_CHECK_FAILED, InfoLevel.WARN, destination)
    )
    assert "Warn" in name
    assert response.encode() == leading_hex(cell)
    assert IpPacketResponse.decode(leading_hex(cell)) == response


# --- §8.1 upstream fixtures ---------------------------------------------------------------


def test_header_wire_format() -> None:
    cell = fixture("header_wire_format")
    stream = int(re.search(r"stream_id `0x([0-9a-f]+)`", cell).group(1), 16)  # type: ignore[union-attr]
    payload, full = backticked_hex(cell)
    seq = int(re.search(r"seq (\d+)", cell).group(1))  # type: ignore[union-attr]
    frame = LpFrame(stream, MsgType.OPEN, seq, payload)
    assert frame.encode() == full and LpFrame.decode(full) == frame


def test_bad_msg_type_and_wrong_kind_and_too_short() -> None:
    data_frame = LpFrame(1, MsgType.DATA, 1, b"\x00").encode()
    byte = _ints(fixture("bad_msg_type"))[0]
    broken = data_frame[:byte] + b"\xff" + data_frame[byte + 1 :]
    with pytest.raises(MalformedIprFrame):
        LpFrame.decode(broken)
    opaque = bytes(_ints(fixture("wrong_frame_kind"))[0])
    assert not is_stream_frame(opaque)
    with pytest.raises(MalformedIprFrame):
        LpFrame.decode(opaque)
    short = bytes(_ints(fixture("too_short"))[0])
    assert not is_stream_frame(short)
    with pytest.raises(MalformedIprFrame):
        LpFrame.decode(short)


def test_sequence_number_roundtrip() -> None:
    cell = fixture("sequence_num_roundtrip")
    values = [int(v) for v in re.search(r"\{([^}]*)\}", cell).group(1).split(",")]  # type: ignore[union-attr]
    for seq in values:
        frame = LpFrame(7, MsgType.DATA, seq, b"x")
        assert LpFrame.decode(frame.encode()) == frame


def test_ipr_detection_fixtures() -> None:
    payload, full = backticked_hex(fixture("test_lp_stream_frame_detected"))[1:]
    assert is_stream_frame(full) and LpFrame.decode(full).content == payload
    frame = LpFrame.decode(full)
    assert (frame.stream_id, frame.seq) == (0x1234, 42)
    (full,) = backticked_hex(fixture("stream_frame_roundtrip_unwraps_payload"))
    assert LpFrame.decode(full).content == b"hello-ipr"
    for raw in backticked_hex(fixture("unwrap_noops_on_non_stream_or_malformed_data")):
        assert not is_stream_frame(raw)


def test_upstream_v8_request_sizes_under_v9() -> None:
    """The v8 fixtures use version byte 4; the layout is v9's, so swap the byte and compare."""
    cell = fixture("check_size_of_request")
    (raw,) = backticked_hex(cell)
    assert len(raw) == _ints(cell.split("**")[1])[0]
    request = IpPacketRequest.decode(bytes([V9]) + raw[1:])
    assert isinstance(request.body, ConnectRequest)
    assert request.body.request_id == _ints(cell.split("request_id")[1])[0]
    assert request.body.timestamp == parse_utc_timestamp(cell)
    assert request.encode()[1:] == raw[1:]
    (raw,) = backticked_hex(fixture("serialize_and_deserialize_data_request"))
    request = IpPacketRequest.decode(bytes([V9]) + raw[1:])
    assert request.body == DataRequest(
        bytes(_ints(fixture("serialize_and_deserialize_data_request"))[1:6])
    )


def test_version_constants_and_unsupported_versions() -> None:
    cell = fixture("stream_transport_threshold_is_consistent")
    assert _ints(cell.split("MAX_NON_STREAM_VERSION")[1])[0] == MAX_NON_STREAM_VERSION
    assert (
        _ints(cell.split("SPHINX_STREAM_VERSION_THRESHOLD")[1])[0]
        == SPHINX_STREAM_VERSION_THRESHOLD
    )
    (raw,) = backticked_hex(fixture("check_size_of_request"))
    with pytest.raises(MalformedIprMessage):
        IpPacketRequest.decode(raw)  # version 4 is not spoken here


def test_service_provider_type_must_be_ip_packet_router() -> None:
    (protocol,) = backticked_hex(fixture("compact_serialization"))  # {4, NetworkRequester}
    data = IpPacketRequest(V9, DataRequest(b"")).encode()
    assert data[1] != protocol[1]
    with pytest.raises(MalformedIprMessage):
        IpPacketRequest.decode(data[:1] + protocol[1:2] + data[2:])
    invalid = _ints(fixture("invalid_protocol_deserialization").split("[4, ")[1])[0]
    with pytest.raises(MalformedIprMessage):
        IpPacketRequest.decode(data[:1] + bytes([invalid]) + data[2:])


# --- the exit's bundler (codec.rs fixtures) ---------------------------------------------------


def test_bundler_two_1400_byte_packets() -> None:
    cell = fixture("test_multi_ip_packet_codec_max_packet_size")
    size, _, emitted = _ints(cell)[:3]
    encoder = BundleEncoder()
    assert encoder.push(bytes(size)) == []
    (out,) = encoder.push(bytes(size))
    assert len(out) == emitted and out[:LENGTH_PREFIX_SIZE] == backticked_hex(cell)[0]


def test_bundler_1000_byte_packets_and_decode() -> None:
    size = _ints(fixture("encode_and_then_decode"))[0]
    encoder = BundleEncoder()
    outs = encoder.push(bytes(size)) + encoder.push(bytes(size))
    assert len(outs) == 1 and decode_bundle(outs[0]) == [bytes(size)]
    assert encoder.buffered == size + LENGTH_PREFIX_SIZE


def test_bundler_oversized_packet_goes_alone() -> None:
    cell = fixture("encode_a_packat_that_is_too_large")
    size = _ints(cell)[0]
    encoder = BundleEncoder()
    (out,) = encoder.push(bytes(size))
    assert out[:LENGTH_PREFIX_SIZE] == backticked_hex(cell)[0] and len(out) == size + 2
    assert encoder.flush() is None


def test_bundler_exact_max_is_not_over_the_limit() -> None:
    size = _ints(fixture("check_that_max_size_does_not_flush"))[0]
    assert size + LENGTH_PREFIX_SIZE == MAX_BUNDLE_SIZE
    encoder = BundleEncoder()
    assert encoder.push(bytes(size)) == []
    (out,) = encoder.push(bytes(size))
    assert len(out) == MAX_BUNDLE_SIZE


def test_bundler_hello_world_then_flush() -> None:
    cell = fixture("test_combining_framed_write_and_mixnet_client_ip_packet_sender")
    words = [w.encode() for w in re.findall(r'"([^"]+)"', cell)]
    encoder = BundleEncoder()
    assert encoder.push(words[0]) == [] and encoder.push(words[1]) == []
    flushed = encoder.flush()
    assert flushed is not None and decode_bundle(flushed) == words[:2]
    assert encoder.push(words[2]) == [] and encoder.buffered > 0
