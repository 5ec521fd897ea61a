"""Final-hop payloads of the official client's packets, split and decrypted (spec 2.2, 2.3, 2.10)."""

from __future__ import annotations

from typing import Any

import pytest

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.keys import x25519
from smolmix_cli.mixnet.message.ack import SurbAck, ack_plaintext, is_ack_push, recover_fragment_id
from smolmix_cli.mixnet.message.fragment import Fragment, FragmentId
from smolmix_cli.mixnet.packet.payload import (
    COVER_MARKER,
    NymPayload,
    aes128_ctr,
    build_payload,
    cover_plaintext,
    decrypt_regular,
    is_cover,
    packet_key,
)
from smolmix_cli.mixnet.packet.sphinx import FinalHop, SphinxNode
from tests.vectors import h, load_vector

DATA = load_vector("official-client", "sphinx-packets.json")
PACKETS = DATA["packets"]
LABELS = [p["label"] for p in PACKETS]


def _process_to_final(packet: bytes, first: str) -> FinalHop:
    """Run a packet through the recorded nodes (helper A's processing) to its final hop."""
    keys = {
        node["mix_address"]: h(node["x25519_sphinx_private"]) for node in DATA["nodes"].values()
    }
    address = first
    while True:
        result = SphinxNode(keys[address]).process(packet)
        if isinstance(result, FinalHop):
            return result
        address = str(NodeAddress.from_bytes(result.next_hop))
        packet = result.packet


@pytest.mark.parametrize("packet", PACKETS, ids=LABELS)
def test_final_plaintext_splits_into_ack_key_and_fragment(packet: dict[str, Any]) -> None:
    final = packet["final"]
    split = NymPayload.from_bytes(h(final["recovered_plaintext"]))
    assert split.surb_ack == h(final["surb_ack_first_hop_19"]) + h(final["surb_ack_packet_386"])
    assert split.message == h(final["message_after_surb_ack"])
    dec = final["fragment_decryption"]
    assert split.variant_data == h(dec["ephemeral_public"])
    assert split.ciphertext == h(dec["ciphertext"])
    assert split.to_bytes() == h(final["recovered_plaintext"])


@pytest.mark.parametrize("packet", PACKETS, ids=LABELS)
def test_fragment_decrypts_with_recorded_keys(packet: dict[str, Any]) -> None:
    dec = packet["final"]["fragment_decryption"]
    shared = x25519(h(dec["recipient_x25519_private"]), h(dec["ephemeral_public"]))
    assert shared == h(dec["x25519_shared"])
    assert packet_key(shared) == h(dec["aes128ctr_key_hkdf_blake3"])
    assert aes128_ctr(packet_key(shared), h(dec["ciphertext"]), h(dec["iv"])) == h(dec["plaintext"])
    message = h(packet["final"]["message_after_surb_ack"])
    assert decrypt_regular(message, h(dec["recipient_x25519_private"])) == h(dec["plaintext"])


@pytest.mark.parametrize("packet", PACKETS, ids=LABELS)
def test_final_plaintext_rebuilt_from_parts(packet: dict[str, Any]) -> None:
    final = packet["final"]
    dec = final["fragment_decryption"]
    ciphertext = aes128_ctr(h(dec["aes128ctr_key_hkdf_blake3"]), h(dec["plaintext"]))
    rebuilt = build_payload(
        h(final["surb_ack_first_hop_19"]) + h(final["surb_ack_packet_386"]),
        h(dec["ephemeral_public"]),
        ciphertext,
    )
    assert rebuilt == h(final["recovered_plaintext"])


def test_cover_marker_and_ipr_fragment_header() -> None:
    for packet in PACKETS:
        dec = packet["final"]["fragment_decryption"]
        plaintext = h(dec["plaintext"])
        if "plaintext_prefix_ascii" in dec:
            assert dec["plaintext_prefix_ascii"].encode() == COVER_MARKER
            assert is_cover(plaintext)
            assert cover_plaintext(len(plaintext)) == plaintext
        else:
            assert not is_cover(plaintext)
            header = dec["fragment_header"]
            fragment = Fragment.from_bytes(plaintext)
            assert fragment.header_bytes()[:4] == h(header["set_id_wire"])
            assert (fragment.total, fragment.current) == (header["total"], header["current"])
            assert fragment.previous_set_id is None and fragment.next_set_id is None
            assert header["link"] == 0


