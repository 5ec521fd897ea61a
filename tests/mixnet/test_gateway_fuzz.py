"""Hypothesis fuzzing of every gateway-protocol parser: only mixnet error types may escape.

Each property runs a few hundred examples by default and 10,000 under
`--hypothesis-profile=fuzz`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.gateway.client_session import GatewayClientSession
from smolmix_cli.mixnet.gateway.frames import decrypt_push, decrypt_request, split_frame
from smolmix_cli.mixnet.gateway.gateway_connection import (
    GatewayConnection,
    GatewayConnState,
    GatewayRegistry,
)
from smolmix_cli.mixnet.gateway.handshake import (
    ClientHandshake,
    GatewayHandshake,
    GatewayMaterialExchange,
    Initialisation,
    MaterialExchange,
    parse_finalization,
)
from smolmix_cli.mixnet.gateway.messages import (
    _CLIENT_PARSERS,
    _SERVER_PARSERS,
    HandshakePayload,
    parse_client_message,
    parse_server_message,
)
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from tests.fuzzing import scaled
from tests.mixnet.gateway_vectors import frames, handshake_vector, packets_vector
from tests.vectors import h

DEFAULT = settings(
    max_examples=scaled(300), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

FIELD_NAMES = sorted(
    {
        "type",
        "version",
        "protocol_version",
        "data",
        "message",
        "status",
        "upgrade_mode",
        "bandwidth_remaining",
        "available_total",
        "remaining_bandwidth",
        "ciphertext",
        "nonce",
        "iv",
        "enc_credential",
        "token",
        "error",
        "address",
        "enc_address",
        "protocolVersion",
        "clientIdentity",
        "addressCiphertext",
        "requestUnixTimestamp",
        "requestSignature",
    }
)
TYPES = sorted(set(_CLIENT_PARSERS) | set(_SERVER_PARSERS))

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars | st.lists(st.integers(-5, 300), max_size=100),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)
message_objects = st.builds(
    lambda t, fields: {"type": t, **fields},
    st.sampled_from(TYPES),
    st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=8),
)


def _recorded_texts() -> list[str]:
    texts: list[str] = []
    for conn in ("registration", "authentication"):
        texts += [f["text"] for f in frames(conn) if f["ws_type"] == "text"]
    return texts


@st.composite
def mutated_recorded_texts(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(_recorded_texts()))
    if not text:
        return text
    pos = draw(st.integers(0, len(text) - 1))
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return text[:pos] + text[pos + 1 :]
    if choice == 1:
        return text[:pos] + draw(st.characters()) + text[pos + 1 :]
    return text[:pos] + draw(st.text(max_size=4)) + text[pos:]


any_text = st.text(max_size=300) | message_objects.map(json.dumps) | mutated_recorded_texts()


def _only_mixnet_errors(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except MixnetError:
        return None


# --------------------------------------------------------------------------- properties


@DEFAULT
@given(any_text)
def test_fuzz_messages(text: str) -> None:
    for parse in (parse_client_message, parse_server_message):
        msg = _only_mixnet_errors(lambda parse=parse: parse(text))  # type: ignore[misc]
        if msg is not None:  # whatever parses re-serialises to an equal message
            assert parse(msg.to_json()) == msg


@DEFAULT
@given(st.binary(max_size=300))
def test_fuzz_message_bytes(data: bytes) -> None:
    _only_mixnet_errors(lambda: parse_client_message(data))
    _only_mixnet_errors(lambda: parse_server_message(data))


@cache
def _key() -> SharedKey:
    return SharedKey(h(handshake_vector()["registration"]["shared_key_as_stored_by_client"]))


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    packets = packets_vector()["packets"]
    raw = bytearray(h(draw(st.sampled_from([p["gateway_frame"]["raw"] for p in packets]))))
    for _ in range(draw(st.integers(1, 3))):
        raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
    cut = draw(st.integers(0, len(raw)))
    return bytes(raw[:cut])


@DEFAULT
@given(st.binary(max_size=200) | mutated_frames())
def test_fuzz_frames(data: bytes) -> None:
    _only_mixnet_errors(lambda: split_frame(data))
    _only_mixnet_errors(lambda: decrypt_request(data, _key()))
    _only_mixnet_errors(lambda: decrypt_push(data, _key()))


@DEFAULT
@given(st.binary(max_size=200))
def test_fuzz_step_payloads(data: bytes) -> None:
    for parse in (
        Initialisation.from_bytes,
        GatewayMaterialExchange.from_bytes,
        MaterialExchange.from_bytes,
        parse_finalization,
    ):
        _only_mixnet_errors(lambda parse=parse: parse(data))  # type: ignore[misc]


@cache
def _gateway_identity() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        h(handshake_vector()["gateway"]["ed25519_identity_private"])
    )


@DEFAULT
@given(st.integers(0, 255), st.binary(min_size=0, max_size=130), st.binary(max_size=100))
def test_fuzz_handshake_machines(version: int, data: bytes, second: bytes) -> None:
    gw = GatewayHandshake(_gateway_identity())
    if _only_mixnet_errors(lambda: gw.receive(HandshakePayload(version, data))) is not None:
        _only_mixnet_errors(lambda: gw.receive(HandshakePayload(version, second)))
    client_id = Ed25519PrivateKey.generate()
    client = ClientHandshake(
        client_id, h(handshake_vector()["gateway"]["ed25519_identity_public"]), 6
    )
    client.start()
    _only_mixnet_errors(lambda: client.receive(HandshakePayload(version, data)))


@cache
def _authenticated_connection() -> GatewayConnection:
    registry = GatewayRegistry(Ed25519PrivateKey.generate())
    client = GatewayClientSession(Ed25519PrivateKey.generate(), registry.identity_public)
    conn = GatewayConnection(registry)
    pending = client.start()
    while pending:
        ev = pending.pop(0)
        text = getattr(ev, "text", None)
        if text is not None:
            for out in conn.receive_text(text, now=0.0):
                reply = getattr(out, "text", None)
                if reply is not None:
                    pending += client.receive_text(reply, now=0.0)
    assert conn.state is GatewayConnState.AUTHENTICATED
    return conn


@DEFAULT
@given(any_text, st.binary(max_size=120))
def test_fuzz_sessions(text: str, data: bytes) -> None:
    # gateway: fresh and authenticated connections swallow anything as events
    registry = GatewayRegistry(_gateway_identity())
    GatewayConnection(registry).receive_text(text, now=1e9)
    GatewayConnection(registry).receive_binary(data, now=1e9)
    authed = _authenticated_connection()
    authed.receive_text(text, now=1e9)
    authed.receive_binary(data, now=1e9)
    assert authed.state is GatewayConnState.AUTHENTICATED
    # client: awaiting the version, then in the handshake, then awaiting authenticate
    gw_pub = registry.identity_public
    c1 = GatewayClientSession(Ed25519PrivateKey.generate(), gw_pub)
    c1.start()
    c1.receive_text(text, now=1e9)
    c1.receive_binary(data)
    c2 = GatewayClientSession(Ed25519PrivateKey.generate(), gw_pub)
    c2.start()
    c2.receive_text('{"type":"supportedProtocol","version":6}', now=1e9)
    c2.receive_text(text, now=1e9)
    c3 = GatewayClientSession(Ed25519PrivateKey.generate(), gw_pub, shared_key=_key())
    c3.start()
    c3.receive_text('{"type":"supportedProtocol","version":6}', now=1e9)
    c3.receive_text(text, now=1e9)
    c3.receive_binary(data)
