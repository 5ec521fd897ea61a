"""One frame in, one decision out: what a node does with a packet (spec 1.8, 1.11, 2.7, 2.9).

Sans-io and shared by mix nodes and gateways, so both run the same checks in the same
order: frame type, key choice by the frame's rotation label, MAC, replay tag, Sphinx
unwrap, then either "forward after the encoded delay" (frame version and rotation
label kept) or, at a gateway, the final-hop split: ack-size packets hand their 21-byte
plaintext to the client; larger ones yield the SURB-ACK (forwarded at once to its
first hop) and the message for the client named as Sphinx destination.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.errors import IntegrityError, MixnetError, ReplayDetected
from smolmix_cli.mixnet.message.ack import SurbAck
from smolmix_cli.mixnet.packet.framing import Frame
from smolmix_cli.mixnet.packet.payload import SURB_ACK_SIZE
from smolmix_cli.mixnet.packet.size import PacketSize, PacketType, SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import FinalHop, HeaderMacMismatch, SphinxNode
from smolmix_cli.testnet.nodes.replay import ReplayGuard

DEFAULT_MAX_DELAY_S = 30.0

# Counter names (the `reason` of a Drop); the node's `counters` dict uses these keys.
DROPPED_MALFORMED = "dropped_malformed"
DROPPED_BAD_MAC = "dropped_bad_mac"
DROPPED_REPLAY = "dropped_replay"
DROPPED_LOSS = "dropped_loss"
DROPPED_UNSUPPORTED = "dropped_unsupported"
DROPPED_KEY_ROTATION = "dropped_key_rotation"
DROPPED_UNEXPECTED_FINAL = "dropped_unexpected_final"
DROPPED_DELAY_TOO_LONG = "dropped_delay_too_long"


@dataclass(frozen=True, slots=True)
class Forward:
    """Send `frame` to `next_hop` once `delay_ns` has passed."""

    next_hop: NodeAddress
    frame: Frame
    delay_ns: int = 0


@dataclass(frozen=True, slots=True)
class Deliver:
    """A message for the client `destination` (its identity key); `ack` goes on at once."""

    destination: bytes
    message: bytes
    ack: Forward | None


@dataclass(frozen=True, slots=True)
class Drop:
    reason: str
    error: MixnetError | None = None


Decision = Forward | Deliver | Drop


@dataclass(frozen=True, slots=True)
class SphinxKey:
    """One of a node's Sphinx keys and the rotation parity it belongs to."""

    node: SphinxNode
    rotation: SphinxKeyRotation

    @classmethod
    def from_private(cls, private_key: bytes, rotation: SphinxKeyRotation) -> SphinxKey:
        return cls(SphinxNode(private_key), rotation)


class PacketProcessor:
    """A node's packet logic: keys, replay tags, loss, final-hop policy."""

    def __init__(
        self,
        primary: SphinxKey,
        secondary: SphinxKey | None = None,
        *,
        replay: ReplayGuard | None = None,
        accept_final: bool = False,
        loss: float = 0.0,
        rng: random.Random | None = None,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
    ) -> None:
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss must be a fraction in [0, 1], got {loss}")
        self.primary = primary
        self.secondary = secondary
        self.replay = replay if replay is not None else ReplayGuard()
        self.accept_final = accept_final
        self.loss = loss
        self._rng = rng if rng is not None else random.Random()
        self._max_delay_ns = int(max_delay_s * 1e9)

    def _keys_for(self, rotation: SphinxKeyRotation) -> list[SphinxKey]:
        """Unknown: primary then secondary; a parity: the key of that parity only."""
        keys = [self.primary] if self.secondary is None else [self.primary, self.secondary]
        if rotation is SphinxKeyRotation.UNKNOWN:
            return keys
        return [k for k in keys if k.rotation in (rotation, SphinxKeyRotation.UNKNOWN)]

    def process(self, frame: Frame) -> Decision:
        if frame.packet_type is not PacketType.MIX:
            return Drop(DROPPED_UNSUPPORTED)  # Outfox is not used by any client we serve
        keys = self._keys_for(frame.key_rotation)
        if not keys:
            return Drop(DROPPED_KEY_ROTATION)
        error: MixnetError | None = None
        for key in keys:
            cache = self.replay.cache(key.node.public_key)
            try:
                result = key.node.process(frame.packet, cache.check_and_insert)
            except HeaderMacMismatch as exc:
                error = exc
                continue  # maybe the other key
            except ReplayDetected as exc:
                return Drop(DROPPED_REPLAY, exc)
            except IntegrityError as exc:
                return Drop(DROPPED_BAD_MAC, exc)
            except MixnetError as exc:
                return Drop(DROPPED_MALFORMED, exc)
            break
        else:
            return Drop(DROPPED_BAD_MAC, error)
        if self.loss and self._rng.random() < self.loss:
            return Drop(DROPPED_LOSS)
        if isinstance(result, FinalHop):
            return self._final(frame, result)
        if result.delay_ns > self._max_delay_ns:
            return Drop(DROPPED_DELAY_TOO_LONG)
        try:
            next_hop = NodeAddress.from_bytes(result.next_hop)
            out = Frame(
                result.packet,
                frame.packet_size,
                frame.packet_type,
                frame.key_rotation,
                frame.version,
            )
        except MixnetError as exc:
            return Drop(DROPPED_MALFORMED, exc)
        return Forward(next_hop, out, result.delay_ns)

    def _final(self, frame: Frame, result: FinalHop) -> Decision:
        if not self.accept_final:
            return Drop(DROPPED_UNEXPECTED_FINAL)
        try:
            plaintext = result.plaintext()
            if frame.packet_size is PacketSize.ACK:
                return Deliver(result.destination, plaintext, None)
            surb_ack = SurbAck.from_bytes(plaintext[:SURB_ACK_SIZE])
            ack_frame = Frame(
                surb_ack.packet, PacketSize.ACK, PacketType.MIX, frame.key_rotation, frame.version
            )
        except MixnetError as exc:
            return Drop(DROPPED_MALFORMED, exc)
        return Deliver(
            result.destination,
            plaintext[SURB_ACK_SIZE:],
            Forward(surb_ack.first_hop, ack_frame, 0),
        )