@pytest.mark.parametrize("packet", PACKETS, ids=LABELS)
def test_ack_plaintext_decrypts_to_recorded_fragment_id(packet: dict[str, Any]) -> None:
    ack = packet["surb_ack"]
    plaintext = h(ack["ack_plaintext_21"])
    assert plaintext == h(ack["iv"]) + h(ack["encrypted_id"])
    fragment_id = recover_fragment_id(h(ack["ack_key"]), plaintext)
    assert fragment_id.to_bytes() == h(ack["fragment_id_5"])
    assert ack_plaintext(h(ack["ack_key"]), fragment_id, h(ack["iv"])) == plaintext


def test_ack_fragment_id_uses_set_id_with_top_bit_cleared() -> None:
    """Regression for spec 9.4: the ack id is NOT the wire set id (which has the top bit set)."""
    packet = next(p for p in PACKETS if "fragment_header" in p["final"]["fragment_decryption"])
    fragment = Fragment.from_bytes(h(packet["final"]["fragment_decryption"]["plaintext"]))
    recovered = recover_fragment_id(
        h(packet["surb_ack"]["ack_key"]), h(packet["surb_ack"]["ack_plaintext_21"])
    )
    assert recovered == fragment.fragment_id
    assert recovered.to_bytes()[:4] != fragment.header_bytes()[:4]
    assert (
        recovered.to_bytes()[:4]
        == bytes([fragment.header_bytes()[0] & 0x7F]) + fragment.header_bytes()[1:4]
    )


def test_cover_acks_carry_the_cover_id() -> None:
    for packet in PACKETS:
        recovered = recover_fragment_id(
            h(packet["surb_ack"]["ack_key"]), h(packet["surb_ack"]["ack_plaintext_21"])
        )
        is_cover_packet = "plaintext_prefix_ascii" in packet["final"]["fragment_decryption"]
        assert recovered.is_cover == is_cover_packet


@pytest.mark.parametrize("packet", PACKETS, ids=LABELS)
def test_surb_ack_parses_and_its_packet_reaches_the_sender(packet: dict[str, Any]) -> None:
    final = packet["final"]
    surb_ack = SurbAck.from_bytes(
        h(final["surb_ack_first_hop_19"]) + h(final["surb_ack_packet_386"])
    )
    assert surb_ack.first_hop.to_bytes() == h(DATA["nodes"]["layer1"]["node_address_bytes_32"])
    assert surb_ack.to_bytes() == h(final["surb_ack_first_hop_19"]) + h(
        final["surb_ack_packet_386"]
    )
    result = _process_to_final(surb_ack.packet, str(surb_ack.first_hop))
    assert result.destination == h(DATA["client"]["ed25519_identity_public"])
    assert result.plaintext() == h(packet["surb_ack"]["ack_plaintext_21"])


@pytest.mark.parametrize("packet", PACKETS, ids=LABELS)
def test_gateway_pushes_are_message_and_ack(packet: dict[str, Any]) -> None:
    pushes = {p["what"]: h(p["plaintext"]) for p in packet["gateway_pushes_to_client"]}
    assert pushes["ack"] == h(packet["surb_ack"]["ack_plaintext_21"])
    client_private = h(DATA["client"]["x25519_encryption_private"])
    if "message" in pushes:
        assert pushes["message"] == h(packet["final"]["message_after_surb_ack"])
        assert is_cover(decrypt_regular(pushes["message"], client_private))
    assert recover_fragment_id(h(DATA["client"]["ack_key_aes128"]), pushes["ack"]) == (
        FragmentId.from_bytes(h(packet["surb_ack"]["fragment_id_5"]))
    )


def test_ctr_counter_wraps_in_the_low_64_bits_only() -> None:
    """Nym's AES-CTR is RustCrypto Ctr64BE: the counter never carries into the IV's first half."""
    key, prefix = bytes(range(16)), bytes(range(8))
    iv_last = prefix + b"\xff" * 8
    stream = aes128_ctr(key, bytes(48), iv_last)
    assert stream[:16] == aes128_ctr(key, bytes(16), iv_last)
    assert stream[16:] == aes128_ctr(key, bytes(32), prefix + bytes(8))
    carried = bytes(range(7)) + bytes([8]) + bytes(8)  # where a 128-bit counter would go instead
    assert stream[16:32] != aes128_ctr(key, bytes(16), carried)


def test_surb_ack_rejects_wrong_sizes() -> None:
    final = PACKETS[0]["final"]
    raw = h(final["surb_ack_first_hop_19"]) + h(final["surb_ack_packet_386"])
    for bad in (raw[:-1], raw + b"\x00", b"\x09" + raw[1:]):
        with pytest.raises(MixnetError):
            SurbAck.from_bytes(bad)


def test_pushes_classified_by_length() -> None:
    for packet in PACKETS:
        for push in packet["gateway_pushes_to_client"]:
            assert is_ack_push(h(push["plaintext"])) == (push["what"] == "ack")
