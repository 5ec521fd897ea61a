"""Binary frames: layout, round trips and typed refusals."""

from __future__ import annotations

import pytest

from smolmix_cli.mixnet.errors import IntegrityError, InvalidKey, MalformedData
from smolmix_cli.mixnet.gateway.frames import (
    HEADER_LEN,
    MIN_FRAME_LEN,
    MalformedFrame,
    RequestKind,
    ResponseKind,
    decrypt_push,
    decrypt_request,
    encrypt_frame,
    encrypt_push,
    encrypt_request,
    split_frame,
)
from smolmix_cli.mixnet.gateway.shared_key import NONCE_LEN, TAG_LEN, SharedKey
from tests.mixnet.gateway_vectors import handshake_vector, packets_vector
from tests.vectors import h


def _key() -> SharedKey:
    return SharedKey(h(handshake_vector()["registration"]["shared_key_as_stored_by_client"]))


def _recorded_forward() -> bytes:
    return h(packets_vector()["packets"][0]["gateway_frame"]["raw"])


def _recorded_push() -> bytes:
    return h(packets_vector()["packets"][1]["gateway_pushes_to_client"][0]["frame"])


def test_frame_size_matches_spec_example() -> None:
    packet = packets_vector()["packets"][0]
    plaintext = h(packet["mix_packet_v2"]["bytes"])
    frame = encrypt_request(RequestKind.FORWARD_SPHINX_V2, plaintext, _key())
    assert len(frame) == len(_recorded_forward()) == len(plaintext) + HEADER_LEN + TAG_LEN


def test_fresh_nonces_differ_and_roundtrip() -> None:
    key = _key()
    a = encrypt_push(b"hello", key)
    b = encrypt_push(b"hello", key)
    assert a != b and a[:2] == b[:2] == bytes((ResponseKind.PUSHED_MIX_MESSAGE, 1))
    assert decrypt_push(a, key) == decrypt_push(b, key) == b"hello"
    for kind in RequestKind:
        assert decrypt_request(encrypt_request(kind, b"pkt", key), key) == (kind, b"pkt")


def test_empty_plaintext_frame_is_minimal() -> None:
    frame = encrypt_push(b"", _key())
    assert len(frame) == MIN_FRAME_LEN
    assert decrypt_push(frame, _key()) == b""


@pytest.mark.parametrize("n", [0, 1, 2, HEADER_LEN, MIN_FRAME_LEN - 1])
def test_short_frames(n: int) -> None:
    raw = _recorded_forward()[:n]
    with pytest.raises(MalformedData):
        decrypt_request(raw, _key())
    with pytest.raises(MalformedData):
        decrypt_push(_recorded_push()[:n], _key())


@pytest.mark.parametrize("flag", [0, 2, 255])
def test_bad_encryption_flag(flag: int) -> None:
    raw = bytearray(_recorded_forward())
    raw[1] = flag
    with pytest.raises(MalformedFrame):
        decrypt_request(bytes(raw), _key())


@pytest.mark.parametrize("kind", [0, 3, 255])
def test_unknown_request_kind(kind: int) -> None:
    raw = bytearray(_recorded_forward())
    raw[0] = kind
    with pytest.raises(MalformedFrame):
        decrypt_request(bytes(raw), _key())


@pytest.mark.parametrize("kind", [0, 2, 255])
def test_unknown_push_kind(kind: int) -> None:
    raw = bytearray(_recorded_push())
    raw[0] = kind
    with pytest.raises(MalformedFrame):
        decrypt_push(bytes(raw), _key())


def test_kind_is_not_authenticated_but_must_be_known() -> None:
    """The kind byte sits outside the AEAD: v1<->v2 swaps decrypt (as in Nym)."""
    raw = bytearray(_recorded_forward())
    raw[0] = RequestKind.FORWARD_SPHINX
    kind, plaintext = decrypt_request(bytes(raw), _key())
    assert kind is RequestKind.FORWARD_SPHINX
    assert plaintext == h(packets_vector()["packets"][0]["mix_packet_v2"]["bytes"])


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_tampering_fails_the_tag(where: str) -> None:
    raw = bytearray(_recorded_forward())
    index = {"nonce": 2, "ciphertext": HEADER_LEN + 100, "tag": len(raw) - 1}[where]
    raw[index] ^= 0x04
    with pytest.raises(IntegrityError):
        decrypt_request(bytes(raw), _key())


def test_truncated_ciphertext_fails_the_tag() -> None:
    with pytest.raises(IntegrityError):
        decrypt_push(_recorded_push()[:-1], _key())


def test_wrong_key() -> None:
    with pytest.raises(IntegrityError):
        decrypt_request(_recorded_forward(), SharedKey(bytes(32)))
    with pytest.raises(IntegrityError):
        decrypt_push(_recorded_push(), SharedKey(bytes(32)))


def test_split_frame_parts() -> None:
    frame = packets_vector()["packets"][0]["gateway_frame"]
    parts = split_frame(h(frame["raw"]))
    assert (parts.kind, parts.nonce, parts.ciphertext) == (
        frame["kind"],
        h(frame["nonce"]),
        h(frame["ciphertext_with_tag"]),
    )
    assert parts.to_bytes() == h(frame["raw"])


def test_key_and_nonce_lengths_are_typed() -> None:
    with pytest.raises(InvalidKey):
        SharedKey(bytes(31))
    with pytest.raises(MalformedData):
        encrypt_frame(1, b"x", _key(), nonce=bytes(NONCE_LEN - 1))
    with pytest.raises(MalformedData):
        _key().decrypt(bytes(TAG_LEN - 1), bytes(NONCE_LEN))
    assert repr(_key()) == "SharedKey(<32 bytes>)"
