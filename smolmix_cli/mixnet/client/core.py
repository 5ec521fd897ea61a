"""The mixnet client's logic, sans-io: what to send when, what arrived, what to resend.

Time is explicit (seconds, any monotonic origin). The shell calls
`handle_timeout(now)`, drains `poll_transmit(now)` into the gateway, feeds
gateway pushes to `handle_push`, reads `poll_event()`, and sleeps until
`poll_deadline()` or until something new happens.

Traffic shape follows the Nym client (spec 2.10): with Poisson on, the main
stream sends one packet per Exp(mean) interval, a real one when queued, else a
cover packet (`poisson_cover`); a separate loop-cover stream (`cover`) adds cover
packets every Exp(mean). Packets are built when their slot comes. Answers to
peers' SURB requests wait behind other real packets and take turns with them
while both wait (`_bulk`). Every real
fragment waits for its SURB-ACK; when none comes in `expected_rtt * 1.5 + 1.5 s`
(spec 2.3), or once acks have been measured in `expected_rtt * 1.5 + max(floor,
srtt + 4 rttvar)` of what the round trip takes beyond the mix delays (doubled per
round of timeouts until an ack comes), it is built
again (fresh route, fresh ack; for a reply the next SURB) and resent, up to
`max_retransmissions` times, then its message fails. `suspend`/`resume` stop all
clocks while the gateway is unreachable. All packet building is
`MessagePreparer`'s and all unwrapping `MessageReceiver`'s.

Reply SURBs: SURBs that arrive in repliable messages are stored per sender tag
and spent one per fragment by `send_reply`; `request_reply_surbs` (or the
automatic threshold) asks the sender for more, and a SURB request from a peer we
gave SURBs to is answered with fresh ones. Stored SURBs are bounded per tag, in
tags and by age (`max_reply_surbs_per_tag`, `max_reply_surb_tags`,
`reply_surb_tag_idle`): an exit gets 2 SURBs with every uplink message and spends
one per reply fragment, so without a bound its store grows with the uplink.
Topology refresh is the caller's (`set_topology`).
"""

from __future__ import annotations

import logging
import math
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.message.fragment import Fragment, FragmentId
from smolmix_cli.mixnet.message.message import (
    PlainMessage,
    RepliableContentTag,
    RepliableMessage,
    ReplyContentTag,
    ReplyMessage,
    new_sender_tag,
)
from smolmix_cli.mixnet.message.preparer import MessagePreparer, PreparedFragment
from smolmix_cli.mixnet.message.receiver import (
    AckReceived,
    CoverReceived,
    FragmentReceived,
    MessageReceiver,
)
from smolmix_cli.mixnet.message.receiver import MessageReceived as ReceiverMessage
from smolmix_cli.mixnet.message.reply_surb import ReplySurb
from smolmix_cli.mixnet.packet.mix_packet import MixPacket
from smolmix_cli.mixnet.packet.size import SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import VERSION_PAYLOAD_KEY_SEEDS
from smolmix_cli.mixnet.topology.health import NodeHealth
from smolmix_cli.mixnet.topology.topology import Topology

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
MEASURED_ACK_FLOOR = 0.5
"""The floor where timeouts follow measured acks (the local network's tunnel). At
0.25 s a loaded machine made a third of the exit's reply resends spurious at no loss;
the exit IPR now takes a lower one (testnet/exit/ipr.py: EXIT_ACK_FLOOR) and pays it."""
MAX_ACK_BACKOFF = 5
"""Most doublings of the measured ack timeout while acks stay away (32x)."""
MIN_ACK_SAMPLES = 8
MAX_FLOOR_SCALE = 8
"""Most doublings of `ack_wait_floor` that spurious resends (a second ack) may bring."""
FLOOR_DECAY_ACKS = 64
"""Acks without a spurious resend after which a raised floor halves again."""
RESENT_ACKED_KEPT = 1024
"""Resent fragments remembered after their ack, to tell what a second ack blames."""
"""Ack round trips measured before the measured timeout replaces Nym's static one."""
SURB_REQUEST_RETRY = 10.0
"""Seconds before another automatic SURB request for the same tag if none arrived."""
HOUSEKEEPING_INTERVAL = 60.0
"""How often stale reassembly buffers and old reply keys are dropped."""


class ClientError(MixnetError):
    """A request the client cannot carry out."""


class NoReplySurbs(ClientError):
    """Too few reply SURBs stored for that sender tag to send the reply."""

    def __init__(self, needed: int, available: int) -> None:
        super().__init__(f"reply needs {needed} reply SURBs, {available} stored for that tag")
        self.needed = needed
        self.available = available


class InvalidConfig(ClientError):
    """A configuration value that cannot work (negative delay, ...)."""


