"""Version handling: 258 and 259 are processed, anything else is a typed error.

What Rust 0.6.0 does with 1/257 (legacy unclamped blinding) and with unknown values such
as 260 is not confirmed (spec §7 questions 2 and 3); the tests named `_unverified_` pin
our choice, not Nym's.
"""

from __future__ import annotations

import hmac
import os

import pytest

from smolmix_cli.mixnet.packet.sphinx import (
    SUPPORTED_VERSIONS,
    Destination,
    HopKeys,
    SphinxNode,
    UnknownRoutingFlag,
    UnknownVersion,
    _prg,
    assemble_header,
    derive_hop_keys,
    encode_payload,
    encrypt_payload,
    final_padding_length,
    parse_version,
    version_bytes,
)
from tests.mixnet.sphinx_data import make_nodes


def _packet_with_version(version: int, hops: int = 2) -> tuple[list[SphinxNode], bytes]:
    nodes, route = make_nodes(hops, seed=3)
    alpha, keys = derive_hop_keys(os.urandom(32), [r.public_key for r in route])
    header = assemble_header(
        alpha,
        keys,
        [r.address for r in route],
        Destination(bytes(32)),
        [0] * (hops - 1),
        version,
        bytes(final_padding_length(hops)),
    )
    payload = encrypt_payload(encode_payload(b"v", 100), [k.legacy_payload_key for k in keys])
    return nodes, header + payload


def test_supported_versions_are_258_and_259() -> None:
    assert frozenset({258, 259}) == SUPPORTED_VERSIONS
    assert version_bytes(258) == b"\x00\x01\x02"
    assert version_bytes(259) == b"\x00\x01\x03"
    assert parse_version(b"\x00\x01\x02") == 258


@pytest.mark.parametrize("version", [1, 257])
def test_legacy_versions_refused_unverified_whether_rust_nodes_accept(version: int) -> None:
    nodes, packet = _packet_with_version(version)
    with pytest.raises(UnknownVersion):
        nodes[0].process(packet)


@pytest.mark.parametrize("version", [0, 260, 0xFFFF])
def test_unknown_versions_refused_unverified_rust_behaviour(version: int) -> None:
    nodes, packet = _packet_with_version(version)
    with pytest.raises(UnknownVersion):
        nodes[0].process(packet)


def test_nonzero_leading_version_byte_refused_unverified() -> None:
    with pytest.raises(UnknownVersion):
        parse_version(b"\x01\x01\x03")


def test_unknown_routing_flag_is_typed_error() -> None:
    # Re-encrypt hop 0's routing block with flag 3 and a valid MAC: only the flag is wrong.
    nodes, packet = _packet_with_version(259)
    node = nodes[0]
    keys: HopKeys = node.hop_keys(packet[:32])
    routing = bytearray(_prg(keys.stream_cipher_key, packet[48:348]))
    routing[0] = 3
    beta = _prg(keys.stream_cipher_key, bytes(routing))
    gamma = hmac.digest(keys.mac_key, beta, "sha256")[:16]
    with pytest.raises(UnknownRoutingFlag):
        node.process(packet[:32] + gamma + beta + packet[348:])
