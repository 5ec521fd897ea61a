"""The sender's key schedule (one X25519 per hop with the product of the clamped
scalars) gives the bytes of the step-by-step chain the nodes' processing implies."""

from __future__ import annotations

import random

import pytest
from nacl.bindings import crypto_scalarmult

from smolmix_cli.mixnet.keys import x25519_public
from smolmix_cli.mixnet.packet.sphinx import (
    _ORDER,
    HopKeys,
    _as_x25519_scalar,
    _on_curve,
    derive_hop_keys,
)


def chained(secret: bytes, publics: list[bytes]) -> list[HopKeys]:
    """Hop i's secret as PK_i passed through x and every earlier blinding factor."""
    scalars, keys = [secret], []
    for public in publics:
        point = public
        for scalar in scalars:
            point = crypto_scalarmult(scalar, point)
        keys.append(HopKeys.from_shared_secret(point))
        scalars.append(keys[-1].blinding_factor)
    return keys


def twist_point(rng: random.Random) -> bytes:
    while True:
        candidate = rng.randbytes(32)
        if not _on_curve(candidate):
            return candidate


@pytest.mark.parametrize("seed", range(8))
def test_product_schedule_equals_chain(seed: int) -> None:
    rng = random.Random(seed)
    secret = rng.randbytes(32)
    publics = [x25519_public(rng.randbytes(32)) for _ in range(1 + seed % 5)]
    alpha, keys = derive_hop_keys(secret, publics)
    assert alpha == x25519_public(secret)
    assert keys == chained(secret, publics)


def test_a_twist_key_takes_the_chain_with_the_same_bytes() -> None:
    rng = random.Random(7)
    secret = rng.randbytes(32)
    publics = [x25519_public(rng.randbytes(32)) for _ in range(5)]
    publics[2] = twist_point(rng)
    assert not _on_curve(publics[2]) and _on_curve(publics[3])
    assert derive_hop_keys(secret, publics)[1] == chained(secret, publics)


def test_scalar_encoding_edges() -> None:
    # t = product / 8 must land in [2^251, 2^252) for t or -t; near 0 neither does.
    assert _as_x25519_scalar(8) is None
    assert _as_x25519_scalar(0) is None
    for product in (8 << 251, -(8 << 251) % _ORDER, random.Random(1).randrange(_ORDER)):
        encoded = _as_x25519_scalar(product)
        assert encoded is not None
        k = int.from_bytes(encoded, "little")
        assert k % 8 == 0 and 1 << 254 <= k < 1 << 255  # clamping leaves it as it is
        assert k % _ORDER in (product % _ORDER, -product % _ORDER)
