"""Packets built by our preparer, processed by the recorded test network's nodes."""

from __future__ import annotations

import random

import pytest

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.message.ack import SurbAck, recover_fragment_id
from smolmix_cli.mixnet.message.fragment import Fragment
from smolmix_cli.mixnet.message.message import (
    MessageError,
    RepliableContentTag,
    RepliableMessage,
    ReplyContentTag,
    ReplyMessage,
    decode_message,
    encode_message,
    new_sender_tag,
    sender_tag_from_base58,
    sender_tag_to_base58,
    split_message,
    unpad_message,
)
from smolmix_cli.mixnet.message.preparer import (
    COVER_SPHINX_VERSION,
    DATA_SPHINX_VERSION,
    MessagePreparer,
)
from smolmix_cli.mixnet.message.reassembly import Reassembler
from smolmix_cli.mixnet.message.reply_surb import ReplySurb, v1_reply_surb_len
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.mixnet.packet.payload import (
    NymPayload,
    decrypt_regular,
    decrypt_reply,
    is_cover,
    recover_fragment,
)
from tests.mixnet.recorded_net import SPHINX, recorded_topology, route_through
from tests.mixnet.replay_rng import RecordedSetIds
from tests.vectors import h, load_vector

CLIENT = Recipient.parse(SPHINX["client"]["address_text"])
IPR = Recipient.parse(SPHINX["ipr_recipient"]["address_text"])
CLIENT_ACK_KEY = h(SPHINX["client"]["ack_key_aes128"])
IPR_MESSAGE = load_vector("official-client", "ipr-messages.json")["messages"][0]
RECORDED_IPR_PACKET = next(p for p in SPHINX["packets"] if p["final"]["recipient"] == "ipr")
RECORDED_COVER = next(p for p in SPHINX["packets"] if p["final"]["recipient"] == "client")


def test_recorded_message_rebuilt_and_delivered_like_the_official_client() -> None:
    topology = recorded_topology()
    message = decode_message(h(IPR_MESSAGE["nym_message"]))
    fragments = split_message(message, RecordedSetIds([int(IPR_MESSAGE["set_id"], 16)]))
    assert [f.to_bytes() for f in fragments] == [
        h(f["fragment_plaintext"]) for f in IPR_MESSAGE["fragments"]
    ]

    preparer = MessagePreparer(CLIENT, CLIENT_ACK_KEY, rng=random.Random(11))
    ipr_private = h(SPHINX["ipr_recipient"]["x25519_encryption_private"])
    recorded_final = RECORDED_IPR_PACKET["final"]
    for fragment in fragments:
        prepared = preparer.prepare_fragment(fragment, IPR, topology)
        wire = MixPacket.from_v2_bytes(prepared.mix_packet.to_v2_bytes())
        assert wire.key_rotation == RECORDED_IPR_PACKET["mix_packet_v2"]["key_rotation"]
        assert wire.next_hop.to_unpadded() == h(
            RECORDED_IPR_PACKET["mix_packet_v2"]["next_hop_unpadded"]
        )
        assert len(wire.packet) == RECORDED_IPR_PACKET["mix_packet_v2"]["sphinx_packet_len"]

        final, hops = route_through(wire.next_hop, wire.packet)
        assert [r.version for r in hops] == [DATA_SPHINX_VERSION] * len(hops)
        assert (
            final.destination
            == IPR.identity
            == h(SPHINX["ipr_recipient"]["ed25519_identity_public"])
        )
        plaintext = final.plaintext()
        assert len(plaintext) == recorded_final["plaintext_len"]
        split = NymPayload.from_bytes(plaintext)
        assert split.surb_ack[:19] == h(recorded_final["surb_ack_first_hop_19"])
        assert len(split.message) == len(h(recorded_final["message_after_surb_ack"]))
        assert decrypt_regular(split.message, ipr_private) == fragment.to_bytes()

        ack = SurbAck.from_bytes(split.surb_ack)
        ack_final, ack_hops = route_through(ack.first_hop, ack.packet)
        assert [r.version for r in ack_hops] == [DATA_SPHINX_VERSION] * len(ack_hops)
        assert ack_final.destination == CLIENT.identity
        assert len(ack_final.plaintext()) == len(
            h(RECORDED_IPR_PACKET["surb_ack"]["ack_plaintext_21"])
        )
        assert (
            recover_fragment_id(CLIENT_ACK_KEY, ack_final.plaintext())
            == prepared.fragment_id
            == fragment.fragment_id
        )
        forward_delays = sum(r.delay_ns for r in hops[:-1]) + sum(r.delay_ns for r in ack_hops[:-1])
        assert prepared.total_delay_ns == forward_delays


