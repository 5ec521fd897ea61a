"""A flipped bit is caught where Sphinx can catch it, with a typed error.

Header bits (alpha, gamma, beta) break the MAC at the hop that receives them, except
alpha's top bit, which X25519 ignores (the packet then processes identically). Lioness is
not authenticated, so payload bits pass every mix hop and are caught at the final hop by
the 16-zero-byte check.
"""

from __future__ import annotations

import pytest

from smolmix_cli.mixnet.errors import MalformedData, MixnetError, ReplayDetected
from smolmix_cli.mixnet.packet.sphinx import (
    HEADER_SIZE,
    MAX_PAYLOAD_SIZE,
    MIN_PAYLOAD_SIZE,
    REGULAR_PAYLOAD_SIZE,
    FinalHop,
    ForwardHop,
    HeaderMacMismatch,
    PayloadIntegrityError,
    SphinxNode,
    build_packet,
)
from tests.mixnet.sphinx_data import make_nodes, random_destination, seeded_bytes

HOPS = 4


def _packets_per_hop(version: int) -> tuple[list[SphinxNode], list[bytes], bytes]:
    """The nodes, the packet as each hop receives it, and the plaintext."""
    nodes, route = make_nodes(HOPS, seed=99)
    plaintext = b"tamper me" * 50
    packet = build_packet(
        route,
        random_destination(),
        [5] * HOPS,
        plaintext,
        version=version,
        ephemeral_secret=bytes(range(1, 33)),
        random_bytes=seeded_bytes(3),
    )
    inputs = []
    for node in nodes:
        inputs.append(packet)
        result = node.process(packet)
        if isinstance(result, ForwardHop):
            packet = result.packet
    return nodes, inputs, plaintext


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# X25519 ignores the top bit of the u-coordinate (RFC 7748 §5; x25519-dalek masks it
# too), so alpha's bit 255 is the one header bit that changes nothing at all.
ALPHA_IGNORED_BIT = 255


@pytest.mark.parametrize("version", [258, 259])
@pytest.mark.parametrize("hop", range(HOPS))
def test_every_header_bit_flip_fails_mac_at_that_hop(hop: int, version: int) -> None:
    nodes, inputs, _ = _packets_per_hop(version)
    for bit in range(HEADER_SIZE * 8):
        if bit == ALPHA_IGNORED_BIT:
            continue
        with pytest.raises(HeaderMacMismatch):
            nodes[hop].process(_flip(inputs[hop], bit))


@pytest.mark.parametrize("hop", range(HOPS))
def test_alpha_top_bit_is_ignored_and_output_identical(hop: int) -> None:
    # Not a forgery: the shared secret, replay tag and output are exactly the original's,
    # so a replay filter still drops the altered copy as a replay.
    nodes, inputs, _ = _packets_per_hop(259)
    original = nodes[hop].process(inputs[hop])
    altered = nodes[hop].process(_flip(inputs[hop], ALPHA_IGNORED_BIT))
    assert altered.replay_tag == original.replay_tag
    assert altered == original


@pytest.mark.parametrize("version", [258, 259])
@pytest.mark.parametrize("hop", range(HOPS))
def test_payload_flip_passes_mixes_and_fails_at_final_hop(hop: int, version: int) -> None:
    nodes, inputs, plaintext = _packets_per_hop(version)
    size = REGULAR_PAYLOAD_SIZE * 8
    for bit in (0, 7, 31 * 8, 32 * 8, 100 * 8 + 3, size // 2, size - 1):
        packet = _flip(inputs[hop], HEADER_SIZE * 8 + bit)
        for node in nodes[hop:]:
            result = node.process(packet)  # MACs cover only the header: no error here
            if isinstance(result, ForwardHop):
                packet = result.packet
        assert isinstance(result, FinalHop)
        with pytest.raises(PayloadIntegrityError):
            result.plaintext()
    # Control: the untouched packet recovers.
    packet = inputs[hop]
    for node in nodes[hop:]:
        result = node.process(packet)
        if isinstance(result, ForwardHop):
            packet = result.packet
    assert isinstance(result, FinalHop) and result.plaintext() == plaintext


def test_wrong_node_key_fails_mac() -> None:
    nodes, inputs, _ = _packets_per_hop(259)
    with pytest.raises(HeaderMacMismatch):
        nodes[1].process(inputs[0])


def test_truncated_and_oversized_packets() -> None:
    nodes, inputs, _ = _packets_per_hop(259)
    first = inputs[0]
    for length in (0, 1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + MIN_PAYLOAD_SIZE - 1):
        with pytest.raises(MalformedData):
            nodes[0].process(first[:length])
    with pytest.raises(MalformedData):
        nodes[0].process(first + bytes(HEADER_SIZE + MAX_PAYLOAD_SIZE + 1 - len(first)))
    # A payload cut or extended within the allowed range keeps a valid header, so mixes
    # forward it; the final hop sees a garbled Lioness block.
    for packet in (first[:-1], first + b"\0"):
        for node in nodes:
            result = node.process(packet)
            if isinstance(result, ForwardHop):
                packet = result.packet
        assert isinstance(result, FinalHop)
        with pytest.raises(PayloadIntegrityError):
            result.plaintext()


def test_replay_check_sees_the_tag_after_the_mac() -> None:
    nodes, inputs, _ = _packets_per_hop(258)
    seen: set[bytes] = set()

    def is_replay(tag: bytes) -> bool:
        if tag in seen:
            return True
        seen.add(tag)
        return False

    first = nodes[0].process(inputs[0], is_replay)
    with pytest.raises(ReplayDetected):
        nodes[0].process(inputs[0], is_replay)
    assert seen == {first.replay_tag}
    with pytest.raises(HeaderMacMismatch):  # a tampered packet never reaches the replay set
        nodes[1].process(_flip(inputs[1], 40 * 8), is_replay)
    assert len(seen) == 1


def test_errors_are_mixnet_errors() -> None:
    assert issubclass(HeaderMacMismatch, MixnetError)
    assert issubclass(PayloadIntegrityError, MixnetError)
