"""HKDF over HMAC-BLAKE3 against the official client's gateway and packet keys."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from smolmix_cli.mixnet.kdf import blake3_digest, hkdf_blake3
from tests.vectors import h, load_vector


def test_gateway_shared_key_from_recorded_handshake() -> None:
    reg = load_vector("official-client", "gateway-handshake.json")["registration"]
    step1, step2 = reg["step1_client_init"], reg["step2_gateway_material"]
    key = hkdf_blake3(h(step2["x25519_shared_secret"]), 32, salt=h(step1["salt"]))
    assert key == h(step2["shared_key_aes256gcmsiv"])
    assert key == h(reg["shared_key_as_stored_by_client"])


def test_fragment_key_from_recorded_packets() -> None:
    packets = load_vector("official-client", "sphinx-packets.json")["packets"]
    for packet in packets:
        frag = packet["final"]["fragment_decryption"]
        secret = X25519PrivateKey.from_private_bytes(h(frag["recipient_x25519_private"])).exchange(
            X25519PublicKey.from_public_bytes(h(frag["ephemeral_public"]))
        )
        assert secret == h(frag["x25519_shared"])
        assert hkdf_blake3(secret, 16) == h(frag["aes128ctr_key_hkdf_blake3"])


def test_reply_key_digest_from_recorded_reply() -> None:
    stage2 = load_vector("official-client", "ipr-exchange.json")["stage2_connect_reply"]
    reply_key = h(stage2["surb_used"]["reply_key_16"])
    assert blake3_digest(reply_key) == h(stage2["reply_key_digest_blake3_32"])


def test_output_length_and_salt_change_the_key() -> None:
    a = hkdf_blake3(b"ikm", 64)
    assert len(a) == 64
    assert hkdf_blake3(b"ikm", 16) == a[:16]
    assert hkdf_blake3(b"ikm", 16, salt=b"x") != a[:16]
