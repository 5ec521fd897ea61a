"""Sphinx against packets the published Nym client built (vectors/official-client).

Every hop of every recorded packet (data and SURB-ACK, versions 258 and 259) is processed
with the recorded node keys and must reproduce each recorded intermediate value.
"""

from __future__ import annotations

from typing import Any

import pytest

from smolmix_cli.mixnet.keys import x25519_public
from smolmix_cli.mixnet.packet.lioness import Lioness
from smolmix_cli.mixnet.packet.sphinx import (
    DEFAULT_VERSION,
    HEADER_SIZE,
    Destination,
    FinalHop,
    ForwardHop,
    HopKeys,
    assemble_header,
    build_packet,
    encode_payload,
    encrypt_payload,
    final_padding_length,
    version_bytes,
)
from tests.mixnet.sphinx_data import recorded_nodes, recorded_route, seeded_bytes, sphinx_packets
from tests.vectors import h


def _chains() -> list[tuple[str, list[Any], bytes]]:
    """(label, hops, final plaintext) for each data packet and each SURB-ACK packet."""
    out = []
    for packet in sphinx_packets()["packets"]:
        out.append((packet["label"], packet["hops"], h(packet["final"]["recovered_plaintext"])))
        ack = packet["surb_ack"]
        out.append((packet["label"] + " / surb_ack", ack["hops"], h(ack["ack_plaintext_21"])))
    return out


CHAIN_IDS = [
    "ipr-259",
    "ipr-259-ack",
    "cover-258",
    "cover-258-ack",
    "cover2-258",
    "cover2-258-ack",
]


@pytest.mark.parametrize("index", range(6), ids=CHAIN_IDS)
def test_every_hop_reproduces_recorded_fields(index: int) -> None:
    label, hops, plaintext = _chains()[index]
    nodes = recorded_nodes()
    packet = h(hops[0]["input_packet"])
    for hop in hops:
        assert packet == h(hop["input_packet"]), label
        assert packet[:32] == h(hop["alpha"])
        result = nodes[hop["node"]].process(packet)
        keys = result.keys
        assert keys.shared_secret == h(hop["shared_secret"])
        assert keys.expanded == h(hop["expanded_shared_secret_288"])
        assert packet[32:48] == h(hop["gamma_in_header"]) == h(hop["computed_mac"])
        assert keys.replay_tag == result.replay_tag == h(hop["replay_tag"])
        assert result.version == hop["version"]
        assert version_bytes(result.version) == h(hop["version_bytes"])
        assert result.payload_key == h(hop["payload_key_192"])
        if hop["routing_flag"] == 1:
            assert isinstance(result, ForwardHop)
            assert result.next_hop == h(hop["next_hop_address_bytes_32"])
            assert result.delay_ns == hop["delay_ns"]
            assert result.packet[:32] == h(hop["next_alpha"])
            assert result.packet == h(hop["processed_packet"])
            packet = result.packet
        else:
            assert hop["routing_flag"] == 2
            assert isinstance(result, FinalHop)
            assert result.destination == h(hop["destination"])
            assert result.identifier == h(hop["identifier"])
            assert result.payload == h(hop["decrypted_payload"])
            assert result.plaintext() == plaintext
    assert isinstance(result, FinalHop)


def test_data_packet_is_recorded_sphinx_packet_after_mix_packet_header() -> None:
    for packet in sphinx_packets()["packets"]:
        sphinx = h(packet["sphinx_packet"])
        assert sphinx == h(packet["hops"][0]["input_packet"])
        assert h(packet["mix_packet_v2"]["bytes"]).endswith(sphinx)
        ack = h(packet["final"]["surb_ack_packet_386"])
        assert ack == h(packet["surb_ack"]["hops"][0]["input_packet"])


