"""The official client's messages to the IPR: fragments -> reassembly -> NymMessage -> envelope."""

from __future__ import annotations

from typing import Any

import pytest

from smolmix_cli.mixnet.message.fragment import Fragment, split_into_sets
from smolmix_cli.mixnet.message.message import (
    MessageError,
    PlainMessage,
    RepliableContentTag,
    RepliableMessage,
    ReplyContentTag,
    ReplyMessage,
    available_plaintext_per_packet,
    decode_message,
    encode_message,
    pad_message,
    unpad_message,
)
from smolmix_cli.mixnet.message.reassembly import Reassembler
from smolmix_cli.mixnet.message.reply_surb import ReplySurb
from smolmix_cli.mixnet.packet.payload import aes128_ctr
from smolmix_cli.mixnet.packet.size import PacketSize, SphinxKeyRotation
from smolmix_cli.mixnet.packet.surb import Surb
from tests.mixnet.replay_rng import RecordedSetIds
from tests.vectors import h, load_vector

MESSAGES = load_vector("official-client", "ipr-messages.json")["messages"]
EXCHANGE = load_vector("official-client", "ipr-exchange.json")
PER_PACKET = available_plaintext_per_packet(PacketSize.REGULAR)


@pytest.mark.parametrize("recorded", MESSAGES, ids=lambda m: m["set_id"])
def test_fragment_headers(recorded: dict[str, Any]) -> None:
    for frag in recorded["fragments"]:
        raw = h(frag["fragment_plaintext"])
        assert len(raw) == PER_PACKET
        fragment = Fragment.from_bytes(raw)
        assert fragment.header_bytes()[:4] == h(frag["set_id_wire"])
        assert fragment.set_id == int(recorded["set_id"], 16)
        assert (fragment.total, fragment.current) == (frag["total"], frag["current"])
        assert frag["link"] == 0 and not fragment.is_linked
        assert fragment.payload == h(frag["payload"])
        assert fragment.to_bytes() == raw


@pytest.mark.parametrize("recorded", MESSAGES, ids=lambda m: m["set_id"])
def test_reassembly_padding_and_message(recorded: dict[str, Any]) -> None:
    reassembler = Reassembler()
    fragments = [Fragment.from_bytes(h(f["fragment_plaintext"])) for f in recorded["fragments"]]
    results = [reassembler.insert(f, now=0.0) for f in reversed(fragments)]
    done = results[-1]
    assert done is not None and all(r is None for r in results[:-1])
    assert done.padded == h(recorded["reassembled_padded"])
    assert done.set_ids == (int(recorded["set_id"], 16),)
    assert unpad_message(done.padded) == h(recorded["nym_message"])
    assert pad_message(h(recorded["nym_message"]), PER_PACKET) == done.padded


@pytest.mark.parametrize("recorded", MESSAGES, ids=lambda m: m["set_id"])
def test_repliable_envelope_with_every_surb(recorded: dict[str, Any]) -> None:
    parsed = recorded["parsed"]
    message = decode_message(h(recorded["nym_message"]))
    assert isinstance(message, RepliableMessage)
    assert encode_message(message)[0] == parsed["nym_message_type"]
    assert message.sender_tag == h(parsed["sender_tag"])
    assert message.content_tag == parsed["content_tag"] == RepliableContentTag.DATA_V2
    assert len(message.reply_surbs) == parsed["surb_count_u16"]
    assert message.key_rotation == parsed["surb_key_rotation"]
    assert [s.to_bytes() for s in message.reply_surbs] == [
        h(s) for s in parsed["reply_surbs_460_each"]
    ]
    for surb in message.reply_surbs:
        assert surb.hops == parsed["surb_hops"] and surb.uses_seeds
    assert message.data == h(parsed["data_after_surbs"])
    assert encode_message(message) == h(recorded["nym_message"])