def test_cover_packet_matches_recorded_cover_structure() -> None:
    preparer = MessagePreparer(CLIENT, CLIENT_ACK_KEY, rng=random.Random(12))
    prepared = preparer.cover_packet(recorded_topology())
    final, hops = route_through(prepared.mix_packet.next_hop, prepared.mix_packet.packet)
    assert [r.version for r in hops] == [COVER_SPHINX_VERSION] * len(hops)
    assert final.destination == CLIENT.identity
    split = NymPayload.from_bytes(final.plaintext())
    fragment = decrypt_regular(split.message, h(SPHINX["client"]["x25519_encryption_private"]))
    assert fragment == h(RECORDED_COVER["final"]["fragment_decryption"]["plaintext"])
    assert is_cover(fragment)
    ack = SurbAck.from_bytes(split.surb_ack)
    ack_final, _ = route_through(ack.first_hop, ack.packet)
    recovered = recover_fragment_id(CLIENT_ACK_KEY, ack_final.plaintext())
    assert recovered.to_bytes() == h(RECORDED_COVER["surb_ack"]["fragment_id_5"])


def test_zero_mean_delay_means_no_delays() -> None:
    preparer = MessagePreparer(
        CLIENT,
        CLIENT_ACK_KEY,
        rng=random.Random(13),
        average_packet_delay_ns=0,
        average_ack_delay_ns=0,
    )
    (prepared,) = preparer.prepare_message(
        ReplyMessage(ReplyContentTag.DATA, b"hi"), IPR, recorded_topology()
    )
    _, hops = route_through(prepared.mix_packet.next_hop, prepared.mix_packet.packet)
    assert [r.delay_ns for r in hops[:-1]] == [0, 0, 0]
    assert prepared.total_delay_ns == 0


def test_repliable_message_and_reply_through_our_own_surbs() -> None:
    topology = recorded_topology()
    client = MessagePreparer(CLIENT, CLIENT_ACK_KEY, rng=random.Random(14))
    sender_tag = random.Random(15).randbytes(16)
    request = client.repliable_message(b"ping" * 1000, 3, topology, sender_tag)
    handed_out = {s.key_digest: s.reply_key for s in request.reply_surbs}

    ipr_side = Reassembler()
    received = None
    for prepared in client.prepare_message(request, IPR, topology):
        final, _ = route_through(prepared.mix_packet.next_hop, prepared.mix_packet.packet)
        fragment = decrypt_regular(
            NymPayload.from_bytes(final.plaintext()).message,
            h(SPHINX["ipr_recipient"]["x25519_encryption_private"]),
        )
        done = ipr_side.insert(Fragment.from_bytes(fragment), now=1.0)
        if done is not None:
            received = decode_message(unpad_message(done.padded))
    assert isinstance(received, RepliableMessage)
    assert received == decode_message(encode_message(request))
    assert received.sender_tag == sender_tag and len(received.reply_surbs) == 3

    ipr_ack_key = random.Random(16).randbytes(16)
    ipr = MessagePreparer(IPR, ipr_ack_key, rng=random.Random(17))
    reply = ReplyMessage(ReplyContentTag.DATA, b"pong" * 300)
    client_side = Reassembler()
    answer = None
    for fragment, surb in zip(ipr.split(reply), received.reply_surbs, strict=False):
        prepared = ipr.prepare_reply_fragment(fragment, surb, topology, received.key_rotation)
        final, _ = route_through(prepared.mix_packet.next_hop, prepared.mix_packet.packet)
        assert final.destination == CLIENT.identity
        split = NymPayload.from_bytes(final.plaintext())
        reply_key = handed_out[split.variant_data]  # the client recognises its SURB by the digest
        done = client_side.insert(
            Fragment.from_bytes(decrypt_reply(split.message, reply_key)), now=2.0
        )
        if done is not None:
            answer = decode_message(unpad_message(done.padded))
        ack = SurbAck.from_bytes(split.surb_ack)
        ack_final, _ = route_through(ack.first_hop, ack.packet)
        assert ack_final.destination == IPR.identity
        assert recover_fragment_id(ipr_ack_key, ack_final.plaintext()) == fragment.fragment_id
    assert answer == reply


