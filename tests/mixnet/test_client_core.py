"""The sans-io client core on a virtual clock, its packets carried by real Sphinx nodes."""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.client.core import (
    FLOOR_DECAY_ACKS,
    MEASURED_ACK_FLOOR,
    MIN_ACK_SAMPLES,
    ClientCore,
    CoreConfig,
    CoreEvent,
    InvalidConfig,
    MessageDelivered,
    MessageFailed,
    NoReplySurbs,
    ReceivedMessage,
)
from smolmix_cli.mixnet.keys import Ed25519KeyPair, X25519KeyPair
from smolmix_cli.mixnet.message.preparer import MessagePreparer
from smolmix_cli.mixnet.message.receiver import MessageReceiver
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.mixnet.packet.size import PacketSize
from tests.fuzzing import scaled
from tests.mixnet.simnet import SimNet, build_simnet

QUIET = CoreConfig(poisson=False, cover=False)


def make_core(
    net: SimNet,
    gateway: int,
    seed: int,
    config: CoreConfig = QUIET,
    *,
    packet_delay_ns: int = 0,
    ack_delay_ns: int = 0,
) -> ClientCore:
    rng = random.Random(seed)
    identity = Ed25519KeyPair.from_private_bytes(rng.randbytes(32))
    encryption = X25519KeyPair.from_private_bytes(rng.randbytes(32))
    ack_key = rng.randbytes(16)
    address = Recipient(
        identity.public_bytes, encryption.public_bytes, net.gateways[gateway].node.identity
    )
    preparer = MessagePreparer(
        address,
        ack_key,
        rng=random.Random(seed + 1),
        average_packet_delay_ns=packet_delay_ns,
        average_ack_delay_ns=ack_delay_ns,
    )
    receiver = MessageReceiver(encryption.private_bytes, ack_key)
    return ClientCore(
        preparer, receiver, net.topology, config=config, rng=random.Random(seed + 2), now=0.0
    )


