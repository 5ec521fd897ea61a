"""Every parser of the Sphinx layer raises only MixnetError subclasses on arbitrary input.

Default runs use a few hundred examples per parser; the `fuzz`-marked twins run 10,000.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.address import NodeAddress, Recipient
from smolmix_cli.mixnet.base58 import ALPHABET, b58decode
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.keys import (
    Ed25519KeyPair,
    X25519KeyPair,
    decode_key_base58,
    ed25519_verify,
    validate_ed25519_public,
    x25519,
)
from smolmix_cli.mixnet.packet.lioness import Lioness
from smolmix_cli.mixnet.packet.sphinx import (
    HEADER_SIZE,
    REGULAR_PAYLOAD_SIZE,
    SphinxNode,
    _prg,
    parse_version,
    recover_plaintext,
)
from smolmix_cli.mixnet.packet.surb import Surb
from tests.fuzzing import scaled
from tests.mixnet.sphinx_data import make_nodes

_NODE = make_nodes(1, seed=5)[0][0]
_KEY = bytes(range(192))

b58_text = st.text(alphabet=ALPHABET + "0OIl.@ -", max_size=120)
recipient_text = st.one_of(
    b58_text,
    st.builds(
        lambda a, b, c: f"{a}.{b}@{c}",
        st.text(ALPHABET, max_size=46),
        st.text(ALPHABET, max_size=46),
        st.text(ALPHABET, max_size=46),
    ),
)
# Near-valid Sphinx packets: a header followed by payloads of interesting lengths.
packets = st.one_of(
    st.binary(max_size=600),
    st.builds(
        lambda head, n: head + bytes(n),
        st.binary(min_size=HEADER_SIZE, max_size=HEADER_SIZE),
        st.sampled_from([0, 16, 32, 33, 38, REGULAR_PAYLOAD_SIZE, 40000]),
    ),
)


def _with_valid_mac(alpha: bytes, routing: bytes, encrypt: bool, payload: bytes) -> bytes:
    """A packet whose MAC verifies at _NODE, so routing-block parsing gets fuzzed too.

    With `encrypt`, `routing` is the plaintext routing block the node will see (so flags
    and versions hypothesis picks reach the forward/final paths); else raw beta bytes.
    """
    try:
        keys = _NODE.hop_keys(alpha)
    except MixnetError:
        return alpha + bytes(16) + routing + payload
    beta = _prg(keys.stream_cipher_key, routing) if encrypt else routing
    gamma = hmac.digest(keys.mac_key, beta, "sha256")[:16]
    return alpha + gamma + beta + payload


routing_blocks = st.builds(
    lambda flag, version, rest: bytes([flag]) + version + rest,
    st.sampled_from([0, 1, 2, 3, 255]),
    st.sampled_from([b"\x00\x01\x02", b"\x00\x01\x03", b"\x00\x01\x01", b"\x01\x01\x03"]),
    st.binary(min_size=296, max_size=296),
)
macced_packets = st.builds(
    _with_valid_mac,
    st.binary(min_size=32, max_size=32),
    routing_blocks,
    st.booleans(),
    st.one_of(st.binary(max_size=80), st.sampled_from([bytes(38), bytes(2065)])),
)
surbs = st.one_of(
    st.binary(max_size=1400),
    st.builds(
        lambda n, k: bytes(380 + n * k),
        st.integers(0, 7),
        st.sampled_from([15, 16, 17, 191, 192, 193]),
    ),
)


def _only_mixnet_errors(fn: Callable[[], object]) -> None:
    with contextlib.suppress(MixnetError):
        fn()


def _process(data: bytes, node: SphinxNode = _NODE) -> None:
    _only_mixnet_errors(lambda: node.process(data))


CASES: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], None]]] = {
    "b58decode": (b58_text, lambda t: _only_mixnet_errors(lambda: b58decode(str(t)))),
    "decode_key_base58": (
        b58_text,
        lambda t: _only_mixnet_errors(lambda: decode_key_base58(str(t), "key")),
    ),
    "recipient_parse": (
        recipient_text,
        lambda t: _only_mixnet_errors(lambda: Recipient.parse(str(t))),
    ),
    "recipient_from_bytes": (
        st.one_of(st.binary(max_size=100), st.binary(min_size=96, max_size=96)),
        lambda b: _only_mixnet_errors(lambda: Recipient.from_bytes(bytes(b))),
    ),
    "node_address": (
        st.binary(max_size=40),
        lambda b: _only_mixnet_errors(lambda: NodeAddress.from_bytes(bytes(b))),
    ),
    "surb_from_bytes": (
        surbs,
        lambda b: _only_mixnet_errors(lambda: Surb.from_bytes(bytes(b))),
    ),
    "sphinx_process": (packets, lambda b: _process(bytes(b))),
    "sphinx_process_valid_mac": (macced_packets, lambda b: _process(bytes(b))),
    "parse_version": (
        st.binary(max_size=4),
        lambda b: _only_mixnet_errors(lambda: parse_version(bytes(b))),
    ),
    "recover_plaintext": (
        st.binary(max_size=100),
        lambda b: _only_mixnet_errors(lambda: recover_plaintext(bytes(b))),
    ),
    "lioness": (
        st.binary(max_size=100),
        lambda b: _only_mixnet_errors(lambda: Lioness(_KEY).decrypt(bytes(b))),
    ),
    "x25519_keypair": (
        st.binary(max_size=40),
        lambda b: _only_mixnet_errors(lambda: X25519KeyPair.from_private_bytes(b)),
    ),
    "ed25519_keypair": (
        st.binary(max_size=40),
        lambda b: _only_mixnet_errors(lambda: Ed25519KeyPair.from_private_bytes(b)),
    ),
    "validate_ed25519_public": (
        st.binary(max_size=40),
        lambda b: _only_mixnet_errors(lambda: validate_ed25519_public(b)),
    ),
    "x25519": (
        st.tuples(st.binary(max_size=33), st.binary(max_size=33)),
        lambda t: _only_mixnet_errors(lambda: x25519(*t)),
    ),
    "ed25519_verify": (
        st.tuples(st.binary(max_size=33), st.binary(max_size=10), st.binary(max_size=65)),
        lambda t: _only_mixnet_errors(lambda: ed25519_verify(*t)),
    ),
}


def _run(name: str, examples: int) -> None:
    strategy, check = CASES[name]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def inner(value: object) -> None:
        check(value)

    inner()


@pytest.mark.parametrize("name", sorted(CASES))
def test_parser_raises_only_mixnet_errors(name: str) -> None:
    _run(name, scaled(200 if name == "sphinx_process" else 300))


def test_known_valid_inputs_do_not_error() -> None:
    # Guards the harness: the checks above must see real successes too, not only errors.
    _, route = make_nodes(1, seed=5)
    assert Surb.from_bytes(bytes(380 + 16)).hops == 1
    assert NodeAddress.from_bytes(route[0].address).port == 1789
    assert parse_version(b"\x00\x01\x03") == 259
