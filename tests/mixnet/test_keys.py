"""Keys and base58 against the official client's key material and Nym's fixtures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.mixnet.base58 import ALPHABET, b58decode, b58encode
from smolmix_cli.mixnet.errors import IntegrityError, InvalidKey, MalformedData
from smolmix_cli.mixnet.keys import (
    Ed25519KeyPair,
    X25519KeyPair,
    decode_key_base58,
    ed25519_verify,
    is_ed25519_point,
    validate_ed25519_public,
    x25519,
    x25519_public,
)
from tests.vectors import h, load_vector


@given(st.binary(max_size=80))
def test_base58_round_trip(data: bytes) -> None:
    text = b58encode(data)
    assert set(text) <= set(ALPHABET)
    assert b58decode(text) == data


def test_base58_leading_zeros_are_ones() -> None:
    assert b58encode(b"\0\0\x01") == "112"
    assert b58decode("112") == b"\0\0\x01"
    assert b58encode(b"") == "" and b58decode("") == b""


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "abc!", "é"])
def test_base58_rejects_characters_outside_alphabet(bad: str) -> None:
    with pytest.raises(MalformedData):
        b58decode(bad)


def test_recorded_node_keys_in_base58_and_public_from_private() -> None:
    data = load_vector("official-client", "sphinx-packets.json")
    for node in data["nodes"].values():
        pair = X25519KeyPair.from_private_bytes(h(node["x25519_sphinx_private"]))
        assert pair.public_bytes == h(node["x25519_sphinx_public"])
        assert pair.public_base58() == node["x25519_sphinx_public_base58"]
        assert decode_key_base58(node["x25519_sphinx_public_base58"], "k") == pair.public_bytes
    gw = data["gateway_identity"]
    ident = Ed25519KeyPair.from_private_bytes(h(gw["ed25519_identity_private"]))
    assert ident.public_bytes == h(gw["ed25519_identity_public"])
    assert ident.public_base58() == gw["ed25519_identity_public_base58"]
    client = data["client"]
    assert Ed25519KeyPair.from_private_bytes(
        h(client["ed25519_identity_private"])
    ).public_bytes == h(client["ed25519_identity_public"])
    assert x25519_public(h(client["x25519_encryption_private"])) == h(
        client["x25519_encryption_public"]
    )


def test_recorded_fragment_key_exchange() -> None:
    frag = load_vector("official-client", "sphinx-packets.json")["packets"][0]["final"][
        "fragment_decryption"
    ]
    shared = x25519(h(frag["recipient_x25519_private"]), h(frag["ephemeral_public"]))
    assert shared == h(frag["x25519_shared"])


def test_recorded_gateway_handshake_signature_verifies() -> None:
    data = load_vector("official-client", "gateway-handshake.json")
    step2 = data["registration"]["step2_gateway_material"]
    public = h(data["gateway"]["ed25519_identity_public"])
    message = h(step2["signed_message_gw_eph_then_client_eph"])
    signature = h(step2["gateway_signature"])
    ed25519_verify(public, message, signature)
    with pytest.raises(IntegrityError):
        ed25519_verify(public, message + b"x", signature)


def test_sign_verify_round_trip_and_rejection() -> None:
    pair = Ed25519KeyPair.generate()
    sig = pair.sign(b"hello")
    ed25519_verify(pair.public_bytes, b"hello", sig)
    with pytest.raises(IntegrityError):
        ed25519_verify(pair.public_bytes, b"hellO", sig)
    with pytest.raises(IntegrityError):
        ed25519_verify(pair.public_bytes, b"hello", sig[:63])


def test_x25519_exchange_is_symmetric() -> None:
    a, b = X25519KeyPair.generate(), X25519KeyPair.generate()
    assert a.exchange(b.public_bytes) == b.exchange(a.public_bytes)


def test_x25519_rejects_low_order_point_and_bad_lengths() -> None:
    with pytest.raises(InvalidKey):
        x25519(bytes(range(32)), bytes(32))  # u = 0: all-zero result
    with pytest.raises(InvalidKey):
        x25519(bytes(31), bytes(32))
    with pytest.raises(InvalidKey):
        X25519KeyPair.from_private_bytes(bytes(33))


def test_ed25519_point_check() -> None:
    assert is_ed25519_point(Ed25519KeyPair.generate().public_bytes)
    # y = 2 has no x on the curve (x^2 = 3/(4d+1) is a non-square mod p).
    not_point = (2).to_bytes(32, "little")
    assert not is_ed25519_point(not_point)
    with pytest.raises(InvalidKey):
        validate_ed25519_public(not_point)
    with pytest.raises(InvalidKey):
        validate_ed25519_public(bytes(31))


def test_decode_key_base58_errors_are_invalid_key() -> None:
    with pytest.raises(InvalidKey, match="32 bytes"):
        decode_key_base58("abc", "gateway key")
    with pytest.raises(InvalidKey, match="base58"):
        decode_key_base58("0" * 44, "gateway key")


def test_decode_key_base58_max_length() -> None:
    # 32 bytes take at most 44 base58 characters (all-zero key: 32 '1's).
    assert decode_key_base58("1" * 32, "k") == bytes(32)
    assert len(b58encode(b"\xff" * 32)) == 44
    with pytest.raises(InvalidKey, match="too long"):
        decode_key_base58("2" * 45, "k")
