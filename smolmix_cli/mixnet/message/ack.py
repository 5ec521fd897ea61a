"""SURB-ACKs: the pre-built acknowledgement every packet carries (spec 2.3, 9.4).

The ack plaintext (21 bytes) is `IV (16) || AES-128-CTR(ack key, IV, fragment id)`;
the recipient's gateway sends the ack packet back through the mixnet to the
sender's gateway, which pushes those 21 bytes to the sender. The sender alone
holds the ack key, so nobody on the path can tell which fragment is acknowledged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from smolmix_cli.mixnet.address import MAX_UNPADDED_LENGTH, NodeAddress, Recipient
from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.message.fragment import FRAGMENT_ID_LEN, FragmentId
from smolmix_cli.mixnet.packet.payload import SURB_ACK_SIZE, aes128_ctr
from smolmix_cli.mixnet.packet.size import ACK_IV_SIZE, PacketSize
from smolmix_cli.mixnet.packet.sphinx import Destination, build_packet
from smolmix_cli.mixnet.topology.route import exponential_delays, random_route, route_hops
from smolmix_cli.mixnet.topology.topology import Topology

ACK_PLAINTEXT_SIZE = ACK_IV_SIZE + FRAGMENT_ID_LEN
ACK_KEY_SIZE = 16


class AckError(MalformedData):
    """Ack bytes that cannot be an ack (wrong length, undecodable fragment id)."""


def ack_plaintext(ack_key: bytes, fragment_id: FragmentId, iv: bytes) -> bytes:
    """The 21 bytes that travel inside the ack packet."""
    if len(iv) != ACK_IV_SIZE:
        raise AckError("ack IV must be 16 bytes")
    return iv + aes128_ctr(ack_key, fragment_id.to_bytes(), iv)


def new_ack_plaintext(ack_key: bytes, fragment_id: FragmentId, rng: random.Random) -> bytes:
    return ack_plaintext(ack_key, fragment_id, rng.randbytes(ACK_IV_SIZE))


def recover_fragment_id(ack_key: bytes, plaintext: bytes) -> FragmentId:
    """The fragment id from a pushed 21-byte ack (set id with the top bit cleared)."""
    if len(plaintext) != ACK_PLAINTEXT_SIZE:
        raise AckError(f"ack plaintext must be {ACK_PLAINTEXT_SIZE} bytes, got {len(plaintext)}")
    raw = aes128_ctr(ack_key, plaintext[ACK_IV_SIZE:], plaintext[:ACK_IV_SIZE])
    return FragmentId.from_bytes(raw)


@dataclass(frozen=True, slots=True)
class SurbAck:
    """A ready ack: first hop and the 386-byte ack Sphinx packet, 405 bytes on the wire.

    `expected_delay_ns` is the sum of the mix delays the ack will sit through,
    which the sender adds to the data packet's to time retransmission.
    """

    first_hop: NodeAddress
    packet: bytes
    expected_delay_ns: int = 0
    route: tuple[int, ...] = ()
    """Node ids the ack crosses (the sender's own record; not on the wire)."""

    def __post_init__(self) -> None:
        if len(self.packet) != PacketSize.ACK.size:
            raise AckError(f"ack packet must be {PacketSize.ACK.size} bytes")

    def to_bytes(self) -> bytes:
        return self.first_hop.to_padded(MAX_UNPADDED_LENGTH) + self.packet

    @classmethod
    def from_bytes(cls, data: bytes) -> SurbAck:
        """What the recipient's gateway does with the first 405 plaintext bytes."""
        if len(data) != SURB_ACK_SIZE:
            raise AckError(f"SURB-ACK must be {SURB_ACK_SIZE} bytes, got {len(data)}")
        try:
            first_hop = NodeAddress.from_bytes(data[:MAX_UNPADDED_LENGTH])
        except MixnetError as exc:
            raise AckError(f"SURB-ACK first hop: {exc}") from exc
        return cls(first_hop, bytes(data[MAX_UNPADDED_LENGTH:]))


def build_surb_ack(
    ack_key: bytes,
    fragment_id: FragmentId,
    sender: Recipient,
    topology: Topology,
    rng: random.Random,
    average_ack_delay_ns: int,
    sphinx_version: int,
) -> SurbAck:
    """An ack packet over a fresh route [L1, L2, L3, sender's gateway] to the sender."""
    route = random_route(topology, sender.gateway, rng)
    delays = exponential_delays(average_ack_delay_ns, len(route), rng)
    plaintext = new_ack_plaintext(ack_key, fragment_id, rng)
    packet = build_packet(
        route_hops(route),
        Destination(sender.destination),
        delays,
        plaintext,
        PacketSize.ACK.payload_size,
        sphinx_version,
        random_bytes=rng.randbytes,
    )
    return SurbAck(route[0].address, packet, sum(delays[:-1]), tuple(n.node_id for n in route))


def is_ack_push(pushed: bytes) -> bool:
    """Whether a plaintext the gateway pushed is an ack (exactly 21 bytes, spec 2.11)."""
    return len(pushed) == ACK_PLAINTEXT_SIZE