@dataclass(frozen=True)
class CoreConfig:
    """Traffic and retransmission settings; delays in seconds, zero allowed."""

    poisson: bool = True
    """Shape the main stream: one packet per Exp(message_sending_average_delay)."""
    cover: bool = True
    """Run the separate loop-cover stream (one cover per Exp(loop_cover_traffic_average_delay))."""
    poisson_cover: bool = True
    """Fill empty main-stream slots with cover packets (Nym does; only with `poisson`)."""
    message_sending_average_delay: float = 0.020
    loop_cover_traffic_average_delay: float = 0.200
    ack_wait_multiplier: float = 1.5
    ack_wait_addition: float = 1.5
    ack_wait_floor: float | None = None
    """Least wait beyond `expected_rtt * ack_wait_multiplier` once acks were measured
    (see `ClientCore._ack_timeout`); None (Nym's behaviour, kept for mainnet): never
    below the static `ack_wait_addition`, only stretched by slow acks. The local
    network's clients use MEASURED_ACK_FLOOR."""
    loss_detection_window: float | None = None
    """None (Nym's behaviour): a fragment is resent only when its ack timer runs out.
    A number: also once the ack of a fragment due back more than this many seconds
    later (sent later, or with shorter drawn delays) has come first (RFC 8985's RACK,
    on fragments). The window grows to a quarter of the measured ack overhead."""
    max_retransmissions: int | None = 20
    """None: retry forever (as Nym does); else the message fails after that many resends."""
    reply_retransmission_reserve: int = 0
    """A reply fragment is resent through a SURB only while more than this many SURBs
    are stored for its tag, so resends cannot starve a SURB request (nym's reply
    controller takes resend SURBs with the storage threshold too, see `_pop_real`)."""
    reply_surb_request_threshold: int = 0
    """Ask the anonymous sender for more SURBs when a reply leaves fewer than this (0: never)."""
    reply_surb_request_amount: int = 20
    max_reply_surbs_per_request: int = 500
    """Most SURBs sent in answer to one SURB request (Nym allows 500)."""
    max_reply_surbs_per_tag: int = 1000
    """SURBs kept per sender tag; beyond it the oldest go (about 0.9 KB each)."""
    max_reply_surb_tags: int = 64
    """Sender tags with stored SURBs; beyond it the tag refreshed longest ago goes."""
    reply_surb_tag_idle: float = 600.0
    """A tag that brought no SURB for this long is forgotten, its SURBs with it."""

    def __post_init__(self) -> None:
        for name in (
            "message_sending_average_delay",
            "loop_cover_traffic_average_delay",
            "ack_wait_multiplier",
            "ack_wait_addition",
        ):
            if getattr(self, name) < 0:
                raise InvalidConfig(f"{name} must not be negative")
        for name in ("ack_wait_floor", "loss_detection_window"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidConfig(f"{name} must not be negative")
        if self.max_retransmissions is not None and self.max_retransmissions < 0:
            raise InvalidConfig("max_retransmissions must not be negative")
        for name in (
            "reply_surb_request_threshold",
            "reply_surb_request_amount",
            "max_reply_surbs_per_request",
            "reply_retransmission_reserve",
        ):
            if getattr(self, name) < 0:
                raise InvalidConfig(f"{name} must not be negative")
        for name in ("max_reply_surbs_per_tag", "max_reply_surb_tags", "reply_surb_tag_idle"):
            if getattr(self, name) <= 0:
                raise InvalidConfig(f"{name} must be positive")


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ReceivedMessage:
    """A whole message for the application; `sender_tag` is set when we can reply."""

    data: bytes
    sender_tag: bytes | None = None
    via_reply: bool = False


@dataclass(frozen=True)
class MessageDelivered:
    """Every fragment of message `message_id` was acknowledged."""

    message_id: int


@dataclass(frozen=True)
class MessageFailed:
    message_id: int
    reason: str


CoreEvent = ReceivedMessage | MessageDelivered | MessageFailed


@dataclass
class CoreStats:
    real_packets_sent: int = 0
    cover_packets_sent: int = 0
    retransmissions: int = 0
    reply_retransmissions: int = 0
    reply_retransmissions_deferred: int = 0
    sent_once_unacked: int = 0
    acks_received: int = 0
    cover_acks_received: int = 0
    stray_acks: int = 0
    losses_detected: int = 0  # resent before their timer: a later fragment's ack came first
    packets_received: int = 0
    cover_received: int = 0
    fragments_received: int = 0
    messages_sent: int = 0
    messages_delivered: int = 0
    messages_failed: int = 0
    messages_received: int = 0
    replies_sent: int = 0
    reply_surbs_received: int = 0
    reply_surbs_dropped: int = 0
    surb_requests_sent: int = 0
    surb_requests_served: int = 0
    reply_surbs_served: int = 0
    surb_requests_ignored: int = 0
    dropped_pushes: int = 0
    nodes_avoided: int = 0
    """Mix nodes new routes currently leave out (topology.health: they drop everything)."""

    @property
    def packets_sent(self) -> int:
        return self.real_packets_sent + self.cover_packets_sent


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class _ToRecipient:
    recipient: Recipient


@dataclass(frozen=True)
class _ThroughSurbs:
    sender_tag: bytes
    control: bool = False
    """A SURB request: its resends may take the SURBs `reply_retransmission_reserve`
    keeps back, which are kept for exactly this."""


_Destination = _ToRecipient | _ThroughSurbs


@dataclass
class _Pending:
    """A real fragment from preparation until its ack (or final failure)."""

    fragment: Fragment
    destination: _Destination
    message_id: int
    retransmit: bool = True
    retries: int = 0
    deadline: float | None = None  # None while it waits in the queue
    expected_rtt: float = 0.0  # of the copy sent last (seconds)
    sent_at: float = 0.0  # when the copy sent last left the queue
    route: tuple[int, ...] = ()  # node ids of the copy sent last and of its ack
    detected_lost: bool = False  # its deadline was pulled in by ack order, not a timeout
    resent_by_order: bool = False  # the copy sent last went out on ack order, not a timer


@dataclass
class _Queued:
    """A fragment waiting for its slot; built just in time unless SURBs had to be reserved."""

    fragment_id: FragmentId
    prepared: PreparedFragment | None = None
    retransmission: bool = False


@dataclass
class _Message:
    outstanding: set[FragmentId] = field(default_factory=set)


@dataclass
class _SurbStore:
    refreshed: float
    surbs: deque[tuple[ReplySurb, SphinxKeyRotation]] = field(default_factory=deque)


class ClientCore:
    """Send queue, traffic schedule, ack tracking, receive path and reply SURBs."""

    def __init__(
        self,
        preparer: MessagePreparer,
        receiver: MessageReceiver,
        topology: Topology,
        *,
        config: CoreConfig | None = None,
        rng: random.Random | None = None,
        now: float = 0.0,
    ) -> None:
        self.preparer = preparer
        self.receiver = receiver
        self.topology = topology
        self.health = NodeHealth()
        self._routes = topology
        """`topology` minus the mix nodes `health` says drop everything: what new routes use."""
        self.config = config if config is not None else CoreConfig()
        self.rng = rng if rng is not None else random.SystemRandom()
        self.stats = CoreStats()
        self._queue: deque[_Queued] = deque()
        # Answers to peers' SURB requests wait here, behind `_queue`: with Poisson pacing
        # an answer of 50 SURBs holds 17 slots, and a TCP ACK queued behind it waited up
        # to 0.3 s, which a download paid every round trip (bench/interop.py --profile
        # shaped). `_bulk_turn` makes the two take turns while both wait, so an upload
        # (data in every slot) cannot starve the exit of SURBs for its replies either.
        self._bulk: deque[_Queued] = deque()
        self._bulk_turn = False
        self._pending: dict[FragmentId, _Pending] = {}
        self._messages: dict[int, _Message] = {}
        self._next_message_id = 1
        self._events: deque[CoreEvent] = deque()
        self._surbs: dict[bytes, _SurbStore] = {}  # least recently refreshed first
        self._our_tags: dict[Recipient, bytes] = {}
        self._surb_requested: dict[bytes, float] = {}
        self._surbs_per_packet = 8  # SURBs one AdditionalSurbs packet holds, learnt when serving
        self._next_slot = now + self._draw(self.config.message_sending_average_delay)
        self._next_loop_cover = now + self._draw(self.config.loop_cover_traffic_average_delay)
        self._next_housekeeping = now + HOUSEKEEPING_INTERVAL
        self._suspended_at: float | None = None
        # What an ack round trip takes beyond the mix delays its packets carry,
        # measured on first transmissions (Karn's rule) and smoothed as RFC 6298 does
        # for TCP. Nym's static 1.5 s addition (nymtech/nym common/client-core
        # src/client/real_messages_control/acknowledgement_control/action_controller.rs:
        # total_delay * ack_wait_multiplier + ack_wait_addition) is too long where the
        # path is fast (a lost fragment waits 1.5 s) and too short where queueing
        # before the first hop exceeds it (a burst is resent wholesale); the measured
        # overhead fixes both. The known per-packet delays stay out of the estimate,
        # so their randomness does not inflate the variance.
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._ack_samples = 0
        # RFC 6298 (5.5): each round of timeouts doubles the measured wait until a
        # first transmission is acked again. Without it, a stall (a busy gateway, a
        # loaded machine) turns every fragment in flight into a resend every floor
        # interval, no fresh sample can come (Karn), and the resends keep the stall.
        self._backoff = 0
        self._backoff_round_ends = 0.0
        self._floor_scale = 1
        self._reorder_scale = 1
        self._acks_since_spurious = 0
        # fragments acked after a resend: whether that resend came from ack order
        self._resent_acked: OrderedDict[FragmentId, bool] = OrderedDict()
        self._retransmission_surbs: dict[bytes, int] = {}
        self._progress_at = -math.inf  # the last ack of an outstanding fragment

    @property
    def address(self) -> Recipient:
        return self.preparer.sender

    def _draw(self, mean: float) -> float:
        return self.rng.expovariate(1.0 / mean) if mean > 0 else 0.0

    def set_topology(self, topology: Topology) -> None:
        """Routes of packets prepared from now on (retransmissions too) use this topology."""
        self.topology = topology
        self._routes = topology.avoiding(self._routes.avoid)

    # -- sending ----------------------------------------------------------------------

    def send_message(
        self,
        recipient: Recipient,
        data: bytes,
        *,
        reply_surbs: int = 0,
        retransmit: bool = True,
        repliable: bool = False,
        now: float,
    ) -> int:
        """Queue a message; returns the id its Delivered/Failed event will carry.

        With `reply_surbs` > 0 the message is repliable: it carries that many fresh
        SURBs, and the recipient sees our per-recipient sender tag. With `retransmit`
        False its fragments are sent once: the message fails at the first ack timeout
        (for data a later message supersedes, such as a TCP ACK). `repliable` sends the
        sender tag even with no SURBs (a peer that knows us by it, such as an exit IPR).
        """
        if reply_surbs < 0:
            raise ClientError("reply_surbs must not be negative")
        if reply_surbs or repliable:
            tag = self._our_tags.get(recipient)
            if tag is None:
                tag = self._our_tags[recipient] = new_sender_tag(self.rng)
            message: PlainMessage | RepliableMessage = self.preparer.repliable_message(
                bytes(data), reply_surbs, self.topology, tag
            )
            assert isinstance(message, RepliableMessage)
            self.receiver.remember_reply_surbs(message.reply_surbs, now)
        else:
            message = PlainMessage(bytes(data))
        fragments = self.preparer.split(message)
        destination = _ToRecipient(recipient)
        return self._enqueue_message(fragments, destination, retransmit=retransmit)

    def send_reply(self, sender_tag: bytes, data: bytes, *, now: float) -> int:
        """Queue a reply through SURBs the tagged sender gave us; NoReplySurbs when too few.

        With `reply_surb_request_threshold` set, a reply that leaves fewer SURBs than
        that also asks the sender for more (spending one SURB on the request).
        """
        tag = bytes(sender_tag)
        fragments = self.preparer.split(ReplyMessage(ReplyContentTag.DATA, bytes(data)))
        available = self.reply_surbs_available(tag)
        if available < len(fragments):
            raise NoReplySurbs(len(fragments), available)
        self.stats.replies_sent += 1
        message_id = self._enqueue_message(fragments, _ThroughSurbs(tag))
        threshold = self.config.reply_surb_request_threshold
        left = self.reply_surbs_available(tag)
        asked = self._surb_requested.get(tag)
        if (
            threshold
            and 1 <= left < threshold
            and (asked is None or now - asked >= SURB_REQUEST_RETRY)
        ):
            self.request_reply_surbs(tag, self.config.reply_surb_request_amount, now=now)
        return message_id

    def request_reply_surbs(self, sender_tag: bytes, amount: int, *, now: float) -> int:
        """Ask the tagged sender (through one of its SURBs) to send `amount` more SURBs."""
        tag = bytes(sender_tag)
        request = ReplyMessage(ReplyContentTag.SURB_REQUEST, recipient=self.address, amount=amount)
        fragments = self.preparer.split(request)
        available = self.reply_surbs_available(tag)
        if available < len(fragments):
            raise NoReplySurbs(len(fragments), available)
        self._surb_requested[tag] = now
        self.stats.surb_requests_sent += 1
        return self._enqueue_message(fragments, _ThroughSurbs(tag, control=True))

    def reply_surbs_available(self, sender_tag: bytes) -> int:
        store = self._surbs.get(bytes(sender_tag))
        return len(store.surbs) if store is not None else 0

    def _enqueue_message(
        self,
        fragments: list[Fragment],
        destination: _Destination,
        *,
        retransmit: bool = True,
        bulk: bool = False,
    ) -> int:
        message_id = self._next_message_id
        self._next_message_id += 1
        message = _Message()
        self._messages[message_id] = message
        self.stats.messages_sent += 1
        for fragment in fragments:
            # Packets to an address are built when their slot comes (a big message does
            # not stall the caller); a reply takes its SURBs now so no other reply can.
            prepared = (
                self._prepare(fragment, destination)
                if isinstance(destination, _ThroughSurbs)
                else None
            )
            fid = fragment.fragment_id
            message.outstanding.add(fid)
            self._pending[fid] = _Pending(fragment, destination, message_id, retransmit=retransmit)
            (self._bulk if bulk else self._queue).append(_Queued(fid, prepared))
        return message_id

    def _prepare(self, fragment: Fragment, destination: _Destination) -> PreparedFragment:
        if isinstance(destination, _ToRecipient):
            return self.preparer.prepare_fragment(fragment, destination.recipient, self._routes)
        store = self._surbs.get(destination.sender_tag)
        if store is None or not store.surbs:
            raise NoReplySurbs(1, 0)
        surb, rotation = store.surbs.popleft()
        return self.preparer.prepare_reply_fragment(fragment, surb, self._routes, rotation)

    # -- the traffic schedule -------------------------------------------------------------

    def suspend(self, now: float) -> None:
        """The gateway is unreachable: stop sending and stop the ack clocks.

        Without this, every fragment in flight would be retransmitted (and its
        message eventually failed) for an outage that no retransmission can cure.
        """
        if self._suspended_at is None:
            self._suspended_at = now

    def resume(self, now: float) -> None:
        """The gateway is back: timers continue where they stopped."""
        if self._suspended_at is None:
            return
        delta = max(0.0, now - self._suspended_at)
        self._suspended_at = None
        for pending in self._pending.values():
            if pending.deadline is not None:
                pending.deadline += delta
        self._next_slot += delta
        self._next_loop_cover += delta

    @property
    def suspended(self) -> bool:
        return self._suspended_at is not None

    def poll_transmit(self, now: float) -> MixPacket | None:
        """The next packet due at `now` (call until None), starting its ack timer."""
        if self._suspended_at is not None:
            return None
        if self.config.cover and now >= self._next_loop_cover:
            self._next_loop_cover = now + self._draw(self.config.loop_cover_traffic_average_delay)
            return self._cover(now)
        if self.config.poisson:
            if now < self._next_slot:
                return None
            if not (self._queue or self._bulk or self.config.poisson_cover):
                return None  # the slot passes unused; the next one is drawn when data comes
            self._next_slot = now + self._draw(self.config.message_sending_average_delay)
            packet = self._pop_real(now)
            return packet if packet is not None else self._cover(now)
        return self._pop_real(now)

    def _cover(self, now: float) -> MixPacket:
        del now
        self.stats.cover_packets_sent += 1
        return self.preparer.cover_packet(self._routes).mix_packet

    def _pop_real(self, now: float) -> MixPacket | None:
        bulk, queue = self._bulk, self._queue
        if not bulk:
            return self._pop_from(queue, now)
        if self._bulk_turn or not queue:
            packet = self._pop_from(bulk, now)
            self._bulk_turn = False
            return packet if packet is not None else self._pop_from(queue, now)
        packet = self._pop_from(queue, now)
        self._bulk_turn = True
        return packet if packet is not None else self._pop_from(bulk, now)

    def _pop_from(self, queue: deque[_Queued], now: float) -> MixPacket | None:
        while queue:
            item = queue.popleft()
            pending = self._pending.get(item.fragment_id)
            if pending is None:
                continue  # acknowledged (or failed) while it waited
            prepared = item.prepared
            destination = pending.destination
            if (
                prepared is None
                and item.retransmission
                and isinstance(destination, _ThroughSurbs)
                and not destination.control
                and self.config.reply_retransmission_reserve
                and self.reply_surbs_available(destination.sender_tag)
                <= self.config.reply_retransmission_reserve
            ):
                # Too few SURBs: try again one ack timeout later (a retry spent) rather
                # than take the last ones, which a SURB request needs to get more.
                pending.deadline = now + self._ack_timeout(pending.expected_rtt)
                self.stats.reply_retransmissions_deferred += 1
                continue
            if prepared is None:
                try:
                    prepared = self._prepare(pending.fragment, pending.destination)
                except MixnetError as exc:
                    what = "retransmit" if item.retransmission else "send"
                    self._fail_message(pending.message_id, f"cannot {what}: {exc}")
                    continue
            rtt = prepared.total_delay_ns / NS_PER_S
            pending.expected_rtt = rtt
            pending.sent_at = now
            pending.route = prepared.route
            pending.deadline = now + self._ack_timeout(rtt)
            self.stats.real_packets_sent += 1
            if item.retransmission:
                self.stats.retransmissions += 1
                if isinstance(destination, _ThroughSurbs):
                    tag = destination.sender_tag
                    spent = self._retransmission_surbs
                    spent[tag] = spent.get(tag, 0) + 1
                    self.stats.reply_retransmissions += 1
            return prepared.mix_packet
        return None

    def _ack_timeout(self, expected_rtt: float) -> float:
        """Nym's static wait until MIN_ACK_SAMPLES acks were timed, then the measured one.

        The measured wait is the mix delays times the multiplier plus the smoothed
        overhead and four deviations (RFC 6298's RTO), at least `ack_wait_floor`.
        """
        cfg = self.config
        base = expected_rtt * cfg.ack_wait_multiplier
        static = base + cfg.ack_wait_addition
        if self._srtt is None:
            return static
        measured = self._srtt + 4 * self._rttvar
        if cfg.ack_wait_floor is None or self._ack_samples < MIN_ACK_SAMPLES:
            return max(static, base + measured)  # a slow path stretches it from the start
        floor = cfg.ack_wait_floor * self._floor_scale
        return base + max(floor, measured) * (1 << self._backoff)

    def _on_spurious_resend(self, fid: FragmentId) -> None:
        """A second ack: both copies arrived, so the resend was not needed, and what
        sent it too early is widened, the way TCP widens its timers and its reordering
        window on D-SACKs. A timer's resend doubles the floor: a loaded machine (acks
        queued behind CPU work, not lost) made the exit resend up to half of its
        fragments at no loss on a 0.1 s floor. A resend on ack order doubles the
        reordering window instead (the floor would slow every real repair). Each at
        most MAX_FLOOR_SCALE times; FLOOR_DECAY_ACKS clean acks halve both again."""
        by_order = self._resent_acked.pop(fid, None)
        if by_order is None:
            return  # not a resent fragment we remember: no evidence either way
        self._acks_since_spurious = 0
        if by_order:
            self._reorder_scale = min(self._reorder_scale * 2, MAX_FLOOR_SCALE)
        else:
            self._floor_scale = min(self._floor_scale * 2, MAX_FLOOR_SCALE)

    def _back_off(self, now: float, pending: _Pending) -> None:
        """A round of timeouts (those of one flight count once) doubles the wait."""
        if now >= self._backoff_round_ends and self._backoff < MAX_ACK_BACKOFF:
            self._backoff += 1
            self._backoff_round_ends = now + self._ack_timeout(pending.expected_rtt)

    def _sample_ack_rtt(self, sample: float) -> None:
        """One ack's overhead: its round trip less the mix delays its packets carried."""
        self._backoff = 0
        self._ack_samples += 1
        if self._srtt is None:
            self._srtt, self._rttvar = sample, sample / 2
            return
        self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - sample)
        self._srtt = 0.875 * self._srtt + 0.125 * sample

    @property
    def smoothed_ack_overhead(self) -> float | None:
        """Measured ack round trip beyond the mix delays (seconds), None before a sample."""
        return self._srtt

    def _due(self, pending: _Pending, deadline: float) -> float:
        """When a fragment's timer runs out. With loss detection on, every ack restarts it
        (RFC 6298 5.3: TCP restarts its RTO on each ACK of new data): ack order finds
        losses among acked fragments, the timer the tail. At zero loss a busy machine's
        queues stretched acks past the timer: 51-105 of ~800 reply fragments per MiB
        were resent for nothing, in twos and threes (bench/README, branch packets)."""
        if self.config.loss_detection_window is None or pending.detected_lost or pending.retries:
            return deadline  # a resend lost again keeps its own clock
        return max(deadline, self._progress_at + deadline - pending.sent_at)

    def take_reply_retransmission_surbs(self) -> dict[bytes, int]:
        """SURBs spent on resent reply fragments since the last call, per sender tag.

        A caller that keeps its own SURB count (the exit IPR's router) debits these.
        """
        spent, self._retransmission_surbs = self._retransmission_surbs, {}
        return spent

    def poll_deadline(self) -> float | None:
        """When `handle_timeout`/`poll_transmit` next have something to do.

        A value at or before the current time (-inf when packets wait and Poisson is
        off) means: call them now. While suspended: None (nothing until `resume`).
        """
        if self._suspended_at is not None:
            return None
        candidates = [self._next_housekeeping]
        if self.config.cover:
            candidates.append(self._next_loop_cover)
        if self._queue or self._bulk:
            candidates.append(self._next_slot if self.config.poisson else float("-inf"))
        elif self.config.poisson and self.config.poisson_cover:
            candidates.append(self._next_slot)
        candidates.extend(
            self._due(p, p.deadline) for p in self._pending.values() if p.deadline is not None
        )
        return min(candidates)

    def handle_timeout(self, now: float) -> None:
        """Resend fragments whose ack is overdue; fail their message past the retry limit."""
        if self._suspended_at is not None:
            return
        if (
            not (self._queue or self._bulk)
            and self.config.poisson
            and not self.config.poisson_cover
            and self._next_slot < now
        ):
            # Keep an idle main stream memoryless: the next slot is a fresh draw from now.
            self._next_slot = now + self._draw(self.config.message_sending_average_delay)
        overdue = [
            fid
            for fid, p in self._pending.items()
            if p.deadline is not None and self._due(p, p.deadline) <= now
        ]
        retransmit: list[_Queued] = []
        for fid in overdue:
            pending = self._pending.get(fid)
            if pending is None:
                continue  # its message failed a moment ago
            self.health.observe(pending.route, False, now)
            if not pending.retransmit:
                self.stats.sent_once_unacked += 1
                self._fail_message(pending.message_id, "no ack (sent without retransmission)")
                continue
            limit = self.config.max_retransmissions
            if limit is not None and pending.retries >= limit:
                self._fail_message(pending.message_id, f"no ack after {limit} retransmissions")
                continue
            pending.retries += 1
            pending.deadline = None
            pending.resent_by_order = pending.detected_lost
            if pending.detected_lost:
                pending.detected_lost = False  # the path works: acks keep coming
            else:
                self._back_off(now, pending)
            # Rebuilt when its turn comes: fresh route, fresh ack (or the next reply SURB).
            retransmit.append(_Queued(fid, None, retransmission=True))
        # Retransmissions go ahead of new data, oldest first.
        self._queue.extendleft(reversed(retransmit))
        self._route_around(now)
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + HOUSEKEEPING_INTERVAL
            self.receiver.expire(now)
            self._expire_surbs(now)

    def _route_around(self, now: float) -> None:
        """Leave the mix nodes that drop everything out of new routes (and SURBs)."""
        avoid = self.health.avoided(now)
        if avoid != self._routes.avoid:
            if avoid - self._routes.avoid:
                log.info(
                    "routing around mix nodes %s: no round trip through them completes",
                    sorted(avoid - self._routes.avoid),
                )
            self._routes = self.topology.avoiding(avoid)
            self.stats.nodes_avoided = len(avoid)

    def _fail_message(self, message_id: int, reason: str) -> None:
        message = self._messages.pop(message_id, None)
        if message is None:
            return
        for fid in message.outstanding:
            self._pending.pop(fid, None)
        self.stats.messages_failed += 1
        log.debug("message %d failed: %s", message_id, reason)
        self._events.append(MessageFailed(message_id, reason))

    # -- receiving --------------------------------------------------------------------

    def handle_push(self, plaintext: bytes, now: float) -> None:
        """One message the gateway pushed: an ack, cover, a fragment, maybe a whole message."""
        try:
            event = self.receiver.on_push(plaintext, now)
        except MixnetError as exc:
            self.stats.dropped_pushes += 1
            log.debug("dropped a %d-byte push: %s", len(plaintext), exc)
            return
        if isinstance(event, AckReceived):
            self._on_ack(event.fragment_id, now)
            return
        self.stats.packets_received += 1
        if isinstance(event, CoverReceived):
            self.stats.cover_received += 1
        elif isinstance(event, FragmentReceived):
            self.stats.fragments_received += 1
        elif isinstance(event, ReceiverMessage):
            self.stats.fragments_received += 1
            self._on_message(event, now)

    def _on_ack(self, fid: FragmentId, now: float) -> None:
        if fid.is_cover:
            self.stats.cover_acks_received += 1
            return
        pending = self._pending.pop(fid, None)
        if pending is None:
            self.stats.stray_acks += 1  # duplicate ack of a retransmitted fragment, or late
            self._on_spurious_resend(fid)
            return
        self.stats.acks_received += 1
        self._progress_at = now
        if pending.retries:
            self._resent_acked[fid] = pending.resent_by_order
            if len(self._resent_acked) > RESENT_ACKED_KEPT:
                self._resent_acked.popitem(last=False)
        self._acks_since_spurious += 1
        if self._acks_since_spurious >= FLOOR_DECAY_ACKS:
            self._acks_since_spurious = 0
            self._floor_scale = max(1, self._floor_scale // 2)
            self._reorder_scale = max(1, self._reorder_scale // 2)
        # Any ack, a resent fragment's too, shows the path works: a full window of
        # resends would otherwise keep the backed-off wait (no first transmission left
        # to sample), and each further loss of a resend doubled it again.
        self._backoff = 0
        if pending.retries == 0 and pending.deadline is not None:
            self._sample_ack_rtt(max(0.0, now - pending.sent_at - pending.expected_rtt))
            self.health.observe(pending.route, True, now)  # which copy came back is unknown else
            if self.config.loss_detection_window is not None:
                self._detect_losses(pending.sent_at + pending.expected_rtt, now)
        message = self._messages.get(pending.message_id)
        if message is None:
            return
        message.outstanding.discard(fid)
        if not message.outstanding:
            del self._messages[pending.message_id]
            self.stats.messages_delivered += 1
            self._events.append(MessageDelivered(pending.message_id))

    def _detect_losses(self, acked_due: float, now: float) -> None:
        """A fragment due back before one whose ack just came, by more than the window,
        is taken as lost: resent now instead of a whole ack timeout later. Only the acks
        of first transmissions count (which copy of a resent one came back is unknown)."""
        window = self.config.loss_detection_window or 0.0
        if self._srtt is not None:
            window = max(window, self._srtt / 4)
        window *= self._reorder_scale
        cutoff = acked_due - window
        for pending in self._pending.values():
            deadline = pending.deadline
            if (
                deadline is not None
                and deadline > now
                and pending.retransmit
                and pending.sent_at + pending.expected_rtt < cutoff
            ):
                pending.deadline = now
                pending.detected_lost = True
                self.stats.losses_detected += 1

    def _on_message(self, event: ReceiverMessage, now: float) -> None:
        message = event.message
        if isinstance(message, PlainMessage):
            self._deliver(ReceivedMessage(message.data, None, event.via_reply))
        elif isinstance(message, RepliableMessage):
            if message.reply_surbs:
                self._store_surbs(message, now)
                self.stats.reply_surbs_received += len(message.reply_surbs)
                self._surb_requested.pop(message.sender_tag, None)
            if message.content_tag.carries_data:
                self._deliver(ReceivedMessage(message.data, message.sender_tag, event.via_reply))
        elif message.content_tag is ReplyContentTag.DATA:
            self._deliver(ReceivedMessage(message.data, None, True))
        else:
            self._serve_surb_request(message, now)

    def _store_surbs(self, message: RepliableMessage, now: float) -> None:
        store = self._surbs.pop(message.sender_tag, None) or _SurbStore(now)
        store.refreshed = now
        self._surbs[message.sender_tag] = store  # now the most recently refreshed
        store.surbs.extend((s, message.key_rotation) for s in message.reply_surbs)
        for _ in range(len(store.surbs) - self.config.max_reply_surbs_per_tag):
            store.surbs.popleft()
            self.stats.reply_surbs_dropped += 1
        while len(self._surbs) > self.config.max_reply_surb_tags:
            self._forget_surbs(next(iter(self._surbs)))

    def _forget_surbs(self, tag: bytes) -> None:
        store = self._surbs.pop(tag)
        self.stats.reply_surbs_dropped += len(store.surbs)
        self._surb_requested.pop(tag, None)

    def _expire_surbs(self, now: float) -> None:
        idle = self.config.reply_surb_tag_idle
        while self._surbs:
            tag, store = next(iter(self._surbs.items()))
            if now - store.refreshed < idle:
                return
            self._forget_surbs(tag)

    def _serve_surb_request(self, request: ReplyMessage, now: float) -> None:
        """Send more SURBs to whoever we gave SURBs before (same sender tag)."""
        recipient = request.recipient
        tag = self._our_tags.get(recipient) if recipient is not None else None
        if recipient is None or tag is None or request.amount == 0:
            # Only a peer we sent repliable messages to can ask; otherwise the request
            # would make us send SURBs to an address of the requester's choosing.
            self.stats.surb_requests_ignored += 1
            return
        amount = min(request.amount, self.config.max_reply_surbs_per_request)
        v2 = self.preparer.sphinx_version == VERSION_PAYLOAD_KEY_SEEDS
        surbs = tuple(self.preparer.reply_surbs(amount, self._routes))
        self.receiver.remember_reply_surbs(surbs, now)
        self.stats.surb_requests_served += 1
        self.stats.reply_surbs_served += amount

        def answer(part: tuple[ReplySurb, ...]) -> list[Fragment]:
            return self.preparer.split(
                RepliableMessage(
                    tag,
                    RepliableContentTag.ADDITIONAL_SURBS_V2
                    if v2
                    else RepliableContentTag.ADDITIONAL_SURBS,
                    part,
                    b"",
                    self.topology.key_rotation if v2 else SphinxKeyRotation.UNKNOWN,
                )
            )

        # Deliberate departure (issue 20 item 3): the answer goes as messages of one
        # packet each, the same packets as one message of many fragments would take.
        # Each is usable on arrival: at 27 % loss per path one fragment of fifteen was
        # nearly always lost, and the requester, at its reserve, waited for its resend.
        per_packet = self._surbs_per_packet
        first = answer(surbs[:per_packet])
        while per_packet > 1 and len(first) > 1:
            per_packet -= 1
            first = answer(surbs[:per_packet])
        self._surbs_per_packet = per_packet
        self._enqueue_message(first, _ToRecipient(recipient), bulk=True)
        for start in range(per_packet, amount, per_packet):
            self._enqueue_message(
                answer(surbs[start : start + per_packet]), _ToRecipient(recipient), bulk=True
            )

    def _deliver(self, received: ReceivedMessage) -> None:
        self.stats.messages_received += 1
        self._events.append(received)

    def poll_event(self) -> CoreEvent | None:
        return self._events.popleft() if self._events else None

    # -- introspection ---------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._bulk)

    @property
    def queued_ahead(self) -> int:
        """Real packets waiting that go before SURBs for peers (see `_bulk`)."""
        return len(self._queue)

    @property
    def pending_acks(self) -> int:
        return len(self._pending)

    def outstanding_messages(self) -> set[int]:
        return set(self._messages)
