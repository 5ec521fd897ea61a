"""The receive path on recorded gateway pushes and on our own packets."""

from __future__ import annotations

import contextlib
import dataclasses
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.message.fragment import FragmentId
from smolmix_cli.mixnet.message.message import (
    PlainMessage,
    ReplyContentTag,
    ReplyMessage,
    decode_message,
)
from smolmix_cli.mixnet.message.preparer import MessagePreparer
from smolmix_cli.mixnet.message.receiver import (
    AckReceived,
    CoverReceived,
    FragmentReceived,
    MessageReceived,
    MessageReceiver,
)
from smolmix_cli.mixnet.message.reply_surb import ReplySurb
from smolmix_cli.mixnet.packet.payload import NymPayload
from tests.fuzzing import scaled
from tests.mixnet.recorded_net import SPHINX, recorded_topology, route_through
from tests.vectors import h, load_vector

STAGE2 = load_vector("official-client", "ipr-exchange.json")["stage2_connect_reply"]
EXCHANGE_CLIENT = load_vector("official-client", "ipr-exchange.json")["keys"]["client"]


def _client_receiver() -> MessageReceiver:
    return MessageReceiver(
        h(SPHINX["client"]["x25519_encryption_private"]), h(SPHINX["client"]["ack_key_aes128"])
    )


def test_recorded_pushes_to_the_client() -> None:
    receiver = _client_receiver()
    for packet in SPHINX["packets"]:
        for push in packet["gateway_pushes_to_client"]:
            event = receiver.on_push(h(push["plaintext"]), now=0.0)
            if push["what"] == "ack":
                assert event == AckReceived(
                    FragmentId.from_bytes(h(packet["surb_ack"]["fragment_id_5"]))
                )
            else:
                assert event == CoverReceived()


def test_recorded_reply_recognised_by_its_key_digest() -> None:
    receiver = MessageReceiver(
        h(EXCHANGE_CLIENT["x25519_encryption_private"]), h(EXCHANGE_CLIENT["ack_key_aes128"])
    )
    receiver.remember_reply_surbs([ReplySurb.from_bytes(h(STAGE2["surb_used"]["hex"]))], now=10.0)
    event = receiver.on_push(h(STAGE2["gateway_push"]["plaintext_1643"]), now=11.0)
    assert isinstance(event, MessageReceived) and event.via_reply
    assert event.message == decode_message(h(STAGE2["reply_nym_message_hex"]))
    assert event.message == ReplyMessage(ReplyContentTag.DATA, h(STAGE2["message_data_hex"]))


def test_reply_keys_expire() -> None:
    receiver = MessageReceiver(
        h(EXCHANGE_CLIENT["x25519_encryption_private"]),
        h(EXCHANGE_CLIENT["ack_key_aes128"]),
        max_reply_key_age=60.0,
    )
    receiver.remember_reply_surbs([ReplySurb.from_bytes(h(STAGE2["surb_used"]["hex"]))], now=0.0)
    receiver.expire(now=59.0)
    assert receiver.reply_keys == 1
    receiver.expire(now=60.0)
    assert receiver.reply_keys == 0
    try:
        event = receiver.on_push(h(STAGE2["gateway_push"]["plaintext_1643"]), now=61.0)
    except MixnetError:
        return
    assert not (isinstance(event, MessageReceived) and event.via_reply)


def test_reply_keys_are_bounded_in_count_oldest_first() -> None:
    recorded = ReplySurb.from_bytes(h(STAGE2["surb_used"]["hex"]))
    others = [dataclasses.replace(recorded, reply_key=bytes([i]) * 16) for i in range(3)]
    push = h(STAGE2["gateway_push"]["plaintext_1643"])
    keys = (h(EXCHANGE_CLIENT["x25519_encryption_private"]), h(EXCHANGE_CLIENT["ack_key_aes128"]))

    newest = MessageReceiver(*keys, max_reply_keys=3)
    newest.remember_reply_surbs(others[:2], now=0.0)
    newest.remember_reply_surbs([recorded], now=1.0)
    assert newest.reply_keys == 3
    event = newest.on_push(push, now=2.0)
    assert isinstance(event, MessageReceived) and event.via_reply

    oldest = MessageReceiver(*keys, max_reply_keys=3)
    oldest.remember_reply_surbs([recorded, *others], now=0.0)
    assert oldest.reply_keys == 3  # the recorded SURB's key went first
    try:
        event = oldest.on_push(push, now=2.0)
    except MixnetError:
        return
    assert not (isinstance(event, MessageReceived) and event.via_reply)


def test_our_multi_fragment_message_end_to_end() -> None:
    ipr = Recipient.parse(SPHINX["ipr_recipient"]["address_text"])
    sender = Recipient.parse(SPHINX["client"]["address_text"])
    preparer = MessagePreparer(sender, h(SPHINX["client"]["ack_key_aes128"]), rng=random.Random(31))
    message = PlainMessage(random.Random(32).randbytes(5000))
    receiver = MessageReceiver(h(SPHINX["ipr_recipient"]["x25519_encryption_private"]), bytes(16))
    prepared = preparer.prepare_message(message, ipr, recorded_topology())
    events = []
    for item in reversed(prepared):
        final, _ = route_through(item.mix_packet.next_hop, item.mix_packet.packet)
        events.append(receiver.on_push(NymPayload.from_bytes(final.plaintext()).message, now=1.0))
    assert all(isinstance(e, FragmentReceived) and not e.via_reply for e in events[:-1])
    assert isinstance(events[-1], MessageReceived) and events[-1].message == message
    assert events[-1].set_ids == (prepared[0].fragment_id.set_id,)


@settings(max_examples=scaled(300), deadline=None)
@given(st.binary(max_size=2000))
def test_on_push_raises_only_mixnet_errors(data: bytes) -> None:
    receiver = _client_receiver()
    with contextlib.suppress(MixnetError):
        receiver.on_push(data, now=0.0)
