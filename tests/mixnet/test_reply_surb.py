"""Reply SURB layout (reply-surb.json) and a reply built through one (ipr-exchange.json stage 2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.message.ack import SurbAck, recover_fragment_id
from smolmix_cli.mixnet.message.fragment import Fragment
from smolmix_cli.mixnet.message.preparer import reply_payload
from smolmix_cli.mixnet.message.reply_surb import (
    ReplySurb,
    ReplySurbError,
    v1_reply_surb_len,
    v2_reply_surb_len,
)
from smolmix_cli.mixnet.packet.payload import NymPayload, decrypt_reply
from smolmix_cli.mixnet.packet.sphinx import FinalHop, SphinxNode, derive_payload_key
from tests.vectors import h, load_vector, spec_text

FIRST = load_vector("official-client", "reply-surb.json")["first"]
EXCHANGE = load_vector("official-client", "ipr-exchange.json")
STAGE2 = EXCHANGE["stage2_connect_reply"]


def test_reply_surb_splits_as_recorded() -> None:
    surb = ReplySurb.from_bytes(h(FIRST["reply_surb"]))
    assert surb.reply_key == h(FIRST["reply_key"])
    assert surb.header == h(FIRST["header"])
    assert surb.first_hop == h(FIRST["first_hop"])
    assert list(surb.key_material) == [h(s) for s in FIRST["seeds"]]
    assert [derive_payload_key(s) for s in surb.key_material] == [
        h(k) for k in FIRST["payload_keys"]
    ]
    assert surb.uses_seeds and surb.hops == len(FIRST["seeds"])
    assert len(surb) == v2_reply_surb_len(surb.hops) == len(h(FIRST["reply_surb"]))
    assert surb.to_bytes() == h(FIRST["reply_surb"])


def test_v1_and_v2_lengths_match_spec() -> None:
    section = spec_text("nym-mixnet.md").split("### 2.5", 1)[1].split("### 2.6", 1)[0]
    assert f"({v1_reply_surb_len(4)}-byte ReplySurb)" in section
    assert f"({v2_reply_surb_len(4)} bytes for 4 hops)" in section


def test_base58_round_trip() -> None:
    surb = ReplySurb.from_bytes(h(FIRST["reply_surb"]))
    assert ReplySurb.from_base58(surb.to_base58()) == surb
    with pytest.raises(ReplySurbError):
        ReplySurb.from_base58(surb.to_base58() + "0")


def _nodes_by_address() -> dict[str, bytes]:
    keys = EXCHANGE["keys"]
    out = {
        str(NodeAddress.from_bytes(h(keys["gateway"]["address_bytes_7"]))): h(
            keys["gateway"]["x25519_sphinx_private"]
        )
    }
    for node in keys["mix_nodes"].values():
        out[f"127.0.0.1:{node['port']}"] = h(node["x25519_sphinx_private"])
    return out


def test_reply_through_recorded_surb_reproduces_stage2() -> None:
    surb = ReplySurb.from_bytes(h(STAGE2["surb_used"]["hex"]))
    surb_ack = h(STAGE2["surb_ack_405"]["first_hop_19"]) + h(
        STAGE2["surb_ack_405"]["ack_packet_386"]
    )
    plaintext = reply_payload(surb_ack, h(STAGE2["fragment_plaintext_1611"]), surb.reply_key)
    assert plaintext == h(STAGE2["sphinx_plaintext_2048"])
    split = NymPayload.from_bytes(plaintext)
    assert split.variant_data == h(STAGE2["reply_key_digest_blake3_32"])
    assert split.ciphertext == h(STAGE2["fragment_ciphertext_1611"])
    packet = surb.apply(plaintext)
    assert packet == h(STAGE2["reply_sphinx_packet_2413"])

    keys = _nodes_by_address()
    address = str(surb.first_hop_address)
    while True:
        result = SphinxNode(keys[address]).process(packet)
        if isinstance(result, FinalHop):
            break
        address, packet = str(NodeAddress.from_bytes(result.next_hop)), result.packet
    assert result.destination == h(EXCHANGE["keys"]["client"]["ed25519_identity_public"])
    pushed = NymPayload.from_bytes(result.plaintext()).message
    assert pushed == h(STAGE2["gateway_push"]["plaintext_1643"])
    assert pushed[:32] == surb.key_digest
    assert decrypt_reply(pushed, surb.reply_key) == h(STAGE2["fragment_plaintext_1611"])


def test_stage2_ack_decrypts_to_reply_fragment_id() -> None:
    fragment = Fragment.from_bytes(h(STAGE2["fragment_plaintext_1611"]))
    ack_key = h(EXCHANGE["keys"]["ipr"]["ack_key_aes128_test_value"])
    ack = SurbAck.from_bytes(
        h(STAGE2["surb_ack_405"]["first_hop_19"]) + h(STAGE2["surb_ack_405"]["ack_packet_386"])
    )
    assert str(ack.first_hop) == STAGE2["surb_used"]["first_hop_decoded"].split(" ")[1]
    assert (
        recover_fragment_id(ack_key, h(STAGE2["surb_ack_405"]["ack_plaintext_21"]))
        == fragment.fragment_id
    )


def test_apply_refuses_unpadded_plaintext() -> None:
    surb = ReplySurb.from_bytes(h(FIRST["reply_surb"]))
    with pytest.raises(ReplySurbError):
        surb.apply(b"short")


@given(st.binary(max_size=1400))
def test_reply_surb_parser_raises_only_mixnet_errors(data: bytes) -> None:
    try:
        surb = ReplySurb.from_bytes(data)
    except MixnetError:
        return
    assert surb.to_bytes() == data


@given(st.integers(min_value=0, max_value=600), st.binary(min_size=1, max_size=1))
def test_truncated_or_extended_recorded_surb(cut: int, extra: bytes) -> None:
    raw = h(FIRST["reply_surb"])
    for candidate in (raw[:cut], raw + extra):
        try:
            surb = ReplySurb.from_bytes(candidate)
        except MixnetError:
            continue
        assert surb.to_bytes() == candidate