def test_unverified_legacy_v1_surbs_and_reply_through_them() -> None:
    """UNVERIFIED: Sphinx 258 / v1 SURB encoding (spec 2.5 default) never appeared in the capture;
    only our own encoder and parser meet here."""
    topology = recorded_topology()
    client = MessagePreparer(
        CLIENT, CLIENT_ACK_KEY, rng=random.Random(21), sphinx_version=COVER_SPHINX_VERSION
    )
    request = client.repliable_message(b"legacy", 2, topology, new_sender_tag(random.Random(22)))
    assert request.content_tag is RepliableContentTag.DATA
    encoded = encode_message(request)
    assert all(len(s) == v1_reply_surb_len(4) and not s.uses_seeds for s in request.reply_surbs)
    count_at = 1 + len(request.sender_tag) + 1  # after type, sender tag and content tag
    count = len(request.reply_surbs).to_bytes(4, "big")  # u32, no hops or rotation bytes
    assert encoded[count_at : count_at + 4] == count
    parsed = decode_message(encoded)
    assert parsed == request
    assert isinstance(parsed, RepliableMessage)

    ipr = MessagePreparer(IPR, bytes(16), rng=random.Random(23))
    (fragment,) = ipr.split(ReplyMessage(ReplyContentTag.DATA, b"legacy answer"))
    prepared = ipr.prepare_reply_fragment(fragment, parsed.reply_surbs[0], topology)
    final, hops = route_through(prepared.mix_packet.next_hop, prepared.mix_packet.packet)
    assert [r.version for r in hops] == [COVER_SPHINX_VERSION] * len(hops)
    reply_keys = {s.key_digest: s.reply_key for s in request.reply_surbs}
    data, is_reply = recover_fragment(
        NymPayload.from_bytes(final.plaintext()).message,
        h(SPHINX["client"]["x25519_encryption_private"]),
        reply_keys,
    )
    assert is_reply
    assert decode_message(unpad_message(Fragment.from_bytes(data).payload)) == ReplyMessage(
        ReplyContentTag.DATA, b"legacy answer"
    )


def test_recover_fragment_tells_replies_from_regular_pushes() -> None:
    stage2 = load_vector("official-client", "ipr-exchange.json")["stage2_connect_reply"]
    surb = ReplySurb.from_bytes(h(stage2["surb_used"]["hex"]))
    pushed = h(stage2["gateway_push"]["plaintext_1643"])
    assert recover_fragment(pushed, bytes(32), {surb.key_digest: surb.reply_key}) == (
        h(stage2["fragment_plaintext_1611"]),
        True,
    )
    cover_push = next(
        p for p in RECORDED_COVER["gateway_pushes_to_client"] if p["what"] == "message"
    )
    fragment, is_reply = recover_fragment(
        h(cover_push["plaintext"]),
        h(SPHINX["client"]["x25519_encryption_private"]),
        {surb.key_digest: surb.reply_key},
    )
    assert not is_reply and fragment == h(
        RECORDED_COVER["final"]["fragment_decryption"]["plaintext"]
    )


def test_sender_tag_text_form() -> None:
    recorded = load_vector("official-client", "ipr-messages.json")["messages"][0]["parsed"][
        "sender_tag"
    ]
    tag = h(recorded)
    assert sender_tag_from_base58(sender_tag_to_base58(tag)) == tag
    with pytest.raises(MessageError):
        sender_tag_from_base58(sender_tag_to_base58(tag)[:-2])
    assert len(new_sender_tag(random.Random(1))) == len(tag)
