"""Reply SURBs as Nym hands them around: reply key (16) || Sphinx SURB (spec 2.5).

The receiver of a repliable message keeps these and answers through them; the
reply key both encrypts the reply fragment (AES-128-CTR, zero IV) and, as its
BLAKE3 digest, tells the original sender which of its SURBs came back.
v1 SURBs (Sphinx 258) carry full 192-byte payload keys per hop, v2 (259) carry
16-byte seeds: 1164 and 460 bytes for four hops. The Sphinx part is `packet.surb.Surb`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.base58 import b58decode, b58encode
from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.kdf import blake3_digest
from smolmix_cli.mixnet.packet.size import PacketSize
from smolmix_cli.mixnet.packet.sphinx import (
    HEADER_SIZE,
    NODE_ADDRESS_LENGTH,
    PAYLOAD_KEY_SEED_SIZE,
    PAYLOAD_KEY_SIZE,
    VERSION_PAYLOAD_KEY_SEEDS,
    Destination,
    RouteHop,
)
from smolmix_cli.mixnet.packet.surb import Surb

REPLY_KEY_SIZE = 16
REPLY_SURB_BASE_OVERHEAD = REPLY_KEY_SIZE + HEADER_SIZE + NODE_ADDRESS_LENGTH


class ReplySurbError(MalformedData):
    """Reply SURB bytes (or text) that do not split into key, header, hop and keys."""


def v1_reply_surb_len(hops: int) -> int:
    """Reply SURB length with 192-byte payload keys (Sphinx 258)."""
    return REPLY_SURB_BASE_OVERHEAD + hops * PAYLOAD_KEY_SIZE


def v2_reply_surb_len(hops: int) -> int:
    """Reply SURB length with 16-byte payload-key seeds (Sphinx 259)."""
    return REPLY_SURB_BASE_OVERHEAD + hops * PAYLOAD_KEY_SEED_SIZE


@dataclass(frozen=True, slots=True)
class ReplySurb:
    """A reply SURB: the 16-byte reply key and the Sphinx SURB it goes with."""

    reply_key: bytes
    surb: Surb

    def __post_init__(self) -> None:
        if len(self.reply_key) != REPLY_KEY_SIZE:
            raise ReplySurbError(f"reply key must be {REPLY_KEY_SIZE} bytes")

    @classmethod
    def build(
        cls,
        route: Sequence[RouteHop],
        destination: Destination,
        delays: Sequence[int],
        version: int,
        rng: random.Random,
    ) -> ReplySurb:
        """A fresh reply SURB over `route` (3 mixes then our gateway) back to `destination`."""
        reply_key = rng.randbytes(REPLY_KEY_SIZE)
        surb = Surb.build(route, destination, delays, version, random_bytes=rng.randbytes)
        return cls(reply_key, surb)

    @property
    def header(self) -> bytes:
        return self.surb.header

    @property
    def first_hop(self) -> bytes:
        """The 32-byte NodeAddressBytes of the node the reply goes to first."""
        return self.surb.first_hop

    @property
    def first_hop_address(self) -> NodeAddress:
        return NodeAddress.from_bytes(self.surb.first_hop)

    @property
    def key_material(self) -> tuple[bytes, ...]:
        return self.surb.key_material

    @property
    def hops(self) -> int:
        return self.surb.hops

    @property
    def uses_seeds(self) -> bool:
        """True for v2 (Sphinx 259) SURBs carrying 16-byte payload-key seeds."""
        return self.surb.version == VERSION_PAYLOAD_KEY_SEEDS

    @property
    def key_digest(self) -> bytes:
        """BLAKE3 of the reply key: the first 32 bytes of a reply as pushed to its receiver."""
        return blake3_digest(self.reply_key)

    def to_bytes(self) -> bytes:
        return self.reply_key + self.surb.to_bytes()

    def __len__(self) -> int:
        return len(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> ReplySurb:
        if len(data) <= REPLY_KEY_SIZE:
            raise ReplySurbError(f"reply SURB of {len(data)} bytes is too short")
        try:
            surb = Surb.from_bytes(bytes(data[REPLY_KEY_SIZE:]))
            NodeAddress.from_bytes(surb.first_hop)  # Nym refuses SURBs with a bad first hop
        except MixnetError as exc:
            raise ReplySurbError(f"bad reply SURB: {exc}") from exc
        return cls(bytes(data[:REPLY_KEY_SIZE]), surb)

    def to_base58(self) -> str:
        return b58encode(self.to_bytes())

    @classmethod
    def from_base58(cls, text: str) -> ReplySurb:
        try:
            raw = b58decode(text)
        except MixnetError as exc:
            raise ReplySurbError(f"reply SURB text is not base58: {exc}") from exc
        return cls.from_bytes(raw)

    def apply(self, plaintext: bytes, packet_size: PacketSize = PacketSize.REGULAR) -> bytes:
        """The reply Sphinx packet for an exactly packet-sized plaintext (Nym's `apply_surb`)."""
        if len(plaintext) != packet_size.plaintext_size:
            raise ReplySurbError(
                f"reply plaintext must be {packet_size.plaintext_size} bytes, got {len(plaintext)}"
            )
        return self.surb.use(plaintext, packet_size.payload_size)
