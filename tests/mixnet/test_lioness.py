"""Lioness, payload keys and the expanded shared secret against Rust outputs and spec §5.

The §5 values are parsed out of the shared spec markdown, never retyped here.
"""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from smolmix_cli.mixnet.errors import MalformedData
from smolmix_cli.mixnet.keys import x25519, x25519_public
from smolmix_cli.mixnet.packet.lioness import Lioness, lioness_decrypt, lioness_encrypt
from smolmix_cli.mixnet.packet.sphinx import (
    derive_payload_key,
    encode_payload,
    expand_shared_secret,
    recover_plaintext,
)
from tests.vectors import h, load_vector, spec_text


def _lioness_json() -> dict[str, object]:
    data = load_vector("sphinx", "lioness_payload_key.json")
    assert isinstance(data, dict)
    return data


def _section(number: str) -> str:
    """Text of spec section `### <number>` up to the next heading."""
    text = spec_text("nym-mixnet.md")
    match = re.search(rf"^### {re.escape(number)}\b.*?(?=^##)", text, re.S | re.M)
    assert match, f"spec section {number} not found"
    return match.group(0)


def _code_blocks(section: str) -> list[str]:
    return re.findall(r"```\n(.*?)```", section, re.S)


def test_lioness_raw_vectors() -> None:
    for case in _lioness_json()["lioness_raw"]:  # type: ignore[attr-defined]
        key, pt, ct = h(case["key"]), h(case["plaintext"]), h(case["ciphertext"])
        assert Lioness(key).encrypt(pt) == ct
        assert Lioness(key).decrypt(ct) == pt
        assert lioness_encrypt(key, pt) == ct and lioness_decrypt(key, ct) == pt


def test_payload_key_derivation_vectors() -> None:
    for case in _lioness_json()["payload_key_derivation"]:  # type: ignore[attr-defined]
        assert derive_payload_key(h(case["seed"])) == h(case["payload_key"])


def test_lioness_with_derived_key_and_payload_framing() -> None:
    case = _lioness_json()["lioness_with_derived_key"]
    assert isinstance(case, dict)
    key = derive_payload_key(h(case["seed"]))
    assert key == h(case["payload_key"])
    block = h(case["block"])
    assert encode_payload(h(case["message"]), len(block)) == block
    assert Lioness(key).encrypt(block) == h(case["encrypt_block"])
    assert Lioness(key).decrypt(block) == h(case["decrypt_block"])
    assert recover_plaintext(block) == h(case["message"])


def test_lioness_three_layers() -> None:
    case = _lioness_json()["lioness_three_layers"]
    assert isinstance(case, dict)
    keys = [Lioness(derive_payload_key(h(s))) for s in case["seeds"]]
    block = h(case["block"])
    for name, key in zip(("key3", "key2", "key1"), reversed(keys), strict=True):
        block = key.encrypt(block)
        assert block == h(case[f"after_encrypt_with_{name}"])
    for name, key in zip(("key1", "key2", "key3"), keys, strict=True):
        block = key.decrypt(block)
        assert block == h(case[f"after_decrypt_with_{name}"])


def test_spec_5_2_lioness_chacha20_blake2b_vector() -> None:
    blocks = _code_blocks(_section("5.2"))
    key, plaintext, ciphertext = (bytes.fromhex("".join(b.split())) for b in blocks[:3])
    assert len(key) == 192 and len(plaintext) == len(ciphertext) > 32
    assert Lioness(key).encrypt(plaintext) == ciphertext
    assert Lioness(key).decrypt(ciphertext) == plaintext


def _chacha20_rng(seed: bytes, n: int) -> bytes:
    # rand_chacha's ChaCha20Rng: the ChaCha20 keystream with key = seed, zero nonce/counter.
    cipher = Cipher(algorithms.ChaCha20(seed, bytes(16)), None)
    return cipher.encryptor().update(bytes(n))


def test_spec_5_1_expanded_shared_secret_vector() -> None:
    section = _section("5.1")
    block = _code_blocks(section)[0]
    seed_match = re.search(r"seeded with 32 bytes of 0x([0-9a-f]{2})", section)
    assert seed_match
    stream = _chacha20_rng(bytes([int(seed_match.group(1), 16)]) * 32, 64)
    sk1, sk2 = stream[:32], stream[32:]
    expanded = expand_shared_secret(x25519(sk2, x25519_public(sk1)))
    labels = list(re.finditer(r"E\[(\d+):(\d+)\]", block))
    assert len(labels) == 4
    for i, label in enumerate(labels):
        start, end = int(label.group(1)), int(label.group(2))
        segment = block[label.end() : labels[i + 1].start() if i + 1 < len(labels) else None]
        if i + 1 < len(labels):  # drop the next label's own words on the same line
            segment = segment[: segment.rfind("\n")]
        numbers = [int(x) for x in re.findall(r"\b\d+\b", segment)][-(end - start) :]
        assert len(numbers) == end - start
        assert expanded[start:end] == bytes(numbers), f"E[{start}:{end}]"


def test_spec_5_3_fixed_x25519_pairs() -> None:
    block = _code_blocks(_section("5.3"))[0]
    pairs: dict[str, dict[str, bytes]] = {}
    for name, kind, numbers in re.findall(r"^(node\d) (sk|pk) ([\d ]+)$", block, re.M):
        pairs.setdefault(name, {})[kind] = bytes(int(x) for x in numbers.split())
    assert len(pairs) == 3
    for pair in pairs.values():
        assert x25519_public(pair["sk"]) == pair["pk"]


@pytest.mark.parametrize("length", [0, 1, 31, 32])
def test_lioness_rejects_short_blocks(length: int) -> None:
    with pytest.raises(MalformedData):
        Lioness(bytes(192)).encrypt(bytes(length))


@pytest.mark.parametrize("length", [0, 191, 193])
def test_lioness_rejects_bad_key_length(length: int) -> None:
    with pytest.raises(MalformedData):
        Lioness(bytes(length))


def test_lioness_is_a_permutation_that_spreads_one_bit() -> None:
    key = bytes(range(192))
    block = bytes(100)
    flipped = bytes([1]) + bytes(99)
    a, b = Lioness(key).encrypt(block), Lioness(key).encrypt(flipped)
    # A wide-block cipher: one changed input bit changes both halves entirely.
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 90
    assert Lioness(key).decrypt(a) == block
