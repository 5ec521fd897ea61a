"""JSON control messages: serde's shape, strict parsing, typed errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smolmix_cli.mixnet.errors import MalformedData
from smolmix_cli.mixnet.gateway.messages import (
    Authenticate,
    AuthenticateV2,
    Bandwidth,
    ClaimFreeTestnetBandwidth,
    EcashCredential,
    EncryptedRequest,
    EncryptedResponse,
    ErrorResponse,
    HandshakeError,
    HandshakePayload,
    LegacyAuthenticate,
    LegacyBandwidthCredential,
    MalformedMessage,
    OutOfBandwidth,
    Register,
    Send,
    SupportedProtocol,
    SupportedProtocolRequest,
    TicketReplay,
    TypedError,
    UnknownMessageType,
    UpgradeModeJwt,
    parse_client_message,
    parse_server_message,
)
from tests.mixnet.gateway_vectors import frames, handshake_vector
from tests.vectors import spec_text


def _recorded(direction: str) -> list[str]:
    texts = []
    for conn in ("registration", "authentication"):
        texts += [
            f["text"] for f in frames(conn) if f["ws_type"] == "text" and f["dir"] == direction
        ]
    return texts


def test_every_recorded_client_text_parses_and_reserializes_verbatim() -> None:
    texts = _recorded("C->G")
    assert len(texts) == 6
    for text in texts:
        assert parse_client_message(text).to_json() == text


def test_every_recorded_gateway_text_parses_and_reserializes_verbatim() -> None:
    texts = _recorded("G->C")
    assert len(texts) == 9
    for text in texts:
        assert parse_server_message(text).to_json() == text


def test_recorded_types_map_to_our_classes() -> None:
    first, second = frames("registration"), frames("authentication")
    assert isinstance(parse_client_message(first[0]["text"]), SupportedProtocolRequest)
    assert parse_server_message(first[1]["text"]) == SupportedProtocol(
        json.loads(first[1]["text"])["version"]
    )
    reg = json.loads(first[6]["text"])
    assert parse_server_message(first[6]["text"]) == Register(
        reg["protocol_version"], reg["status"], reg["upgrade_mode"]
    )
    authn = json.loads(second[3]["text"])
    assert parse_server_message(second[3]["text"]) == Authenticate(
        authn["protocol_version"],
        authn["status"],
        authn["bandwidth_remaining"],
        authn["upgrade_mode"],
    )
    assert isinstance(parse_client_message(second[4]["text"]), ClaimFreeTestnetBandwidth)
    assert parse_server_message(second[5]["text"]) == Bandwidth(
        json.loads(second[5]["text"])["available_total"]
    )
    assert parse_server_message(second[7]["text"]) == Send(
        json.loads(second[7]["text"])["remaining_bandwidth"]
    )
    v2 = parse_client_message(second[2]["text"])
    assert isinstance(v2, AuthenticateV2)
    assert (
        v2.request_unix_timestamp
        == handshake_vector()["authentication"]["authenticateV2_json"]["requestUnixTimestamp"]
    )


def test_spec_example_sequence_parses() -> None:
    """Every concrete JSON line in the spec §3.3 example (those without placeholders)."""
    section = spec_text("nym-mixnet.md").split("### 3.3")[1].split("### 3.4")[0]
    lines = [ln for ln in section.splitlines() if ln.startswith(("C: {", "G: {")) and "<" not in ln]
    assert len(lines) >= 5
    for line in lines:
        text = line[3:].strip()
        msg: Any = (
            parse_client_message(text) if line.startswith("C:") else parse_server_message(text)
        )
        assert json.loads(msg.to_json()) == json.loads(text)


def _roundtrip_client(msg: Any) -> None:
    assert parse_client_message(msg.to_json()) == msg


def _roundtrip_server(msg: Any) -> None:
    assert parse_server_message(msg.to_json()) == msg


def test_roundtrips_of_types_not_in_the_recording() -> None:
    _roundtrip_client(EcashCredential(b"\x01\x02", bytes(12)))
    _roundtrip_client(UpgradeModeJwt("jwt.token.here"))
    _roundtrip_client(EncryptedRequest(b"abc", bytes(12)))
    _roundtrip_client(LegacyAuthenticate(None, "a", "b", "c"))
    _roundtrip_client(LegacyAuthenticate(3, "a", "b", "c"))
    _roundtrip_client(LegacyBandwidthCredential(b"x", b"y"))
    _roundtrip_client(LegacyBandwidthCredential(b"x", b"y", v2=True))
    _roundtrip_client(HandshakeError("timed out"))
    _roundtrip_server(EncryptedResponse(b"ct", bytes(12)))
    _roundtrip_server(ErrorResponse("nope \u00e9 \n"))
    _roundtrip_server(TypedError(OutOfBandwidth(required=2413, available=0)))
    _roundtrip_server(TypedError(TicketReplay()))
    _roundtrip_server(HandshakeError("x"))


def test_typed_error_shapes_follow_the_spec() -> None:
    section = spec_text("nym-mixnet.md").split("### 3.3")[1].split("### 3.4")[0]
    oob = json.loads(TypedError(OutOfBandwidth(5, 7)).to_json())
    assert '`{"out_of_bandwidth":{"required":i64,"available":i64}}`' in section
    assert oob["type"] == "typedError" and oob["error"] == {
        "out_of_bandwidth": {"required": 5, "available": 7}
    }
    replay = json.loads(TypedError(TicketReplay()).to_json())
    assert '`"ticket_replay"`' in section
    assert replay["error"] == "ticket_replay"


def test_ecash_credential_accepts_nonce_alias_and_writes_iv() -> None:
    parsed = parse_client_message('{"type":"ecashCredential","enc_credential":[1],"nonce":[2]}')
    assert parsed == EcashCredential(b"\x01", b"\x02")
    assert '"iv":[2]' in parsed.to_json()
    with pytest.raises(MalformedMessage):
        parse_client_message('{"type":"ecashCredential","enc_credential":[1],"nonce":[2],"iv":[2]}')


def test_register_handshake_init_alias_and_default_version() -> None:
    msg = parse_client_message('{"type":"registerHandshakeInitRequest","data":[1,2]}')
    assert msg == HandshakePayload(0, b"\x01\x02")


def test_defaults_for_missing_upgrade_mode() -> None:
    assert parse_server_message('{"type":"send","remaining_bandwidth":5}') == Send(5, False)
    assert parse_server_message('{"type":"register","status":true}') == Register(0, True, False)


def test_unknown_extra_fields_are_ignored() -> None:
    text = frames("registration")[1]["text"][:-1] + ',"future_field":{"x":[1,2]}}'
    assert parse_server_message(text) == parse_server_message(frames("registration")[1]["text"])


# --------------------------------------------------------------------------- negative


BAD_JSON = [
    "",
    "{",
    "[]",
    '"supportedProtocol"',
    "null",
    '{"type":NaN}',
    '{"nottype":"send"}',
    '{"type":5}',
    '{"type":"send","remaining_bandwidth":1,"remaining_bandwidth":2}',
    "[" * 100000,
    b"\xff\xfe",
]


@pytest.mark.parametrize("text", BAD_JSON)
def test_malformed_json_is_typed(text: str | bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_server_message(text)
    with pytest.raises(MalformedMessage):
        parse_client_message(text)


def test_unknown_type_is_typed() -> None:
    with pytest.raises(UnknownMessageType):
        parse_client_message('{"type":"register","protocol_version":6,"status":true}')
    with pytest.raises(UnknownMessageType):
        parse_server_message('{"type":"claimFreeTestnetBandwidth"}')
    assert issubclass(UnknownMessageType, MalformedData)


BAD_BYTE_VALUES = ["256", "-1", "1.0", "true", '"1"', "null", "[1]", "1e2"]


@pytest.mark.parametrize("value", BAD_BYTE_VALUES)
def test_byte_arrays_reject_non_bytes(value: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_client_message(
            f'{{"type":"handshakePayload","protocol_version":6,"data":[1,{value},3]}}'
        )


@pytest.mark.parametrize("value", ['"abc"', "{}", "null", "7"])
def test_data_must_be_an_array(value: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_client_message(f'{{"type":"handshakePayload","protocol_version":6,"data":{value}}}')


@pytest.mark.parametrize("value", ["256", "-1", "6.0", "true", '"6"', "null"])
def test_u8_fields_reject_out_of_range_and_wrong_types(value: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_server_message(f'{{"type":"supportedProtocol","version":{value}}}')
    with pytest.raises(MalformedMessage):
        parse_client_message(f'{{"type":"handshakePayload","protocol_version":{value},"data":[]}}')


@pytest.mark.parametrize("value", [str(2**63), str(-(2**63) - 1), "1.5", "false", "null"])
def test_i64_fields_reject_out_of_range(value: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_server_message(f'{{"type":"send","remaining_bandwidth":{value}}}')


def test_i64_extremes_accepted() -> None:
    for v in (2**63 - 1, -(2**63)):
        assert parse_server_message(f'{{"type":"bandwidth","available_total":{v}}}') == Bandwidth(v)


@pytest.mark.parametrize("value", ["1", "0", '"true"', "null"])
def test_bool_fields_reject_non_bools(value: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_server_message(f'{{"type":"register","protocol_version":6,"status":{value}}}')


def test_missing_required_fields() -> None:
    with pytest.raises(MalformedMessage):
        parse_server_message('{"type":"supportedProtocol"}')
    with pytest.raises(MalformedMessage):
        parse_client_message('{"type":"handshakePayload","protocol_version":6}')
    with pytest.raises(MalformedMessage):
        parse_server_message('{"type":"error"}')
    with pytest.raises(MalformedMessage):
        parse_server_message('{"type":"typedError"}')


@pytest.mark.parametrize(
    "error",
    [
        '"out_of_bandwidth"',
        '{"ticket_replay":1,"x":2}',
        '{"out_of_bandwidth":5}',
        '{"out_of_bandwidth":{"required":1}}',
        "[]",
    ],
)
def test_bad_typed_errors(error: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_server_message(f'{{"type":"typedError","error":{error}}}')


def _auth_v2_obj() -> dict[str, Any]:
    return dict(handshake_vector()["authentication"]["authenticateV2_json"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clientIdentity", list(range(31))),
        ("clientIdentity", list(range(33))),
        ("requestSignature", list(range(63))),
        ("addressCiphertext", "not base64!"),
        ("addressCiphertext", "4D5wxwxXi+tTCTYR7wqSpP9fiinS7yaQIpZDheUCUwx5oySUaj85Oae1AA9SIA2"),
        ("nonce", "iMOv0KD26xAU4+P9"[:-1] + "="),
        ("nonce", [1, 2, 3]),
        ("requestUnixTimestamp", -1),
        ("requestUnixTimestamp", 2**64),
        ("protocolVersion", 256),
    ],
)
def test_authenticate_v2_field_errors(field: str, value: Any) -> None:
    obj = _auth_v2_obj()
    obj[field] = value
    with pytest.raises(MalformedMessage):
        parse_client_message(json.dumps(obj))


def test_authenticate_v2_noncanonical_base64_rejected() -> None:
    obj = _auth_v2_obj()
    # 'P9' -> 'P+' style: flip the last char's unused low bits of a padded encoding
    obj["nonce"] = "AAAAAAAAAAAAAAAAAAAAAB=="  # 16 bytes with nonzero trailing bits
    with pytest.raises(MalformedMessage):
        parse_client_message(json.dumps(obj))


def test_authenticate_v2_snake_case_fields_are_not_accepted() -> None:
    obj = _auth_v2_obj()
    obj["protocol_version"] = obj.pop("protocolVersion")
    with pytest.raises(MalformedMessage):
        parse_client_message(json.dumps(obj))


def test_lone_surrogate_strings_rejected() -> None:
    with pytest.raises(MalformedMessage):
        parse_server_message('{"type":"error","message":"\\ud800"}')
