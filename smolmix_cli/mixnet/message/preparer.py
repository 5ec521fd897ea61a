"""From a message to MixPackets: fragments, SURB-ACKs, payload encryption, Sphinx (spec 2.2-2.5).

The glue of the sending side, sans-io: the caller passes the topology, and all
randomness comes from one injectable `random.Random` (SystemRandom by default),
so tests can replay it. Versions follow what the official client was seen to
send (spec 9.3): data packets, their acks and reply SURBs as Sphinx 259 with v2
SURB encoding; loop cover traffic and its acks as 258.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.message.ack import SurbAck, build_surb_ack
from smolmix_cli.mixnet.message.fragment import (
    COVER_FRAGMENT_ID,
    Fragment,
    FragmentId,
    number_of_required_fragments,
)
from smolmix_cli.mixnet.message.message import (
    MIN_PADDING_OVERHEAD,
    NymMessage,
    RepliableContentTag,
    RepliableMessage,
    available_plaintext_per_packet,
    split_message,
)
from smolmix_cli.mixnet.message.reply_surb import ReplySurb, ReplySurbError, v2_reply_surb_len
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.mixnet.packet.payload import (
    X25519_KEY_SIZE,
    build_payload,
    cover_plaintext,
    encrypt_regular,
    encrypt_reply,
)
from smolmix_cli.mixnet.packet.size import PacketSize, PacketType, SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import (
    VERSION_PAYLOAD_KEY_SEEDS,
    VERSION_X25519_EXPLICIT_PAYLOAD_KEYS,
    Destination,
    build_packet,
)
from smolmix_cli.mixnet.topology.route import (
    DEFAULT_AVERAGE_ACK_DELAY_NS,
    DEFAULT_AVERAGE_PACKET_DELAY_NS,
    exponential_delays,
    random_route,
    route_hops,
)
from smolmix_cli.mixnet.topology.topology import Topology

DATA_SPHINX_VERSION = VERSION_PAYLOAD_KEY_SEEDS
COVER_SPHINX_VERSION = VERSION_X25519_EXPLICIT_PAYLOAD_KEYS
SENDER_TAG_SIZE = 16
# A repliable v2 message's bytes besides data and SURBs: NymMessage type, sender tag,
# content tag, then the SURB block's count (u16), hops (u8) and key rotation (u8).
REPLIABLE_V2_OVERHEAD = 1 + SENDER_TAG_SIZE + 1 + 4
REPLY_DATA_OVERHEAD = 2  # NymMessage type, reply content tag
SURB_HOPS = 4  # three mix layers and our gateway


def fragments_needed(
    data_len: int, surbs: int = 0, packet_size: PacketSize = PacketSize.REGULAR
) -> int:
    """Sphinx packets a repliable v2 message of `data_len` bytes with `surbs` SURBs takes."""
    size = REPLIABLE_V2_OVERHEAD + data_len + surbs * v2_reply_surb_len(SURB_HOPS)
    needed, _ = number_of_required_fragments(
        size + MIN_PADDING_OVERHEAD, available_plaintext_per_packet(packet_size)
    )
    return needed


def surbs_that_fit(data_len: int, packet_size: PacketSize = PacketSize.REGULAR) -> int:
    """How many 4-hop v2 reply SURBs ride along without costing the message another packet.

    The padding of a message's last fragment is sent anyway; SURBs placed there cost a
    header to build but no Sphinx packet, where SURBs that overflow it cost a packet more
    (a 1,420-byte IP packet plus 2 SURBs took two packets).
    """
    size = REPLIABLE_V2_OVERHEAD + data_len + MIN_PADDING_OVERHEAD
    _, free = number_of_required_fragments(size, available_plaintext_per_packet(packet_size))
    return free // v2_reply_surb_len(SURB_HOPS)


def reply_fragments(data_len: int, packet_size: PacketSize = PacketSize.REGULAR) -> int:
    """Reply SURBs (one per fragment) a reply of `data_len` bytes spends."""
    needed, _ = number_of_required_fragments(
        REPLY_DATA_OVERHEAD + data_len + MIN_PADDING_OVERHEAD,
        available_plaintext_per_packet(packet_size),
    )
    return needed


@dataclass(frozen=True, slots=True)
class PreparedFragment:
    """A packet ready for the gateway, and what the sender tracks until its ack comes."""

    mix_packet: MixPacket
    fragment_id: FragmentId
    total_delay_ns: int
    route: tuple[int, ...] = ()
    """Node ids of the packet's route and its ack's, for health.NodeHealth; () when part
    of the round trip is a route we did not choose (a reply SURB's)."""


def regular_payload(
    surb_ack: bytes, fragment: bytes, recipient_encryption_key: bytes, ephemeral_private: bytes
) -> bytes:
    """SURB-ACK || ephemeral public key || AES-CTR(HKDF-BLAKE3(X25519), fragment)."""
    ephemeral_public, ciphertext = encrypt_regular(
        fragment, recipient_encryption_key, ephemeral_private
    )
    return build_payload(surb_ack, ephemeral_public, ciphertext)


def reply_payload(surb_ack: bytes, fragment: bytes, reply_key: bytes) -> bytes:
    """SURB-ACK || BLAKE3(reply key) || AES-CTR(reply key, fragment)."""
    digest, ciphertext = encrypt_reply(fragment, reply_key)
    return build_payload(surb_ack, digest, ciphertext)


class MessagePreparer:
    """Turns messages for a Recipient (or through a reply SURB) into MixPackets with acks."""

    def __init__(
        self,
        sender: Recipient,
        ack_key: bytes,
        *,
        rng: random.Random | None = None,
        average_packet_delay_ns: int = DEFAULT_AVERAGE_PACKET_DELAY_NS,
        average_ack_delay_ns: int = DEFAULT_AVERAGE_ACK_DELAY_NS,
        sphinx_version: int = DATA_SPHINX_VERSION,
        cover_sphinx_version: int = COVER_SPHINX_VERSION,
        packet_size: PacketSize = PacketSize.REGULAR,
    ) -> None:
        self.sender = sender
        self.ack_key = ack_key
        self.rng = rng if rng is not None else random.SystemRandom()
        self.average_packet_delay_ns = average_packet_delay_ns
        self.average_ack_delay_ns = average_ack_delay_ns
        self.sphinx_version = sphinx_version
        self.cover_sphinx_version = cover_sphinx_version
        self.packet_size = packet_size

    # --- fragments ---------------------------------------------------------------------

    def split(self, message: NymMessage) -> list[Fragment]:
        return split_message(message, self.rng, self.packet_size)

    def surb_ack(self, fragment_id: FragmentId, topology: Topology, version: int) -> SurbAck:
        return build_surb_ack(
            self.ack_key,
            fragment_id,
            self.sender,
            topology,
            self.rng,
            self.average_ack_delay_ns,
            version,
        )

    def _ephemeral_private(self) -> bytes:
        return self.rng.randbytes(X25519_KEY_SIZE)

    def _forward_packet(
        self, plaintext: bytes, recipient: Recipient, topology: Topology, version: int
    ) -> tuple[MixPacket, int, tuple[int, ...]]:
        route = random_route(topology, recipient.gateway, self.rng)
        delays = exponential_delays(self.average_packet_delay_ns, len(route), self.rng)
        packet = build_packet(
            route_hops(route),
            Destination(recipient.destination),
            delays,
            plaintext,
            self.packet_size.payload_size,
            version,
            random_bytes=self.rng.randbytes,
        )
        mix_packet = MixPacket(route[0].address, packet, PacketType.MIX, topology.key_rotation)
        return mix_packet, sum(delays[:-1]), tuple(n.node_id for n in route)

    def prepare_fragment(
        self, fragment: Fragment, recipient: Recipient, topology: Topology
    ) -> PreparedFragment:
        """One fragment to `recipient`: ack, encryption to its x25519 key, Sphinx to its gateway."""
        ack = self.surb_ack(fragment.fragment_id, topology, self.sphinx_version)
        plaintext = regular_payload(
            ack.to_bytes(),
            fragment.to_bytes(),
            recipient.encryption_key,
            self._ephemeral_private(),
        )
        mix_packet, delay, route = self._forward_packet(
            plaintext, recipient, topology, self.sphinx_version
        )
        return PreparedFragment(
            mix_packet, fragment.fragment_id, delay + ack.expected_delay_ns, route + ack.route
        )

    def prepare_message(
        self, message: NymMessage, recipient: Recipient, topology: Topology
    ) -> list[PreparedFragment]:
        return [self.prepare_fragment(f, recipient, topology) for f in self.split(message)]

    def prepare_reply_fragment(
        self,
        fragment: Fragment,
        reply_surb: ReplySurb,
        topology: Topology,
        key_rotation: SphinxKeyRotation = SphinxKeyRotation.UNKNOWN,
    ) -> PreparedFragment:
        """One fragment sent back through a reply SURB (the ack still comes to us)."""
        # As Nym: the ack uses our own Sphinx version, whatever version the SURB was built with.
        ack = self.surb_ack(fragment.fragment_id, topology, self.sphinx_version)
        plaintext = reply_payload(ack.to_bytes(), fragment.to_bytes(), reply_surb.reply_key)
        if len(plaintext) != self.packet_size.plaintext_size:
            raise ReplySurbError("reply fragment does not fill the packet; was it padded?")
        packet = reply_surb.apply(plaintext, self.packet_size)
        mix_packet = MixPacket(reply_surb.first_hop_address, packet, PacketType.MIX, key_rotation)
        forward = 3 * self.average_packet_delay_ns  # Nym's estimate: SURB delays are unknown
        return PreparedFragment(mix_packet, fragment.fragment_id, forward + ack.expected_delay_ns)

    # --- reply SURBs and cover ---------------------------------------------------------

    def reply_surbs(self, count: int, topology: Topology) -> list[ReplySurb]:
        """Fresh reply SURBs over [L1, L2, L3, our gateway] to ourselves."""
        surbs = []
        for _ in range(count):
            route = random_route(topology, self.sender.gateway, self.rng)
            delays = exponential_delays(self.average_packet_delay_ns, len(route), self.rng)
            surbs.append(
                ReplySurb.build(
                    route_hops(route),
                    Destination(self.sender.destination),
                    delays,
                    self.sphinx_version,
                    self.rng,
                )
            )
        return surbs

    def repliable_message(
        self, data: bytes, surbs: int, topology: Topology, sender_tag: bytes
    ) -> RepliableMessage:
        """A DataV2 message carrying `surbs` fresh reply SURBs (as the official client sends)."""
        tag = (
            RepliableContentTag.DATA_V2
            if self.sphinx_version == VERSION_PAYLOAD_KEY_SEEDS
            else RepliableContentTag.DATA
        )
        rotation = topology.key_rotation if tag.is_v2 else SphinxKeyRotation.UNKNOWN
        return RepliableMessage(
            sender_tag, tag, tuple(self.reply_surbs(surbs, topology)), data, rotation
        )

    def cover_packet(self, topology: Topology) -> PreparedFragment:
        """A loop cover packet to ourselves: cover ack id, marker plaintext, Sphinx 258."""
        version = self.cover_sphinx_version
        ack = self.surb_ack(COVER_FRAGMENT_ID, topology, version)
        content = cover_plaintext(available_plaintext_per_packet(self.packet_size))
        plaintext = regular_payload(
            ack.to_bytes(), content, self.sender.encryption_key, self._ephemeral_private()
        )
        mix_packet, delay, _route = self._forward_packet(plaintext, self.sender, topology, version)
        return PreparedFragment(mix_packet, COVER_FRAGMENT_ID, delay + ack.expected_delay_ns)
