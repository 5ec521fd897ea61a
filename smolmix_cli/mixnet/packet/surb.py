"""Sphinx single-use reply blocks (spec §1.10): a header to the creator plus payload keys.

The creator keeps nothing: the SURB bytes carry the header, the first hop and the key
material, so any holder can wrap a reply. Version 258 SURBs carry 192-byte payload keys,
version 259 SURBs 16-byte seeds (the version is implied by the key material length).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from smolmix_cli.mixnet.errors import MalformedData
from smolmix_cli.mixnet.packet.sphinx import (
    DEFAULT_VERSION,
    HEADER_SIZE,
    MAX_PATH_LENGTH,
    NODE_ADDRESS_LENGTH,
    PAYLOAD_KEY_SEED_SIZE,
    PAYLOAD_KEY_SIZE,
    REGULAR_PAYLOAD_SIZE,
    VERSION_PAYLOAD_KEY_SEEDS,
    VERSION_X25519_EXPLICIT_PAYLOAD_KEYS,
    Destination,
    RandomBytes,
    RouteHop,
    build_header,
    derive_payload_key,
    encode_payload,
    encrypt_payload,
)

MIN_SURB_LENGTH = HEADER_SIZE + NODE_ADDRESS_LENGTH + PAYLOAD_KEY_SEED_SIZE


def surb_length(hops: int, version: int) -> int:
    """Serialized size: 444 (v259) or 1148 (v258) for Nym's 4 hops."""
    per_hop = PAYLOAD_KEY_SEED_SIZE if version == VERSION_PAYLOAD_KEY_SEEDS else PAYLOAD_KEY_SIZE
    return HEADER_SIZE + NODE_ADDRESS_LENGTH + hops * per_hop


@dataclass(frozen=True, slots=True)
class Surb:
    """A SURB: header (348) ‖ first hop (32) ‖ 192-byte keys (v258) or 16-byte seeds (v259)."""

    header: bytes
    first_hop: bytes
    key_material: tuple[bytes, ...]
    version: int

    def __post_init__(self) -> None:
        if len(self.header) != HEADER_SIZE:
            raise MalformedData(f"SURB header must be {HEADER_SIZE} bytes")
        if len(self.first_hop) != NODE_ADDRESS_LENGTH:
            raise MalformedData(f"SURB first hop must be {NODE_ADDRESS_LENGTH} bytes")
        size = {
            VERSION_PAYLOAD_KEY_SEEDS: PAYLOAD_KEY_SEED_SIZE,
            VERSION_X25519_EXPLICIT_PAYLOAD_KEYS: PAYLOAD_KEY_SIZE,
        }.get(self.version)
        if size is None:
            raise MalformedData(f"SURB version must be 258 or 259, got {self.version}")
        if not 1 <= len(self.key_material) <= MAX_PATH_LENGTH:
            raise MalformedData(f"SURB must carry 1..{MAX_PATH_LENGTH} payload keys")
        if any(len(k) != size for k in self.key_material):
            raise MalformedData(f"SURB version {self.version} keys must be {size} bytes each")

    @classmethod
    def build(
        cls,
        route: Sequence[RouteHop],
        destination: Destination,
        delays: Sequence[int],
        version: int = DEFAULT_VERSION,
        *,
        ephemeral_secret: bytes | None = None,
        random_bytes: RandomBytes = os.urandom,
    ) -> Surb:
        """A SURB leading over `route` (Nym: 3 mixes, then the creator's gateway) to `destination`."""
        built = build_header(
            route,
            destination,
            delays,
            version,
            ephemeral_secret=ephemeral_secret,
            random_bytes=random_bytes,
        )
        material = (
            built.payload_key_seeds()
            if version == VERSION_PAYLOAD_KEY_SEEDS
            else [k.legacy_payload_key for k in built.hop_keys]
        )
        return cls(built.header, built.first_hop, tuple(material), version)

    @property
    def hops(self) -> int:
        return len(self.key_material)

    def payload_keys(self) -> list[bytes]:
        """192-byte Lioness keys in route order (seeds expanded for version 259)."""
        if self.version == VERSION_PAYLOAD_KEY_SEEDS:
            return [derive_payload_key(seed) for seed in self.key_material]
        return list(self.key_material)

    def to_bytes(self) -> bytes:
        return self.header + self.first_hop + b"".join(self.key_material)

    @classmethod
    def from_bytes(cls, data: bytes) -> Surb:
        """Parse; key material under 192 bytes is seeds (multiple of 16), else 192-byte keys.

        The rule is spec §1.10 (read from the 0.6.0 source). The seeds branch is confirmed
        by the captured reply SURBs; the 192-byte-key branch is unverified (none captured).
        """
        if len(data) < MIN_SURB_LENGTH:
            raise MalformedData(f"SURB too short: {len(data)} < {MIN_SURB_LENGTH} bytes")
        data = bytes(data)
        material = data[HEADER_SIZE + NODE_ADDRESS_LENGTH :]
        if len(material) < PAYLOAD_KEY_SIZE:
            size, version = PAYLOAD_KEY_SEED_SIZE, VERSION_PAYLOAD_KEY_SEEDS
        else:
            size, version = PAYLOAD_KEY_SIZE, VERSION_X25519_EXPLICIT_PAYLOAD_KEYS
        if len(material) % size:
            raise MalformedData(f"SURB key material of {len(material)} bytes is not n x {size}")
        return cls(
            data[:HEADER_SIZE],
            data[HEADER_SIZE : HEADER_SIZE + NODE_ADDRESS_LENGTH],
            tuple(material[i : i + size] for i in range(0, len(material), size)),
            version,
        )

    def use(self, plaintext: bytes, payload_size: int = REGULAR_PAYLOAD_SIZE) -> bytes:
        """The reply Sphinx packet carrying `plaintext`; send it to `self.first_hop`."""
        encoded = encode_payload(plaintext, payload_size)
        return self.header + encrypt_payload(encoded, self.payload_keys())