@pytest.mark.parametrize("recorded", MESSAGES, ids=lambda m: m["set_id"])
def test_resplitting_reproduces_recorded_fragments(recorded: dict[str, Any]) -> None:
    padded = pad_message(h(recorded["nym_message"]), PER_PACKET)
    sets = split_into_sets(padded, PER_PACKET, RecordedSetIds([int(recorded["set_id"], 16)]))
    assert len(sets) == 1
    assert [f.to_bytes() for f in sets[0]] == [
        h(f["fragment_plaintext"]) for f in recorded["fragments"]
    ]


STAGE1 = EXCHANGE["stage1_connect_messages"]


@pytest.mark.parametrize("name", ["open", "connect_request"])
def test_stage1_fragments_and_envelope_fields(name: str) -> None:
    recorded = STAGE1[name]
    fragments = []
    for frag in recorded["fragments"]:
        fragment = Fragment.from_bytes(h(frag["fragment_plaintext_1611"]))
        fields = {f["field"].split(" ")[0]: f for f in frag["fragment_header"]}
        assert fragment.header_bytes()[:4] == h(fields["set_id"]["hex"])
        assert fragment.set_id == fields["set_id"]["value"] == recorded["set_id"]
        assert fragment.total == fields["total_fragments"]["value"]
        assert fragment.current == fields["current_fragment"]["value"]
        assert fragment.header_bytes()[6:7] == h(fields["link"]["hex"])
        fragments.append(fragment)
    padded = b"".join(f.payload for f in fragments)
    nym_message = unpad_message(padded)
    assert nym_message == h(recorded["nym_message_hex"])
    assert len(nym_message) == recorded["nym_message_len"]
    message = decode_message(nym_message)
    assert isinstance(message, RepliableMessage)
    for field in recorded["envelope_fields"]:
        chunk = nym_message[field["offset"] : field["offset"] + field["len"]]
        if "hex" in field:
            assert chunk == h(field["hex"])
        if field["field"] == "sender_tag":
            assert message.sender_tag == chunk
        if field["field"].startswith("data"):
            assert message.data == chunk
        if field["field"].startswith("reply_surbs"):
            assert b"".join(s.to_bytes() for s in message.reply_surbs) == chunk
    for surb, split in zip(message.reply_surbs, recorded["reply_surbs"], strict=True):
        assert surb.to_bytes() == h(split["hex"])
        assert surb.reply_key == h(split["reply_key_16"])
        assert surb.header == h(split["header_348"])
        assert surb.first_hop == h(split["first_hop_32"])
        assert str(surb.first_hop_address) == split["first_hop_decoded"].split(" ")[1]
        assert list(surb.key_material) == [h(s) for s in split["payload_key_seeds_16"]]


STAGE2 = EXCHANGE["stage2_connect_reply"]


def test_stage2_reply_message_and_fragment() -> None:
    reply = decode_message(h(STAGE2["reply_nym_message_hex"]))
    assert isinstance(reply, ReplyMessage) and reply.content_tag is ReplyContentTag.DATA
    assert reply.data == h(STAGE2["message_data_hex"])
    assert encode_message(ReplyMessage(ReplyContentTag.DATA, h(STAGE2["message_data_hex"]))) == h(
        STAGE2["reply_nym_message_hex"]
    )
    set_id = next(f for f in STAGE2["fragment_header"] if f["field"].startswith("set_id"))["value"]
    padded = pad_message(h(STAGE2["reply_nym_message_hex"]), PER_PACKET)
    (only_set,) = split_into_sets(padded, PER_PACKET, RecordedSetIds([set_id]))
    assert [f.to_bytes() for f in only_set] == [h(STAGE2["fragment_plaintext_1611"])]


def test_stage2_reply_fragment_encryption() -> None:
    surb = ReplySurb.from_bytes(h(STAGE2["surb_used"]["hex"]))
    assert surb.reply_key == h(STAGE2["surb_used"]["reply_key_16"])
    assert surb.key_digest == h(STAGE2["reply_key_digest_blake3_32"])
    ciphertext = aes128_ctr(surb.reply_key, h(STAGE2["fragment_plaintext_1611"]))
    assert ciphertext == h(STAGE2["fragment_ciphertext_1611"])