@dataclass
class World:
    """Clients attached to a SimNet, stepped on a virtual clock with instant delivery."""

    net: SimNet
    clients: list[ClientCore]
    now: float = 0.0
    drop: Callable[[MixPacket], bool] | None = None
    route: bool = True
    """False: only record what is sent (for schedule statistics)."""
    sent: list[tuple[float, int, MixPacket]] = field(default_factory=list)
    events: list[list[CoreEvent]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.events = [[] for _ in self.clients]

    def by_identity(self, identity: bytes) -> ClientCore:
        return next(c for c in self.clients if c.address.identity == identity)

    def step(self) -> None:
        for index, core in enumerate(self.clients):
            core.handle_timeout(self.now)
            while (packet := core.poll_transmit(self.now)) is not None:
                self.sent.append((self.now, index, packet))
                if not self.route:
                    continue
                for push in self.net.route(packet, self.drop):
                    self.by_identity(push.client).handle_push(push.plaintext, self.now)
        for index, core in enumerate(self.clients):
            while (event := core.poll_event()) is not None:
                self.events[index].append(event)

    def run_until(self, end: float) -> None:
        """Jump from deadline to deadline until `end`."""
        while True:
            self.step()
            deadline = min(d for c in self.clients if (d := c.poll_deadline()) is not None)
            if deadline > end:
                self.now = end
                self.step()
                return
            self.now = max(self.now, deadline)


def _route_delays(net: SimNet, packet: MixPacket) -> float:
    """Sum of the Sphinx delays the mix layers read from the data packet and its ack."""
    from smolmix_cli.mixnet.address import NodeAddress
    from smolmix_cli.mixnet.message.ack import SurbAck
    from smolmix_cli.mixnet.packet.payload import SURB_ACK_SIZE
    from smolmix_cli.mixnet.packet.sphinx import FinalHop

    total = 0
    todo = [(str(packet.next_hop), packet.packet)]
    while todo:
        address, data = todo.pop()
        while True:
            result = net.nodes[address].sphinx.process(data)
            if isinstance(result, FinalHop):
                break
            total += result.delay_ns
            address, data = str(NodeAddress.from_bytes(result.next_hop)), result.packet
        if len(data) != PacketSize.ACK.size:
            ack = SurbAck.from_bytes(result.plaintext()[:SURB_ACK_SIZE])
            todo.append((str(ack.first_hop), ack.packet))
    return total / 1e9


def _payload(n: int, seed: int = 5) -> bytes:
    return random.Random(seed).randbytes(n)


def deliver(
    net: SimNet, packet: MixPacket | None, a: ClientCore, b: ClientCore, at: float
) -> list[bytes]:
    """Route A's packet: its data reaches B at `at`; A's acks are returned for the
    test to hand over when it likes (late, twice, never)."""
    assert packet is not None
    acks = []
    for push in net.route(packet, None):
        if push.client == a.address.identity:
            acks.append(push.plaintext)
        else:
            b.handle_push(push.plaintext, at)
    return acks


def test_message_delivered_and_acknowledged() -> None:
    net = build_simnet()
    a, b = make_core(net, 0, 10), make_core(net, 1, 20)
    world = World(net, [a, b])
    data = _payload(5000)
    mid = a.send_message(b.address, data, now=0.0)
    fragments = a.queued
    assert fragments == 4 and a.pending_acks == 4
    world.run_until(1.0)
    assert world.events[1] == [ReceivedMessage(data, None, False)]
    assert world.events[0] == [MessageDelivered(mid)]
    assert a.pending_acks == 0 and a.outstanding_messages() == set()
    assert a.stats.real_packets_sent == fragments and a.stats.acks_received == fragments
    assert a.stats.retransmissions == 0 and a.stats.cover_packets_sent == 0
    assert b.stats.messages_received == 1 and b.stats.fragments_received == fragments
    # Quiet configuration: nothing more is sent when idle.
    before = len(world.sent)
    world.run_until(100.0)
    assert len(world.sent) == before


def test_lost_acks_are_retransmitted_on_time_with_fresh_packets() -> None:
    net = build_simnet()
    a, b = make_core(net, 0, 11), make_core(net, 1, 21)
    world = World(net, [a, b])
    acks_to_drop = 2

    def drop(packet: MixPacket) -> bool:
        nonlocal acks_to_drop
        if len(packet.packet) == PacketSize.ACK.size and acks_to_drop > 0:
            acks_to_drop -= 1
            return True
        return False

    world.drop = drop
    data = _payload(100)
    mid = a.send_message(b.address, data, now=0.0)
    world.run_until(1.49)  # zero mix delays: the ack wait is 0 * 1.5 + 1.5 s
    assert a.stats.retransmissions == 0 and a.pending_acks == 1
    assert a.poll_deadline() == pytest.approx(1.5)
    world.run_until(10.0)
    times = [t for t, who, _ in world.sent if who == 0]
    assert times == pytest.approx([0.0, 1.5, 3.0])
    packets = [p for _, who, p in world.sent if who == 0]
    assert len({p.packet for p in packets}) == 3  # every retransmission is a new Sphinx packet
    assert a.stats.retransmissions == 2 and a.stats.stray_acks == 0
    assert world.events[0] == [MessageDelivered(mid)]
    # The receiver got the fragment three times and delivered the message once.
    assert world.events[1] == [ReceivedMessage(data, None, False)]


def test_ack_timeout_uses_expected_round_trip() -> None:
    net = build_simnet()
    a = make_core(net, 0, 12, packet_delay_ns=50_000_000, ack_delay_ns=20_000_000)
    b = make_core(net, 1, 22)
    a.send_message(b.address, b"x", now=0.0)
    packet = a.poll_transmit(5.0)
    assert packet is not None
    # Recompute the expected RTT from what the nodes will read: data hops, then the ack's.
    pending = next(iter(a._pending.values()))
    rtt = pending.expected_rtt
    assert rtt > 0
    assert a.poll_deadline() == pytest.approx(5.0 + rtt * 1.5 + 1.5)
    pushes_delay = _route_delays(net, packet)
    assert rtt == pytest.approx(pushes_delay, abs=1e-9)


def test_retry_limit_fails_the_message() -> None:
    net = build_simnet()
    config = CoreConfig(poisson=False, cover=False, max_retransmissions=2)
    a, b = make_core(net, 0, 13, config), make_core(net, 1, 23)
    world = World(net, [a, b])
    world.drop = lambda packet: len(packet.packet) == PacketSize.ACK.size
    mid = a.send_message(b.address, _payload(3000), now=0.0)
    world.run_until(20.0)
    assert world.events[0] == [MessageFailed(mid, "no ack after 2 retransmissions")]
    assert a.pending_acks == 0 and a.outstanding_messages() == set()
    assert a.stats.messages_failed == 1
    sent_by_a = [t for t, who, _ in world.sent if who == 0]
    assert len(sent_by_a) == 2 * 3  # two fragments, each sent three times
    assert max(sent_by_a) == pytest.approx(3.0)


def test_repliable_message_and_reply_through_surbs() -> None:
    net = build_simnet()
    a, b = make_core(net, 0, 14), make_core(net, 1, 24)
    world = World(net, [a, b])
    request = _payload(200, 1)
    a.send_message(b.address, request, reply_surbs=5, now=0.0)
    world.run_until(1.0)
    received = [e for e in world.events[1] if isinstance(e, ReceivedMessage)]
    assert len(received) == 1 and received[0].data == request
    tag = received[0].sender_tag
    assert tag is not None and len(tag) == 16
    assert b.reply_surbs_available(tag) == 5 and b.stats.reply_surbs_received == 5
    # A second message to the same recipient carries the same tag.
    a.send_message(b.address, b"again", reply_surbs=1, now=1.0)
    world.run_until(2.0)
    again = [e for e in world.events[1] if isinstance(e, ReceivedMessage)][1]
    assert again.sender_tag == tag and b.reply_surbs_available(tag) == 6

    reply = _payload(3000, 2)
    mid = b.send_reply(tag, reply, now=2.0)
    used = b.queued
    assert used >= 2 and b.reply_surbs_available(tag) == 6 - used
    world.run_until(3.0)
    assert ReceivedMessage(reply, None, True) in world.events[0]
    assert MessageDelivered(mid) in world.events[1]

    with pytest.raises(NoReplySurbs) as info:
        b.send_reply(tag, _payload(10_000, 3), now=3.0)
    assert info.value.needed > info.value.available == 6 - used
    assert b.reply_surbs_available(tag) == 6 - used  # nothing consumed by the refusal
    with pytest.raises(NoReplySurbs):
        b.send_reply(b"\x00" * 16, b"hi", now=3.0)


def test_repliable_message_without_surbs_still_names_its_sender_tag() -> None:
    """An exit IPR knows its clients by sender tag: a data message that brings no SURBs
    must still carry it (as a repliable message with an empty SURB block)."""
    net = build_simnet()
    a, b = make_core(net, 0, 16), make_core(net, 1, 26)
    world = World(net, [a, b])
    a.send_message(b.address, b"with", reply_surbs=1, now=0.0)
    a.send_message(b.address, b"without", repliable=True, now=0.0)
    a.send_message(b.address, b"plain", now=0.0)
    world.run_until(1.0)
    tags = {e.data: e.sender_tag for e in world.events[1] if isinstance(e, ReceivedMessage)}
    assert tags[b"with"] is not None and tags[b"without"] == tags[b"with"]
    assert tags[b"plain"] is None


def _sender_tag(world: World, a: ClientCore, b: ClientCore, data: bytes, surbs: int) -> bytes:
    """`a` sends `b` a repliable message; the sender tag `b` answers it by."""
    a.send_message(b.address, data, reply_surbs=surbs, now=0.0)
    world.run_until(1.0)
    tag = next(e for e in world.events[1] if isinstance(e, ReceivedMessage)).sender_tag
    assert tag is not None
    return tag


def test_reply_retransmission_spends_another_surb_then_fails_when_none_left() -> None:
    net = build_simnet()
    a, b = make_core(net, 0, 15), make_core(net, 1, 25)
    world = World(net, [a, b])
    tag = _sender_tag(world, a, b, b"q", 2)
    world.drop = lambda packet: len(packet.packet) == PacketSize.ACK.size
    mid = b.send_reply(tag, b"r", now=1.0)
    world.run_until(10.0)
    assert b.reply_surbs_available(tag) == 0
    failed = [e for e in world.events[1] if isinstance(e, MessageFailed)]
    assert len(failed) == 1 and failed[0].message_id == mid
    assert "cannot retransmit" in failed[0].reason
    # The reply itself arrived (twice); the sender saw it once.
    assert [e for e in world.events[0] if isinstance(e, ReceivedMessage)] == [
        ReceivedMessage(b"r", None, True)
    ]


def test_poisson_main_stream_spacing_is_exponential() -> None:
    net = build_simnet()
    config = CoreConfig(poisson=True, cover=False, poisson_cover=True)
    a = make_core(net, 0, 16, config)
    world = World(net, [a], route=False)
    world.run_until(20.0)
    times = [t for t, _, _ in world.sent]
    gaps = [y - x for x, y in itertools.pairwise(times)]
    assert len(gaps) > 800
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(0.020, rel=0.1)
    # Exponential: standard deviation equals the mean.
    assert statistics.pstdev(gaps) == pytest.approx(mean, rel=0.15)
    assert a.stats.cover_packets_sent == len(times) and a.stats.real_packets_sent == 0


def test_poisson_paces_real_packets_and_takes_them_before_cover() -> None:
    net = build_simnet()
    config = CoreConfig(poisson=True, cover=False, poisson_cover=False)
    a, b = make_core(net, 0, 17, config), make_core(net, 1, 27, QUIET)
    world = World(net, [a, b])
    data = _payload(60_000)
    mid = a.send_message(b.address, data, now=0.0)
    n = a.queued
    world.run_until(30.0)
    times = [t for t, who, _ in world.sent if who == 0]
    assert len(times) == n  # nothing but the message: no cover in empty slots
    gaps = [y - x for x, y in itertools.pairwise(times)]
    assert min(gaps) > 0 and statistics.fmean(gaps) == pytest.approx(0.020, rel=0.35)
    assert ReceivedMessage(data, None, False) in world.events[1]
    assert MessageDelivered(mid) in world.events[0]


def test_poisson_off_sends_at_once() -> None:
    net = build_simnet()
    a, b = make_core(net, 0, 18), make_core(net, 1, 28)
    a.send_message(b.address, _payload(20_000), now=7.0)
    assert a.poll_deadline() == float("-inf")
    n = a.queued
    sent = 0
    while a.poll_transmit(7.0) is not None:
        sent += 1
    assert sent == n and a.queued == 0


@pytest.mark.parametrize("cover", [False, True])
def test_loop_cover_stream_switch(cover: bool) -> None:
    net = build_simnet()
    config = CoreConfig(poisson=False, cover=cover, loop_cover_traffic_average_delay=0.2)
    a = make_core(net, 0, 19, config)
    world = World(net, [a])
    world.run_until(50.0)
    if not cover:
        assert world.sent == [] and a.stats.packets_sent == 0
        return
    count = len(world.sent)
    assert 180 < count < 320  # Poisson with mean 250 over 50 s
    assert a.stats.cover_packets_sent == count and a.stats.real_packets_sent == 0
    # Each cover packet comes back to us as cover, and so does its ack.
    assert a.stats.cover_received == count and a.stats.cover_acks_received == count


def test_garbage_push_is_counted_and_dropped() -> None:
    net = build_simnet()
    a = make_core(net, 0, 30)
    a.handle_push(b"\x00" * 1643, now=0.0)
    a.handle_push(b"short", now=0.0)
    assert a.stats.dropped_pushes == 2 and a.poll_event() is None


def test_bad_config_is_typed() -> None:
    with pytest.raises(InvalidConfig):
        CoreConfig(message_sending_average_delay=-1)
    with pytest.raises(InvalidConfig):
        CoreConfig(max_retransmissions=-1)


def test_surb_request_is_answered_with_fresh_surbs() -> None:
    net = build_simnet()
    a, b = make_core(net, 0, 40), make_core(net, 1, 41)
    world = World(net, [a, b])
    tag = _sender_tag(world, a, b, b"hi", 2)
    assert b.reply_surbs_available(tag) == 2
    b.request_reply_surbs(tag, 15, now=1.0)
    assert b.reply_surbs_available(tag) == 1  # the request travels through one SURB
    world.run_until(2.0)
    assert a.stats.surb_requests_served == 1 and a.stats.reply_surbs_served == 15
    assert b.reply_surbs_available(tag) == 16 and b.stats.reply_surbs_received == 17
    # The new SURBs work: a reply through them reaches A.
    b.send_reply(tag, b"through a new surb", now=2.0)
    world.run_until(3.0)
    assert ReceivedMessage(b"through a new surb", None, True) in world.events[0]
    # No application message was produced by the SURB traffic itself.
    assert [e.data for e in world.events[1] if isinstance(e, ReceivedMessage)] == [b"hi"]


def test_surb_request_answer_comes_in_one_packet_messages() -> None:
    """Each packet of the answer is a message of its own: a lost one costs only its
    own SURBs (and its resend), the others are usable when they arrive."""
    net = build_simnet()
    a, b = make_core(net, 0, 42), make_core(net, 1, 43)
    world = World(net, [a, b])
    tag = _sender_tag(world, a, b, b"hi", 2)
    seen = 0

    def drop_one_answer_packet(packet: MixPacket) -> bool:
        nonlocal seen
        if len(packet.packet) == PacketSize.ACK.size:
            return False
        seen += 1
        return seen == 3  # the request passes, then the answer's second packet is lost

    world.drop = drop_one_answer_packet
    messages_before = a.stats.messages_sent
    b.request_reply_surbs(tag, 50, now=1.0)
    world.run_until(1.1)  # the answer is out, one packet of it lost, its resend not due
    answers = a.stats.messages_sent - messages_before
    sent = [p for t, who, p in world.sent if who == 0 and t >= 1.0]
    assert answers == len(sent) >= 50 // 8  # one packet per message
    per_packet = -(-50 // answers)
    assert b.reply_surbs_available(tag) >= 1 + 50 - per_packet
    world.run_until(10.0)  # the lost one is resent
    assert b.reply_surbs_available(tag) == 1 + 50


PACED = CoreConfig(poisson=True, cover=False, poisson_cover=False)


def _paced_answer_queued(seed: int) -> tuple[World, ClientCore, ClientCore, bytes]:
    """A (Poisson-paced) holds its answer to B's request for 50 SURBs, nothing sent yet."""
    net = build_simnet()
    a, b = make_core(net, 0, seed, PACED), make_core(net, 1, seed + 1)
    world = World(net, [a, b])
    tag = _sender_tag(world, a, b, b"hi", 2)
    b.request_reply_surbs(tag, 50, now=world.now)
    for _ in range(3):  # B sends at once; A takes the request in
        world.step()
    assert a.stats.surb_requests_served == 1
    return world, a, b, tag


def _sent_in_order(world: World, a: ClientCore, b: ClientCore, tag: bytes) -> str:
    """A's real packets as B sees them, one letter each: S (SURBs), D (data)."""
    order = ""
    surbs, received = b.reply_surbs_available(tag), 0
    while a.queued:
        world.now = max(world.now, a.poll_deadline() or world.now)
        world.step()
        now_surbs = b.reply_surbs_available(tag)
        now_received = sum(isinstance(e, ReceivedMessage) for e in world.events[1])
        order += "S" * (now_surbs > surbs) + "D" * (now_received > received)
        surbs, received = now_surbs, now_received
    return order


def test_data_goes_ahead_of_a_queued_surb_answer() -> None:
    """A message queued behind a 50-SURB answer leaves in the next slot, not 17 slots
    later: the tunnel's TCP ACKs waited that long (0.3 s) in a shaped download."""
    world, a, b, tag = _paced_answer_queued(44)
    answer = a.queued
    assert answer >= 50 // 8 and a.queued_ahead == 0  # wait_queue_empty does not wait
    a.send_message(b.address, b"ack", now=world.now)
    assert a.queued_ahead == 1
    order = _sent_in_order(world, a, b, tag)
    assert order.index("D") <= 1 and order.count("S") == answer
    assert b.reply_surbs_available(tag) == 1 + 50


def test_data_and_surb_answers_take_turns_while_both_wait() -> None:
    """Neither starves the other: an upload filling every slot still lets the answer
    out (the exit needs those SURBs for its ACKs), one slot in two."""
    world, a, b, tag = _paced_answer_queued(46)
    answer = a.queued
    for i in range(5):
        a.send_message(b.address, bytes([i]) * 10, now=world.now)
    order = _sent_in_order(world, a, b, tag)
    assert order[:10] in ("DSDSDSDSDS", "SDSDSDSDSD")
    assert order.count("D") == 5 and order.count("S") == answer


def test_automatic_surb_request_when_running_low() -> None:
    net = build_simnet()
    config = CoreConfig(
        poisson=False, cover=False, reply_surb_request_threshold=3, reply_surb_request_amount=10
    )
    a, b = make_core(net, 0, 42), make_core(net, 1, 43, config)
    world = World(net, [a, b])
    tag = _sender_tag(world, a, b, b"hi", 4)
    b.send_reply(tag, b"one", now=1.0)  # leaves 3: not below the threshold
    assert b.stats.surb_requests_sent == 0
    b.send_reply(tag, b"two", now=1.0)  # leaves 2 -> asks, spending one
    assert b.stats.surb_requests_sent == 1 and b.reply_surbs_available(tag) == 1
    world.run_until(2.0)
    assert b.reply_surbs_available(tag) == 11


def test_surb_request_from_a_stranger_is_ignored() -> None:
    net = build_simnet()
    a, b, c = make_core(net, 0, 44), make_core(net, 1, 45), make_core(net, 1, 46)
    world = World(net, [a, b, c])
    tag = _sender_tag(world, a, b, b"hi", 2)
    # B asks on behalf of C's address: A never gave C SURBs, so it does not answer.
    b.preparer.sender, real = c.address, b.preparer.sender
    b.request_reply_surbs(tag, 5, now=1.0)
    b.preparer.sender = real
    world.run_until(2.0)
    assert a.stats.surb_requests_ignored == 1 and a.stats.surb_requests_served == 0


@settings(
    max_examples=scaled(30, fuzz=500),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    size=st.integers(min_value=1, max_value=scaled(4000, fuzz=20_000)),
    losses=st.lists(st.booleans(), max_size=scaled(40, fuzz=120)),
)
def test_any_loss_pattern_ends_in_exactly_one_outcome(size: int, losses: list[bool]) -> None:
    """Whatever is lost (data or acks): one Delivered or Failed, never a duplicate message."""
    net = build_simnet()
    config = CoreConfig(poisson=False, cover=False, max_retransmissions=3)
    a, b = make_core(net, 0, 50, config), make_core(net, 1, 51)
    world = World(net, [a, b])
    pattern = iter(losses)
    world.drop = lambda packet: next(pattern, False)
    data = _payload(size, size)
    mid = a.send_message(b.address, data, now=0.0)
    fragments = a.queued
    world.run_until(60.0)
    outcomes = [e for e in world.events[0] if isinstance(e, MessageDelivered | MessageFailed)]
    assert len(outcomes) == 1 and outcomes[0].message_id == mid
    assert a.pending_acks == 0 and a.queued == 0 and a.outstanding_messages() == set()
    assert a.stats.retransmissions <= 3 * fragments
    received = [e for e in world.events[1] if isinstance(e, ReceivedMessage)]
    assert received in ([], [ReceivedMessage(data, None, False)])
    if isinstance(outcomes[0], MessageDelivered):
        assert received == [ReceivedMessage(data, None, False)]
    if not any(losses):
        assert isinstance(outcomes[0], MessageDelivered) and a.stats.retransmissions == 0


def test_suspend_stops_sending_and_ack_clocks() -> None:
    net = build_simnet()
    config = CoreConfig(poisson=False, cover=True, loop_cover_traffic_average_delay=0.5)
    a, b = make_core(net, 0, 60, config), make_core(net, 1, 61)
    a.send_message(b.address, b"in flight", now=0.0)
    assert a.poll_transmit(0.0) is not None  # its ack would be due at 1.5
    a.send_message(b.address, b"queued", now=0.5)
    a.suspend(1.0)
    assert a.suspended and a.poll_deadline() is None
    a.handle_timeout(500.0)
    assert a.poll_transmit(500.0) is None and a.stats.retransmissions == 0
    a.resume(1000.0)
    # The in-flight fragment's ack clock kept its remaining 0.5 s.
    deadlines = sorted(p.deadline for p in a._pending.values() if p.deadline is not None)
    assert deadlines == [pytest.approx(1000.5)]
    sent = []
    while (packet := a.poll_transmit(1000.0)) is not None:
        sent.append(packet)
    # Only the queued message (plus a loop cover that was already due before the pause).
    assert a.stats.real_packets_sent == 2 and a.stats.cover_packets_sent <= 1
    assert len(sent) == 1 + a.stats.cover_packets_sent
    a.handle_timeout(1000.6)
    assert a.stats.retransmissions == 0 and a.queued == 1  # the overdue one is back in line


def test_measured_ack_overhead_sets_the_timeout() -> None:
    """Queueing before the first hop stretches Nym's static timeout at once; after
    MIN_ACK_SAMPLES fast acks the wait shrinks to the measured overhead, floored."""
    net = build_simnet()
    measured = CoreConfig(poisson=False, cover=False, ack_wait_floor=MEASURED_ACK_FLOOR)
    a, b = make_core(net, 0, 13, measured), make_core(net, 1, 23)
    assert a.smoothed_ack_overhead is None

    def send_and_ack(at: float, ack_after: float) -> float:
        a.send_message(b.address, b"x", now=at)
        packet = a.poll_transmit(at)
        assert packet is not None
        [pending] = a._pending.values()
        deadline = pending.deadline
        assert deadline is not None
        for ack in deliver(net, packet, a, b, at):  # the data reaches b at once
            a.handle_push(ack, at + ack_after)  # its ack comes back late
        assert a.pending_acks == 0
        return deadline - at

    # Zero mix delays: Nym's timeout is 0 * 1.5 + 1.5 s, used until a sample exists.
    assert send_and_ack(0.0, 1.2) == pytest.approx(1.5)
    assert a.smoothed_ack_overhead == pytest.approx(1.2)
    # srtt 1.2 s, rttvar 0.6 s: the next timeout is 1.2 + 4 * 0.6 = 3.6 s, not 1.5 s.
    assert send_and_ack(10.0, 0.01) == pytest.approx(3.6)
    # Fast acks pull the estimate down; the wait follows it down to the 0.5 s floor.
    for i in range(40):
        send_and_ack(20.0 + i, 0.01)
    overhead = a.smoothed_ack_overhead
    assert overhead is not None and overhead < 0.1
    assert send_and_ack(100.0, 0.01) == pytest.approx(0.5)
    # ack_wait_floor=None keeps Nym's static wait as the least.
    c = make_core(net, 0, 14, CoreConfig(poisson=False, cover=False, ack_wait_floor=None))
    a = c
    for i in range(20):
        send_and_ack(200.0 + i, 0.01)
    assert send_and_ack(300.0, 0.01) == pytest.approx(1.5)


def test_measured_timeout_excludes_the_known_mix_delays() -> None:
    """A packet's own drawn delays are added to the wait, not mixed into the variance."""
    net = build_simnet()
    measured = CoreConfig(poisson=False, cover=False, ack_wait_floor=MEASURED_ACK_FLOOR)
    a = make_core(net, 0, 16, measured, packet_delay_ns=50_000_000, ack_delay_ns=20_000_000)
    b = make_core(net, 1, 26)
    for i in range(MIN_ACK_SAMPLES):
        a.send_message(b.address, b"x", now=float(i))
        packet = a.poll_transmit(float(i))
        assert packet is not None
        [pending] = a._pending.values()
        for push in net.route(packet, None):
            if push.client == a.address.identity:  # 30 ms beyond the packet's own delays
                a.handle_push(push.plaintext, i + pending.expected_rtt + 0.03)
    overhead = a.smoothed_ack_overhead
    assert overhead is not None and overhead == pytest.approx(0.03)
    a.send_message(b.address, b"y", now=50.0)
    assert a.poll_transmit(50.0) is not None
    [pending] = a._pending.values()
    assert pending.deadline == pytest.approx(50.0 + pending.expected_rtt * 1.5 + 0.5)


def test_lost_reply_fragment_is_resent_through_the_next_surb_and_counted() -> None:
    """The exit's case: a reply whose SURB-ACK does not come is resent via another SURB,
    and the SURBs resends took are reported per tag for the router's count."""
    net = build_simnet()
    config = CoreConfig(poisson=False, cover=False, reply_retransmission_reserve=2)
    a, b = make_core(net, 0, 17), make_core(net, 1, 27, config)
    world = World(net, [a, b])
    tag = _sender_tag(world, a, b, b"q", 6)
    replies_to_drop = 1

    def drop(packet: MixPacket) -> bool:  # the first reply packet is lost on its way
        nonlocal replies_to_drop
        if len(packet.packet) != PacketSize.ACK.size and replies_to_drop:
            replies_to_drop -= 1
            return True
        return False

    world.drop = drop
    mid = b.send_reply(tag, b"r", now=1.0)
    assert b.reply_surbs_available(tag) == 5
    assert b.take_reply_retransmission_surbs() == {}
    world.run_until(10.0)
    assert MessageDelivered(mid) in world.events[1]
    assert [e for e in world.events[0] if isinstance(e, ReceivedMessage)] == [
        ReceivedMessage(b"r", None, True)
    ]
    assert b.stats.reply_retransmissions == 1 and b.reply_surbs_available(tag) == 4
    assert b.take_reply_retransmission_surbs() == {tag: 1}
    assert b.take_reply_retransmission_surbs() == {}  # drained

    # Every reply packet lost: resends stop at the reserve (2 SURBs stay for a request).
    world.drop = lambda packet: len(packet.packet) != PacketSize.ACK.size
    mid = b.send_reply(tag, b"s", now=10.0)
    world.run_until(60.0)
    assert b.reply_surbs_available(tag) == 2
    assert b.take_reply_retransmission_surbs() == {tag: 1}
    assert b.stats.reply_retransmissions_deferred > 0
    failed = [e for e in world.events[1] if isinstance(e, MessageFailed)]
    assert [f.message_id for f in failed] == [mid] and "no ack after" in failed[0].reason

    # A SURB request may spend what the reserve kept back, resends included: that is
    # what it was kept for (deferred, a lost request left the exit starved until the
    # router asked again 10 s later).
    requests_to_drop = 1

    def drop_first(packet: MixPacket) -> bool:
        nonlocal requests_to_drop
        if len(packet.packet) != PacketSize.ACK.size and requests_to_drop:
            requests_to_drop -= 1
            return True
        return False

    world.drop = drop_first
    deferred = b.stats.reply_retransmissions_deferred
    b.request_reply_surbs(tag, 10, now=60.0)
    world.run_until(70.0)
    assert b.stats.reply_retransmissions_deferred == deferred
    assert b.take_reply_retransmission_surbs() == {tag: 1}
    assert b.reply_surbs_available(tag) == 10  # 2 kept, both spent on the request, 10 came


def test_measured_timeout_backs_off_while_acks_stay_away() -> None:
    """A stall must not turn into a resend of everything every floor interval: each
    round of timeouts doubles the wait until an ack comes again, a resend's included
    (the path works; its round trip is still no sample, by Karn's rule)."""
    net = build_simnet()
    measured = CoreConfig(poisson=False, cover=False, ack_wait_floor=MEASURED_ACK_FLOOR)
    a, b = make_core(net, 0, 18, measured), make_core(net, 1, 28)
    world = World(net, [a, b])
    for i in range(MIN_ACK_SAMPLES):  # instant acks: the wait is the 0.5 s floor
        a.send_message(b.address, b"x", now=float(i))
        world.now = float(i)
        world.run_until(float(i) + 0.5)
    world.drop = lambda packet: len(packet.packet) == PacketSize.ACK.size
    start = 20.0
    world.now = start
    a.send_message(b.address, b"y", now=start)
    world.run_until(start + 9.0)
    times = [t - start for t, who, _ in world.sent if who == 0 and t >= start]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[:4] == pytest.approx([0.5, 1.0, 2.0, 4.0])
    world.drop = None  # acks come again
    samples = a._ack_samples
    world.run_until(start + 20.0)
    assert a.pending_acks == 0 and a._backoff == 0  # the resend's ack resets the wait
    assert a._ack_samples == samples  # but is no sample (Karn)
    a.send_message(b.address, b"w", now=start + 20.0)
    world.run_until(start + 21.0)
    assert a.pending_acks == 0
    a.send_message(b.address, b"v", now=start + 30.0)
    assert a.poll_transmit(start + 30.0) is not None
    [pending] = a._pending.values()
    assert pending.deadline == pytest.approx(start + 30.0 + 0.5)


def test_message_sent_once_fails_at_its_first_timeout_without_a_resend() -> None:
    net = build_simnet()
    a, b = make_core(net, 0, 19), make_core(net, 1, 29)
    world = World(net, [a, b])
    world.drop = lambda packet: len(packet.packet) == PacketSize.ACK.size
    mid = a.send_message(b.address, b"ack", retransmit=False, now=0.0)
    world.run_until(10.0)
    assert len([t for t, who, _ in world.sent if who == 0]) == 1
    assert world.events[0] == [MessageFailed(mid, "no ack (sent without retransmission)")]
    assert a.stats.retransmissions == 0 and a.stats.sent_once_unacked == 1
    assert a.pending_acks == 0
    world.drop = None  # acked when acks come: delivered as any other message
    mid = a.send_message(b.address, b"ack2", retransmit=False, now=10.0)
    world.run_until(11.0)
    assert MessageDelivered(mid) in world.events[0] and a.smoothed_ack_overhead is not None


def _tag_after(world: World, index: int) -> bytes:
    received = [e for e in world.events[index] if isinstance(e, ReceivedMessage)]
    tag = received[-1].sender_tag
    assert tag is not None
    return tag


def test_stored_surbs_per_tag_are_bounded_oldest_first_and_the_newest_still_work() -> None:
    net = build_simnet()
    a = make_core(net, 0, 14)
    b = make_core(net, 1, 24, CoreConfig(poisson=False, cover=False, max_reply_surbs_per_tag=8))
    world = World(net, [a, b])
    for i in range(3):
        a.send_message(b.address, b"m%d" % i, reply_surbs=5, now=world.now)
        world.run_until(world.now + 1.0)
    tag = _tag_after(world, 1)
    assert b.reply_surbs_available(tag) == 8
    assert b.stats.reply_surbs_received == 15 and b.stats.reply_surbs_dropped == 7
    b.send_reply(tag, b"through the newest", now=world.now)
    world.run_until(world.now + 1.0)
    assert ReceivedMessage(b"through the newest", None, True) in world.events[0]


def test_stored_surbs_are_bounded_in_sender_tags_least_recently_refreshed_first() -> None:
    net = build_simnet()
    senders = [make_core(net, 0, seed) for seed in (14, 15, 16)]
    b = make_core(net, 1, 24, CoreConfig(poisson=False, cover=False, max_reply_surb_tags=2))
    world = World(net, [*senders, b])
    tags = []
    for sender in senders:
        sender.send_message(b.address, b"hi", reply_surbs=3, now=world.now)
        world.run_until(world.now + 1.0)
        tags.append(_tag_after(world, 3))
    assert [b.reply_surbs_available(t) for t in tags] == [0, 3, 3]
    assert b.stats.reply_surbs_dropped == 3
    with pytest.raises(NoReplySurbs):
        b.send_reply(tags[0], b"gone", now=world.now)


def test_stored_surbs_of_an_idle_tag_expire() -> None:
    net = build_simnet()
    a = make_core(net, 0, 14)
    b = make_core(net, 1, 24, CoreConfig(poisson=False, cover=False, reply_surb_tag_idle=100.0))
    world = World(net, [a, b])
    a.send_message(b.address, b"hi", reply_surbs=4, now=0.0)
    world.run_until(1.0)
    tag = _tag_after(world, 1)
    b.handle_timeout(61.0)  # housekeeping: 60 s old, kept
    assert b.reply_surbs_available(tag) == 4
    b.handle_timeout(125.0)  # next housekeeping: idle past 100 s, forgotten
    assert b.reply_surbs_available(tag) == 0 and b.stats.reply_surbs_dropped == 4


@pytest.mark.parametrize(
    "field", ["max_reply_surbs_per_tag", "max_reply_surb_tags", "reply_surb_tag_idle"]
)
def test_surb_store_bounds_must_be_positive(field: str) -> None:
    with pytest.raises(InvalidConfig):
        CoreConfig(**{field: 0})


@pytest.mark.parametrize("window", [None, 0.005])
def test_a_later_fragments_ack_marks_an_earlier_one_lost(window: float | None) -> None:
    """RACK on fragments (the local exit's setting): once the ack of a fragment sent
    later comes, an earlier one still unacked is resent at once, without the backoff
    a timeout brings; without a window only its ack timer resends it."""
    net = build_simnet()
    config = CoreConfig(poisson=False, cover=False, loss_detection_window=window)
    a, b = make_core(net, 0, 19, config), make_core(net, 1, 29)
    a.send_message(b.address, b"lost", now=0.0)
    assert a.poll_transmit(0.0) is not None  # dropped on its way
    [first] = a._pending.values()
    timer = first.deadline
    a.send_message(b.address, b"late", now=0.2)
    a.send_message(b.address, b"later", now=0.2)
    second = a.poll_transmit(0.2)
    assert second is not None
    unacked_later = a.poll_transmit(0.3)  # sent after the acked one: not judged by it
    assert unacked_later is not None
    for ack in deliver(net, second, a, b, 0.2):
        a.handle_push(ack, 0.25)
    later = [p for p in a._pending.values() if p is not first]
    assert [p.deadline for p in later] == [pytest.approx(0.3 + 1.5)]
    if window is None:
        assert first.deadline == timer == pytest.approx(1.5)
        assert a.stats.losses_detected == 0
        return
    assert first.deadline == 0.25 and a.stats.losses_detected == 1
    a.handle_timeout(0.25)
    resent = a.poll_transmit(0.25)
    assert resent is not None and a.stats.retransmissions == 1
    assert a._backoff == 0


def test_a_second_ack_raises_the_floor_and_clean_acks_lower_it() -> None:
    """Both copies of a resent fragment came back: the resend was spurious (acks
    queued, not lost), so the floor doubles; FLOOR_DECAY_ACKS clean acks halve it."""
    net = build_simnet()
    config = CoreConfig(poisson=False, cover=False, ack_wait_floor=0.1)
    a, b = make_core(net, 0, 21, config), make_core(net, 1, 31)

    def send(at: float, ack_after: float | None) -> tuple[float, list[bytes]]:
        a.send_message(b.address, b"x", now=at)
        packet = a.poll_transmit(at)
        assert packet is not None
        [pending] = [p for p in a._pending.values() if p.sent_at == at]
        assert pending.deadline is not None
        acks = deliver(net, packet, a, b, at)
        if ack_after is not None:
            for ack in acks:
                a.handle_push(ack, at + ack_after)
        return pending.deadline - at, acks

    for i in range(MIN_ACK_SAMPLES):
        send(float(i), 0.01)
    assert send(10.0, 0.01)[0] == pytest.approx(0.1)
    _, late = send(20.0, None)  # its ack is slow: the timer resends it
    a.handle_timeout(20.2)
    resent = a.poll_transmit(20.2)
    assert resent is not None
    for ack in deliver(net, resent, a, b, 20.2):
        a.handle_push(ack, 20.21)  # the resend's ack
    for ack in late:
        a.handle_push(ack, 20.3)  # then the first copy's: a second ack
    assert a.stats.stray_acks == 1
    assert send(30.0, 0.01)[0] == pytest.approx(0.2)
    for i in range(FLOOR_DECAY_ACKS):
        send(40.0 + i, 0.01)
    assert send(200.0, 0.01)[0] == pytest.approx(0.1)


def test_a_second_ack_after_an_ack_order_resend_widens_the_window_not_the_floor() -> None:
    net = build_simnet()
    config = CoreConfig(poisson=False, cover=False, ack_wait_floor=0.1, loss_detection_window=0.005)
    a, b = make_core(net, 0, 23, config), make_core(net, 1, 33)

    a.send_message(b.address, b"slow", now=0.0)
    slow_acks = deliver(net, a.poll_transmit(0.0), a, b, 0.0)  # delivered, its ack held back
    a.send_message(b.address, b"fast", now=0.01)
    for ack in deliver(net, a.poll_transmit(0.01), a, b, 0.01):
        a.handle_push(ack, 0.03)  # a later fragment's ack first: the slow one is resent
    a.handle_timeout(0.03)
    for ack in deliver(net, a.poll_transmit(0.03), a, b, 0.03):
        a.handle_push(ack, 0.04)
    for ack in slow_acks:
        a.handle_push(ack, 0.05)  # the first copy's ack after all: a second ack
    assert a.stats.losses_detected == 1 and a.stats.stray_acks == 1
    assert a._reorder_scale == 2 and a._floor_scale == 1


def test_with_loss_detection_each_ack_restarts_the_timers() -> None:
    """RFC 6298 (5.3) on fragments: a fragment sent together with others whose acks keep
    coming is not resent when its own ack is merely late (queues on a busy machine);
    its timer runs out only a whole timeout after the last ack. Without loss detection
    (Nym's behaviour, mainnet) each fragment keeps its own deadline."""
    for window in (None, 0.005):
        net = build_simnet()
        config = CoreConfig(
            poisson=False, cover=False, ack_wait_floor=0.1, loss_detection_window=window
        )
        a, b = make_core(net, 0, 25, config), make_core(net, 1, 35)
        for i in range(MIN_ACK_SAMPLES):  # measured: the floor (0.1 s) applies
            a.send_message(b.address, b"x", now=float(i))
            for ack in deliver(net, a.poll_transmit(float(i)), a, b, float(i)):
                a.handle_push(ack, i + 0.01)
        a.send_message(b.address, b"slow", now=10.0)
        slow_acks = deliver(net, a.poll_transmit(10.0), a, b, 10.0)
        a.send_message(b.address, b"fast", now=10.0)
        fast_acks = deliver(net, a.poll_transmit(10.0), a, b, 10.0)
        for ack in fast_acks:
            a.handle_push(ack, 10.08)  # sent together: ack order says nothing
        a.handle_timeout(10.12)
        if window is None:
            assert a.poll_transmit(10.12) is not None and a.stats.retransmissions == 1
            continue
        assert a.poll_deadline() == pytest.approx(10.18)
        assert a.poll_transmit(10.12) is None and a.stats.retransmissions == 0
        for ack in slow_acks:
            a.handle_push(ack, 10.15)
        assert a.stats.stray_acks == 0 and not a._pending
