"""Registration handshake and authenticateV2: negotiation, live runs, and every refusal."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.errors import (
    IntegrityError,
    InvalidKey,
    MalformedData,
    MixnetError,
    ReplayDetected,
)
from smolmix_cli.mixnet.gateway.handshake import (
    CLIENT_MATERIAL_LEN,
    CURRENT_PROTOCOL_VERSION,
    GATEWAY_MATERIAL_LEN,
    INIT_LEN,
    MAX_REQUEST_TIMESTAMP_SKEW_S,
    MIN_PROTOCOL_VERSION,
    AuthenticationSignatureInvalid,
    BadSignature,
    CiphertextMismatch,
    ClientHandshake,
    ExcessiveTimestampSkew,
    GatewayHandshake,
    GatewayMaterialExchange,
    IncompatibleProtocol,
    Initialisation,
    MaterialExchange,
    NotRegistered,
    RemoteHandshakeError,
    RequestReuse,
    UnexpectedHandshakeMessage,
    X25519Ephemeral,
    build_authenticate_v2,
    derive_shared_key,
    ed25519_public_bytes,
    parse_finalization,
    verify_authenticate_v2,
)
from smolmix_cli.mixnet.gateway.messages import AuthenticateV2, HandshakeError, HandshakePayload
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from tests.mixnet.gateway_vectors import client_identity, gateway_identity, handshake_vector
from tests.vectors import h


def _pair(proposed: int = CURRENT_PROTOCOL_VERSION) -> tuple[ClientHandshake, GatewayHandshake]:
    gw_id = gateway_identity()
    client = ClientHandshake(client_identity(), ed25519_public_bytes(gw_id), proposed)
    return client, GatewayHandshake(gw_id)


def _run(client: ClientHandshake, gateway: GatewayHandshake) -> None:
    step2 = gateway.receive(client.start())
    step3 = client.receive(step2)
    assert step3 is not None
    step4 = gateway.receive(step3)
    assert client.receive(step4) is None


# --------------------------------------------------------------------------- live runs


def test_fresh_handshake_agrees_on_a_key() -> None:
    client, gateway = _pair()
    _run(client, gateway)
    assert client.result is not None and gateway.result is not None
    assert client.result.shared_key == gateway.result.shared_key
    assert (
        client.result.protocol_version
        == gateway.result.protocol_version
        == CURRENT_PROTOCOL_VERSION
    )
    assert gateway.result.remote_identity == ed25519_public_bytes(client_identity())


def test_step_sizes_match_the_recording() -> None:
    reg = handshake_vector()["registration"]["connection_1_frames"]
    sizes = [f["data_len"] for f in reg if "data_len" in f]
    client, gateway = _pair()
    step1 = client.start()
    step2 = gateway.receive(step1)
    step3 = client.receive(step2)
    assert step3 is not None
    step4 = gateway.receive(step3)
    assert [len(step1.data), len(step2.data), len(step3.data), len(step4.data)] == sizes
    assert sizes == [INIT_LEN, GATEWAY_MATERIAL_LEN, CLIENT_MATERIAL_LEN, 1]


@pytest.mark.parametrize("proposed", range(MIN_PROTOCOL_VERSION, CURRENT_PROTOCOL_VERSION + 3))
def test_gateway_picks_own_version_when_client_proposes_newer(proposed: int) -> None:
    client, gateway = _pair(proposed)
    _run(client, gateway)
    expected = min(proposed, CURRENT_PROTOCOL_VERSION)
    assert gateway.result is not None and client.result is not None
    assert gateway.result.protocol_version == client.result.protocol_version == expected


def test_gateway_older_than_client_is_adopted_by_client() -> None:
    gw_id = gateway_identity()
    client = ClientHandshake(
        client_identity(), ed25519_public_bytes(gw_id), CURRENT_PROTOCOL_VERSION
    )
    gateway = GatewayHandshake(gw_id, current_version=MIN_PROTOCOL_VERSION + 1)
    _run(client, gateway)
    assert client.result is not None and client.result.protocol_version == MIN_PROTOCOL_VERSION + 1


# --------------------------------------------------------------------------- wrong version


@pytest.mark.parametrize("proposed", [0, 1, 2, MIN_PROTOCOL_VERSION - 1])
def test_gateway_refuses_pre_v4_clients(proposed: int) -> None:
    client, gateway = _pair(proposed)
    with pytest.raises(IncompatibleProtocol):
        gateway.receive(client.start())


@pytest.mark.parametrize("version", [MIN_PROTOCOL_VERSION - 1, CURRENT_PROTOCOL_VERSION + 1, 255])
def test_client_refuses_gateway_step2_version_out_of_range(version: int) -> None:
    client, gateway = _pair()
    step2 = gateway.receive(client.start())
    with pytest.raises(IncompatibleProtocol):
        client.receive(replace(step2, protocol_version=version))


# --------------------------------------------------------------------------- bad signatures / keys


def test_client_rejects_gateway_with_wrong_identity() -> None:
    client = ClientHandshake(
        client_identity(), ed25519_public_bytes(Ed25519PrivateKey.generate()), 6
    )
    gateway = GatewayHandshake(gateway_identity())
    with pytest.raises(BadSignature):
        client.receive(gateway.receive(client.start()))


def test_gateway_rejects_client_signature_for_another_identity() -> None:
    gw_id = gateway_identity()
    client = ClientHandshake(Ed25519PrivateKey.generate(), ed25519_public_bytes(gw_id), 6)
    gateway = GatewayHandshake(gw_id)
    step1 = client.start()
    # claim the recorded client's identity while signing with another key
    forged = Initialisation.from_bytes(step1.data)
    forged_step1 = replace(
        step1, data=ed25519_public_bytes(client_identity()) + forged.ephemeral + forged.salt
    )
    step3 = client.receive(gateway.receive(forged_step1))
    assert step3 is not None
    with pytest.raises(BadSignature):
        gateway.receive(step3)


def test_signature_over_wrong_order_rejected() -> None:
    """A gateway that signs g^x ‖ g^y (the client's order) must be refused."""
    gw_id = gateway_identity()
    client = ClientHandshake(client_identity(), ed25519_public_bytes(gw_id), 6)
    step1 = client.start()
    init = Initialisation.from_bytes(step1.data)
    eph = X25519Ephemeral()
    key = derive_shared_key(eph.exchange(init.ephemeral), init.salt)
    nonce = bytes(12)
    wrong = gw_id.sign(init.ephemeral + eph.public_bytes())
    data = GatewayMaterialExchange(
        eph.public_bytes(), MaterialExchange(key.encrypt(wrong, nonce), nonce)
    ).to_bytes()
    with pytest.raises(BadSignature):
        client.receive(HandshakePayload(6, data))


@pytest.mark.parametrize("offset", [32, 32 + 40, 32 + 79, 32 + 80])  # ciphertext, tag, nonce
def test_client_rejects_tampered_step2(offset: int) -> None:
    client, gateway = _pair()
    step2 = gateway.receive(client.start())
    data = bytearray(step2.data)
    data[offset] ^= 0x01
    with pytest.raises(IntegrityError):
        client.receive(replace(step2, data=bytes(data)))


def test_client_rejects_tampered_gateway_ephemeral() -> None:
    client, gateway = _pair()
    step2 = gateway.receive(client.start())
    data = bytearray(step2.data)
    data[0] ^= 0x40
    with pytest.raises(MixnetError):  # different key: the tag fails (or a low-order point)
        client.receive(replace(step2, data=bytes(data)))


@pytest.mark.parametrize("offset", [0, 63, 64, 79, 80, 91])
def test_gateway_rejects_tampered_step3(offset: int) -> None:
    client, gateway = _pair()
    step3 = client.receive(gateway.receive(client.start()))
    assert step3 is not None
    data = bytearray(step3.data)
    data[offset] ^= 0x80
    with pytest.raises(IntegrityError):
        gateway.receive(replace(step3, data=bytes(data)))


def test_low_order_ephemeral_is_invalid_key() -> None:
    client, gateway = _pair()
    step1 = client.start()
    init = Initialisation.from_bytes(step1.data)
    with pytest.raises(InvalidKey):
        gateway.receive(replace(step1, data=init.identity + bytes(32) + init.salt))


def test_finalization_failure_byte() -> None:
    client, gateway = _pair()
    step3 = client.receive(gateway.receive(client.start()))
    assert step3 is not None
    with pytest.raises(MixnetError):
        client.receive(HandshakePayload(6, b"\x00"))
    assert client.result is None


# --------------------------------------------------------------------------- lengths and order


@pytest.mark.parametrize("n", [0, INIT_LEN - 1, INIT_LEN + 1, 124])
def test_init_wrong_length(n: int) -> None:
    with pytest.raises(MalformedData):
        Initialisation.from_bytes(bytes(n))
    with pytest.raises(MalformedData):
        GatewayHandshake(gateway_identity()).receive(HandshakePayload(6, bytes(n)))


@pytest.mark.parametrize("n", [0, 96, GATEWAY_MATERIAL_LEN - 1, GATEWAY_MATERIAL_LEN + 1])
def test_gateway_material_wrong_length(n: int) -> None:
    with pytest.raises(MalformedData):
        GatewayMaterialExchange.from_bytes(bytes(n))
    client, _ = _pair()
    client.start()
    with pytest.raises(MalformedData):
        client.receive(HandshakePayload(6, bytes(n)))


@pytest.mark.parametrize("n", [0, CLIENT_MATERIAL_LEN - 1, CLIENT_MATERIAL_LEN + 1])
def test_client_material_wrong_length(n: int) -> None:
    with pytest.raises(MalformedData):
        MaterialExchange.from_bytes(bytes(n))
    client, gateway = _pair()
    gateway.receive(client.start())
    with pytest.raises(MalformedData):
        gateway.receive(HandshakePayload(6, bytes(n)))


@pytest.mark.parametrize("data", [b"", b"\x01\x01"])
def test_finalization_wrong_length(data: bytes) -> None:
    with pytest.raises(MalformedData):
        parse_finalization(data)


def test_messages_out_of_order() -> None:
    client, gateway = _pair()
    _run(client, gateway)
    with pytest.raises(UnexpectedHandshakeMessage):
        gateway.receive(HandshakePayload(6, b"\x01"))
    with pytest.raises(UnexpectedHandshakeMessage):
        client.receive(HandshakePayload(6, b"\x01"))
    with pytest.raises(UnexpectedHandshakeMessage):
        client.start()


def test_remote_handshake_error_is_typed() -> None:
    client, gateway = _pair()
    client.start()
    with pytest.raises(RemoteHandshakeError):
        client.receive(HandshakeError("bye"))
    with pytest.raises(RemoteHandshakeError):
        gateway.receive(HandshakeError("bye"))


# --------------------------------------------------------------------------- authenticateV2


def _recorded_auth() -> tuple[AuthenticateV2, SharedKey, float]:
    auth = handshake_vector()["authentication"]
    key = SharedKey(h(handshake_vector()["registration"]["shared_key_as_stored_by_client"]))
    ts = auth["authenticateV2_json"]["requestUnixTimestamp"]
    req = build_authenticate_v2(client_identity(), key, 6, ts, rng=lambda n: h(auth["nonce"]))
    return req, key, float(ts)


def test_auth_skew_boundaries() -> None:
    req, key, ts = _recorded_auth()
    skew = MAX_REQUEST_TIMESTAMP_SKEW_S
    assert verify_authenticate_v2(req, key, ts + skew, None) == 6
    assert verify_authenticate_v2(req, key, ts - skew, None) == 6
    with pytest.raises(ExcessiveTimestampSkew):
        verify_authenticate_v2(req, key, ts + skew + 0.001, None)
    with pytest.raises(ExcessiveTimestampSkew):
        verify_authenticate_v2(req, key, ts - skew - 0.001, None)


def test_auth_replayed_or_stale_timestamp() -> None:
    req, key, ts = _recorded_auth()
    with pytest.raises(RequestReuse):
        verify_authenticate_v2(req, key, ts, int(ts))
    with pytest.raises(RequestReuse):
        verify_authenticate_v2(req, key, ts, int(ts) + 1)
    assert issubclass(RequestReuse, ReplayDetected)
    assert verify_authenticate_v2(req, key, ts, int(ts) - 1) == 6


def test_auth_bad_signature() -> None:
    req, key, ts = _recorded_auth()
    sig = bytearray(req.request_signature)
    sig[5] ^= 1
    with pytest.raises(AuthenticationSignatureInvalid):
        verify_authenticate_v2(replace(req, request_signature=bytes(sig)), key, ts, None)
    # any signed field altered breaks the signature too
    with pytest.raises(AuthenticationSignatureInvalid):
        verify_authenticate_v2(
            replace(req, request_unix_timestamp=req.request_unix_timestamp + 1), key, ts, None
        )


def test_auth_wrong_key_and_tampered_ciphertext() -> None:
    req, key, ts = _recorded_auth()
    with pytest.raises(CiphertextMismatch):
        verify_authenticate_v2(req, SharedKey(bytes(32)), ts, None)
    assert issubclass(CiphertextMismatch, IntegrityError)
    # a re-signed request whose ciphertext is not the stored key's encryption
    ct = bytearray(req.address_ciphertext)
    ct[0] ^= 1
    forged = replace(req, address_ciphertext=bytes(ct))
    forged = replace(forged, request_signature=client_identity().sign(forged.signed_bytes()))
    with pytest.raises(CiphertextMismatch):
        verify_authenticate_v2(forged, key, ts, None)


def test_auth_not_registered() -> None:
    req, _, ts = _recorded_auth()
    with pytest.raises(NotRegistered):
        verify_authenticate_v2(req, None, ts, None)


@pytest.mark.parametrize("version", [0, 3, CURRENT_PROTOCOL_VERSION + 1])
def test_auth_wrong_version(version: int) -> None:
    req, key, ts = _recorded_auth()
    other = build_authenticate_v2(client_identity(), key, version, ts)
    with pytest.raises(IncompatibleProtocol):
        verify_authenticate_v2(other, key, ts, None)
    assert verify_authenticate_v2(req, key, ts, None) == 6


def test_auth_bad_nonce_length_is_typed() -> None:
    req, key, ts = _recorded_auth()
    short = replace(req, nonce=req.nonce[:11])
    short = replace(short, request_signature=client_identity().sign(short.signed_bytes()))
    with pytest.raises(MalformedData):
        verify_authenticate_v2(short, key, ts, None)


def test_auth_built_live_verifies() -> None:
    key = SharedKey(bytes(range(32)))
    req = build_authenticate_v2(client_identity(), key, 6, 1_000_000.7)
    assert req.request_unix_timestamp == 1_000_000
    assert verify_authenticate_v2(req, key, 1_000_050.0, 999_999) == 6