def test_surb_request_variant_round_trips() -> None:
    variant = EXCHANGE["variants"]["surb_request_exchange"]
    raw = h(variant["ipr_surb_request_nym_message_hex"])
    message = decode_message(raw)
    assert isinstance(message, ReplyMessage)
    assert message.content_tag is ReplyContentTag.SURB_REQUEST
    fields = {f["field"]: f for f in variant["ipr_surb_request_fields"]}
    assert message.amount == fields["amount"]["value"]
    assert message.recipient is not None
    assert message.recipient.identity == h(fields["recipient.identity (IPR ed25519)"]["hex"])
    assert message.recipient.encryption_key == h(fields["recipient.encryption (IPR x25519)"]["hex"])
    assert message.recipient.gateway == h(fields["recipient.gateway (ed25519)"]["hex"])
    assert encode_message(message) == raw
    fragment = Fragment.from_bytes(h(variant["ipr_surb_request_fragment_plaintext_1611"]))
    assert unpad_message(fragment.payload) == raw


def test_additional_surbs_v2_answer_layout() -> None:
    answer = EXCHANGE["variants"]["surb_request_exchange"]["client_answer"]
    fields = {f["field"]: f for f in answer["envelope_fields"]}
    assert h(fields["content_tag"]["hex"])[0] == RepliableContentTag.ADDITIONAL_SURBS_V2
    surb = ReplySurb.from_bytes(h(answer["first_surb"]["hex"]))
    rotation = SphinxKeyRotation(h(fields["surb_key_rotation"]["hex"])[0])
    count = int.from_bytes(h(fields["surb_count"]["hex"]), "big")
    rebuilt = RepliableMessage(
        h(fields["sender_tag"]["hex"]),
        RepliableContentTag.ADDITIONAL_SURBS_V2,
        (surb,) * count,
        b"",
        rotation,
    )
    encoded = encode_message(rebuilt)
    assert len(encoded) == answer["nym_message_len"]
    prefix_end = fields["reply_surbs (50 x 460 bytes)"]["offset"]
    expected_prefix = b"".join(
        h(fields[name]["hex"])
        for name in (
            "nym_message_type",
            "sender_tag",
            "content_tag",
            "surb_count",
            "surb_hops",
            "surb_key_rotation",
        )
    )
    assert encoded[:prefix_end] == expected_prefix
    assert decode_message(encoded) == rebuilt


def test_plain_message_round_trip() -> None:
    assert decode_message(encode_message(PlainMessage(b""))) == PlainMessage(b"")


def test_envelope_refuses_surbs_its_encoding_cannot_carry() -> None:
    recorded = decode_message(h(MESSAGES[1]["nym_message"]))
    assert isinstance(recorded, RepliableMessage)
    seed_surb = recorded.reply_surbs[0]
    with pytest.raises(MessageError):  # v1 encoding expects 192-byte keys
        RepliableMessage(recorded.sender_tag, RepliableContentTag.DATA, (seed_surb,), b"x")
    with pytest.raises(MessageError):  # v1 encoding has no key rotation byte
        RepliableMessage(
            recorded.sender_tag, RepliableContentTag.DATA, (), b"x", SphinxKeyRotation.EVEN
        )
    shorter = ReplySurb(
        seed_surb.reply_key,
        Surb(
            seed_surb.header,
            seed_surb.first_hop,
            seed_surb.key_material[:3],
            seed_surb.surb.version,
        ),
    )
    with pytest.raises(MessageError):  # one hop count per v2 envelope
        RepliableMessage(
            recorded.sender_tag, RepliableContentTag.DATA_V2, (seed_surb, shorter), b"x"
        )
    body = bytearray(h(MESSAGES[1]["nym_message"]))
    body[20] = len(h(MESSAGES[1]["parsed"]["reply_surbs_460_each"][0])) // 16  # absurd hop count
    with pytest.raises(MessageError):
        decode_message(bytes(body))