def _final_padding(hops: list[Any]) -> bytes:
    """The random padding of the final routing block, read back with the last hop's key."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    last = HopKeys(h(hops[-1]["shared_secret"]), h(hops[-1]["expanded_shared_secret_288"]))
    beta = h(hops[-1]["input_packet"])[48:HEADER_SIZE]
    plain = (
        Cipher(algorithms.AES(last.stream_cipher_key), modes.CTR(bytes(16)))
        .encryptor()
        .update(beta)
    )
    return plain[52 : 52 + final_padding_length(len(hops))]


@pytest.mark.parametrize("index", range(6), ids=CHAIN_IDS)
def test_header_and_payload_rebuilt_byte_exact_from_recorded_secrets(index: int) -> None:
    # The sender's ephemeral secret is not recorded, but every hop's secret is: our header
    # assembly (filler, routing blocks, MACs) and payload layering must give the same bytes.
    _, hops, plaintext = _chains()[index]
    keys = [HopKeys(h(x["shared_secret"]), h(x["expanded_shared_secret_288"])) for x in hops]
    for k, hop in zip(keys, hops, strict=True):
        assert HopKeys.from_shared_secret(k.shared_secret).expanded == k.expanded
        assert k.replay_tag == h(hop["replay_tag"])
    version = hops[0]["version"]
    header = assemble_header(
        h(hops[0]["alpha"]),
        keys,
        [h(x["node_address_bytes_32"]) for x in hops],
        Destination(h(hops[-1]["destination"]), h(hops[-1]["identifier"])),
        [x["delay_ns"] for x in hops[:-1]],
        version,
        _final_padding(hops),
    )
    recorded = h(hops[0]["input_packet"])
    assert header == recorded[:HEADER_SIZE]
    encoded = encode_payload(plaintext, len(recorded) - HEADER_SIZE)
    payload = encrypt_payload(encoded, [k.payload_key(version) for k in keys])
    assert payload == recorded[HEADER_SIZE:]


def test_payload_keys_match_hop_lioness_step() -> None:
    # Each hop's decrypted payload is exactly one Lioness-decrypt of its input payload.
    for _, hops, _ in _chains():
        for hop in hops:
            inp = h(hop["input_packet"])[HEADER_SIZE:]
            peeled = Lioness(h(hop["payload_key_192"])).decrypt(inp)
            if "processed_packet" in hop:
                expected = h(hop["processed_packet"])[HEADER_SIZE:]
            else:
                expected = h(hop["decrypted_payload"])
            assert peeled == expected


@pytest.mark.parametrize("index", range(6), ids=CHAIN_IDS)
def test_our_packet_from_same_inputs_processes_identically(index: int) -> None:
    # Same route, destination, delays, version and plaintext; our own fixed ephemeral key.
    _, hops, plaintext = _chains()[index]
    nodes = recorded_nodes()
    route = recorded_route()
    assert [r.address for r in route] == [h(x["node_address_bytes_32"]) for x in hops]
    secret = bytes(range(32))
    packet = build_packet(
        route,
        Destination(h(hops[-1]["destination"]), h(hops[-1]["identifier"])),
        [x["delay_ns"] for x in hops[:-1]],
        plaintext,
        len(h(hops[0]["input_packet"])) - HEADER_SIZE,
        hops[0]["version"],
        ephemeral_secret=secret,
        random_bytes=seeded_bytes(7),
    )
    assert packet[:32] == x25519_public(secret)
    assert len(packet) == len(h(hops[0]["input_packet"]))
    for hop in hops:
        result = nodes[hop["node"]].process(packet)
        assert result.version == hop["version"]
        if isinstance(result, ForwardHop):
            assert result.next_hop == h(hop["next_hop_address_bytes_32"])
            assert result.delay_ns == hop["delay_ns"]
            packet = result.packet
        else:
            assert result.destination == h(hop["destination"])
            assert result.identifier == h(hop["identifier"])
            assert result.plaintext() == plaintext


def test_regression_client_sends_data_and_acks_as_259_covers_as_258() -> None:
    # Spec §1.3 said Nym clients emit 258 by default; spec §9.3 and the capture show data
    # packets (and their SURB-ACKs) as 259 and loop covers as 258. Our default follows 259.
    packets = sphinx_packets()["packets"]
    ipr = [p for p in packets if "IPR" in p["label"]]
    covers = [p for p in packets if "cover" in p["label"]]
    assert ipr and covers
    for p in ipr:
        assert {x["version"] for x in p["hops"] + p["surb_ack"]["hops"]} == {259}
    for p in covers:
        assert {x["version"] for x in p["hops"] + p["surb_ack"]["hops"]} == {258}
    assert ipr[0]["hops"][0]["version"] == DEFAULT_VERSION
