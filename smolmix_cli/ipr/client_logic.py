"""The client side of IPR v9/v10, sans-io: connect, carry IP packets, notice when the exit forgot us.

What the published client does (spec §2.4, §12): an empty LP Open frame with 10
reply SURBs, then the ConnectRequest as LP Data seq 0 with 2 SURBs, both under
one sender tag; the reply is matched by stream id and request id. v10 is tried
first when the exit's build is new enough and must be answered with version
byte 10; after 15 s the client retries as v9 (new request id, same stream, no new
Open), whose reply's version byte it does not check. Every IP packet then goes
in its own Data message with 2 SURBs, LP seq 1, 2, … . Incoming sequence numbers
are ignored: TCP reorders by itself.

Deliberate departure (issue 17): with `surb_sizing` on, a data message carries at
most `data_reply_surbs` SURBs, and only as many as fit the padding of its last packet,
and none while the exit holds an estimated `max_surb_stock_target` (SURBs sent, less
replies by their sequence numbers, re-anchored by its SURB requests). A full-size IP
packet then travels in one Sphinx packet instead of two; the exit asks for SURBs when
it runs low, and the mixnet client answers (50 SURBs in about 15 packets). The connect
keeps the published client's 10 + 2, which lets the exit answer at once.

Deliberate departure (issue 17): with `bundle_fragments` > 0, IP packets queued together
share Data messages sized to whole Sphinx packets (`pack`, `ipr/bundle.FragmentPacker`):
18 full-size packets in 16 Sphinx packets instead of 18, while at least 90 % of our
fragments are acked (on a lossy path a lost fragment holds back its whole bundle).
Upstream's IPR decodes every packet of a DataRequest (spec §5.6), so any exit accepts
it. Packets go one per message where bundling saves nothing; the shell decides how
long a partial bundle may wait (`flush_packed`).

The exit drops a client silently after 60 s without uplink data, so the client
tracks its own uplink and reports `ReconnectNeeded` rather than waiting for a
notice that never comes.

No I/O here: the shell passes monotonic `now` (seconds) and, once per connect, the
wall clock; it carries `SendToIpr` / `SendAdditionalSurbs` through the mixnet
(building the reply SURBs) and acts on the events.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import IPv4Address, IPv6Address

from smolmix_cli.ipr.bundle import (
    BundleDecoder,
    FragmentPacker,
    LossGate,
    data_message_fragments,
    decode_bundle,
    encode_bundle,
)
from smolmix_cli.ipr.errors import IprError, MalformedIprMessage
from smolmix_cli.ipr.lone_ack import is_lone_tcp_ack
from smolmix_cli.ipr.lp_frame import HEADER_SIZE, MAX_SEQ, LpFrame, MsgType
from smolmix_cli.ipr.messages import (
    V9,
    V10,
    ConnectFailure,
    ConnectRequest,
    ConnectSuccess,
    DataRequest,
    DataResponse,
    DisconnectRequest,
    DisconnectResponse,
    HealthRequest,
    HealthResponse,
    InfoResponse,
    IpPacketRequest,
    IpPacketResponse,
    OffsetDateTime,
    PingRequest,
    PongResponse,
    RequestBody,
    UnrequestedDisconnect,
    utc_timestamp,
)

# The first release whose IPR speaks v10: upstream nymtech/nym
# common/ip-packet-requests/src/v10/mod.rs MIN_RELEASE_VERSION. (The recorded client
# tried v10 at 1.99.0 and not at 1.31.0, which this agrees with.)
V10_MIN_BUILD = (1, 37, 0)


@dataclass(frozen=True, slots=True)
class MessageSizes:
    """What the mixnet layer knows about message sizes (this layer does not import it):
    the tunnel passes `mixnet.message.preparer`'s functions. Without them every message
    is assumed to have room for `data_reply_surbs`, every reply to cost one SURB and a
    message one packet per 1,500 bytes."""

    surbs_that_fit: Callable[[int], int]  # SURBs beside n payload bytes at no extra packet
    reply_fragments: Callable[[int], int]  # SURBs a reply of n bytes spends
    message_fragments: Callable[[int], int]  # packets a message of n payload bytes takes


class NotConnected(IprError):
    """Packets or requests handed to the client before it is connected."""


# The exit answers only while it keeps 10 SURBs in reserve (spec §2.4): the Open and the
# ConnectRequest together must bring at least 11; the published client sends 10 + 2.
CONNECT_SURBS = 12
EXIT_REQUEST_BELOW = 60  # the exit asks for SURBs below reserve (10) + buffer (50), at least
MIN_CONNECT_REQUEST_SURBS = 2
# The exit's reply resends (issue 20 item 3): our own fragments' share acked, taken over
# at least this many sent, estimates how often a reply fragment and its SURB-ACK both
# make it; one over it is what a reply fragment spends. At most 4 SURBs per fragment.
DELIVERY_SAMPLE_PACKETS = 64
MIN_DELIVERY_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class ClientConfig:
    open_reply_surbs: int = 10
    # Per data message: with surb_sizing at most this many, where they fit (3 fit beside
    # a TCP ACK); without, exactly this many (the published client sends 2).
    data_reply_surbs: int = 3
    # Size SURBs to the room in each message (see the module docstring); False: every
    # data message carries exactly `data_reply_surbs`, a fixed count as published.
    surb_sizing: bool = True
    max_surb_stock_target: int = 200  # the exit asks for no more beyond 200 either
    connect_timeout: float = 60.0
    v10_fallback_after: float = 15.0
    idle_timeout: float = 60.0  # the exit's CLIENT_MIXNET_INACTIVITY_TIMEOUT
    keepalive_after: float = 45.0  # when to ask the shell for some uplink data
    ping_timeout: float = 30.0
    max_missed_pongs: int = 2
    default_mtu: int = 1420  # CLIENT_MTU_FALLBACK: the exit TUN's MTU when the reply reports none
    max_surbs_answered: int = 500  # client-core's maximum_allowed_reply_surb_request_size
    surbs_per_message: int = 100  # at most this many SURBs in one AdditionalSurbs message
    # Deliberate departure (issue 20 item 3): a message holding only a lone TCP ACK is not
    # resent by the mixnet client. The next ACK carries the same cumulative news, and under
    # loss such resends were half the uplink packets (bench/loss.py). True: resend all.
    resend_lone_acks: bool = False
    # Deliberate departure (issue 17, module docstring): Data messages of up to this many
    # Sphinx packets where bundling saves packets (18 full-size IP packets fit 16, 10 fit
    # 9); 0: one IP packet per message, as the published client sends them.
    bundle_fragments: int = 16
    bundle_hold: float = 0.05  # the most a partial bundle waits while the stack has more


# --- what the shell must send ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendToIpr:
    """An anonymous (repliable) message to the IPR with `payload` and this many fresh reply SURBs.

    Repliable even with 0 SURBs: the exit knows its clients by their sender tag."""

    payload: bytes
    reply_surbs: int
    retransmit: bool = True
    """False: the mixnet client sends it once (a lone TCP ACK, see `send_packet`)."""


@dataclass(frozen=True, slots=True)
class SendAdditionalSurbs:
    """An AdditionalSurbs message (no data) with this many reply SURBs, same sender tag."""

    count: int


Transmit = SendToIpr | SendAdditionalSurbs


# --- what happened ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    ipv4: IPv4Address
    ipv6: IPv6Address
    mtu: int
    mtu_reported: bool
    version: int


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    """`reason` is the exit's ConnectFailureReason name, "timeout" or "unexpected response"."""

    reason: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class PacketsReceived:
    packets: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PongReceived:
    request_id: int
    round_trip: float


@dataclass(frozen=True, slots=True)
class HealthReceived:
    response: HealthResponse


@dataclass(frozen=True, slots=True)
class InfoReceived:
    response: InfoResponse


@dataclass(frozen=True, slots=True)
class KeepaliveDue:
    """No uplink data for `idle_for` s: send some soon, or the exit forgets this client."""

    idle_for: float


@dataclass(frozen=True, slots=True)
class ReconnectNeeded:
    """The exit has (or will have) dropped this client: "idle", "pongs missing", "disconnected"."""

    reason: str


Event = (
    Connected
    | ConnectFailed
    | PacketsReceived
    | PongReceived
    | HealthReceived
    | InfoReceived
    | KeepaliveDue
    | ReconnectNeeded
)


class ClientState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"  # connect refused or timed out
    LOST = "lost"  # was connected; the exit dropped us or will have


def parse_build_version(text: str) -> tuple[int, int, int] | None:
    match = re.match(r"\s*v?(\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        return None
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def version_for_exit(
    build_version: str | None, v10_min_build: tuple[int, int, int] = V10_MIN_BUILD
) -> int:
    """The IPR version to try first for an exit whose directory entry shows this build."""
    parsed = parse_build_version(build_version) if build_version else None
    return V10 if parsed is not None and parsed >= v10_min_build else V9


@dataclass(slots=True)
class _Attempt:
    version: int
    request_id: int
    started: float


def _decode_v10_connect_reply(content: bytes, version: int) -> IpPacketResponse:
    """A reply to a v10 connect: tagged v10, in the v10 layout or, without the trailing
    mtu, in the v9 layout (an exit that predates MTU negotiation; its success then gets
    `default_mtu`). Upstream does the same: nymtech/nym wasm/smolmix/src/ipr.rs connect_v10
    parses such a reply as v9 and uses CLIENT_MTU_FALLBACK. Other versions are dropped."""
    if not content or content[0] != version:
        tag = content[0] if content else "?"
        raise MalformedIprMessage(f"v{tag} reply to a v{version} request")
    try:
        return IpPacketResponse.decode(content)
    except IprError:
        response = IpPacketResponse.decode(content, layout_version=V9)
        if not isinstance(response.body, ConnectSuccess):
            raise
        return response


class IprClient:
    """One tunnel's IPR session. Feed it replies and time; drain transmits and events."""

    def __init__(
        self,
        rng: random.Random | None = None,
        config: ClientConfig | None = None,
        sizes: MessageSizes | None = None,
    ) -> None:
        self._rng = rng if rng is not None else random.SystemRandom()
        self.config = config if config is not None else ClientConfig()
        room = self.config.data_reply_surbs
        self.sizes = (
            sizes
            if sizes is not None
            else MessageSizes(lambda _n: room, lambda _n: 1, lambda n: -(-n // 1500))
        )
        self.state = ClientState.IDLE
        self.stream_id: int | None = None
        self.version: int | None = None
        self.ipv4: IPv4Address | None = None
        self.ipv6: IPv6Address | None = None
        self.mtu: int | None = None
        self.dropped = 0  # replies we could not use (wrong stream, garbage, stale)
        self._transmits: list[Transmit] = []
        self._events: list[Event] = []
        self._attempt: _Attempt | None = None
        self._connect_started = 0.0
        self._wall_anchor: tuple[float, datetime] | None = None
        self._seq = 0
        self._last_uplink = 0.0
        self._keepalive_signalled = False
        self._pings: dict[int, float] = {}
        self._missed_pongs = 0
        self.exit_surbs: float = 0  # estimated SURBs the exit holds for us (`surb_sizing`)
        self._delivery = 1.0  # smoothed share of our own fragments acked
        self._delivery_mark: tuple[int, int] | None = None
        self._top_seq = 0  # the highest data reply number seen
        self.surbs_sent = 0
        self.surb_requests = 0
        self._packer: FragmentPacker | None = None
        # below 90 % of our fragments acked, packets go one per message again (`pack`)
        self.bundle_gate = LossGate()
        self.packed_since = 0.0  # when the partial bundle got its first packet

    # --- drained by the shell ---------------------------------------------------------------

    def pop_transmits(self) -> list[Transmit]:
        out, self._transmits = self._transmits, []
        return out

    def pop_events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    # --- connecting ---------------------------------------------------------------------------

    def connect(self, now: float, wall_clock: datetime, *, version: int = V9) -> None:
        """Start (or restart) a session: a fresh stream, Open with SURBs, then the ConnectRequest."""
        if version not in (V9, V10):
            raise IprError(f"the LP transport speaks v9 or v10, not v{version}")
        self._reset()
        self.state = ClientState.CONNECTING
        self._connect_started = now
        self._wall_anchor = (now, wall_clock)
        self.stream_id = self._rng.getrandbits(64)
        self.exit_surbs = 0
        self._top_seq = 0
        open_frame = LpFrame(self.stream_id, MsgType.OPEN, 0)
        self._emit(open_frame.encode(), self.config.open_reply_surbs)
        self._send_connect(version, now)

    def _reset(self) -> None:
        self._packer = None  # a new session's packets only (and its version's envelope)
        self.version = self.ipv4 = self.ipv6 = self.mtu = None
        self._attempt = None
        self._seq = 0
        self._pings.clear()
        self._missed_pongs = 0
        self._keepalive_signalled = False

    def _timestamp(self, now: float) -> OffsetDateTime:
        assert self._wall_anchor is not None
        anchor_now, anchor_wall = self._wall_anchor
        return utc_timestamp(anchor_wall + timedelta(seconds=max(0.0, now - anchor_now)))

    def _send_connect(self, version: int, now: float) -> None:
        assert self.stream_id is not None
        request_id = self._rng.getrandbits(64)
        self._attempt = _Attempt(version, request_id, now)
        request = IpPacketRequest(version, ConnectRequest(request_id, self._timestamp(now)))
        frame = LpFrame(self.stream_id, MsgType.DATA, 0, request.encode())
        cfg = self.config
        if cfg.surb_sizing:
            # What the exit needs to answer at once, whatever --data-surbs says.
            surbs = max(MIN_CONNECT_REQUEST_SURBS, CONNECT_SURBS - cfg.open_reply_surbs)
        else:
            surbs = cfg.data_reply_surbs
        self._emit(frame.encode(), surbs)

    def _emit(self, payload: bytes, surbs: int, *, retransmit: bool = True) -> None:
        self.exit_surbs += surbs
        self.surbs_sent += surbs
        self._transmits.append(SendToIpr(payload, surbs, retransmit=retransmit))

    def _data_surbs(self, payload_len: int) -> int:
        """SURBs for one data message: a fixed count, or as many as cost no packet."""
        cfg = self.config
        if not cfg.surb_sizing:
            return cfg.data_reply_surbs
        if self.exit_surbs >= cfg.max_surb_stock_target:
            return 0
        return min(cfg.data_reply_surbs, self.sizes.surbs_that_fit(payload_len))

    def _count_spent(self, seq: int, cost: int) -> None:
        """Debit the estimate for a reply. Data replies are numbered 1, 2, … (0 is for
        inline control replies), so a jump in the numbers counts replies lost or still
        on their way as spent too, and a late one is not counted twice."""
        spent = cost * self.reply_resend_factor
        if seq == 0:
            self.exit_surbs -= spent
            return
        ahead = (seq - self._top_seq) % MAX_SEQ  # numbers wrap from MAX_SEQ to 1
        if 0 < ahead < 1 << 31:
            self.exit_surbs -= ahead * spent
            self._top_seq = seq

    def observe_round_trips(self, sent: int, acked: int) -> None:
        """Our mixnet client's totals of fragments sent and acks received so far.

        Where its SURB-ACK does not come, the exit resends a reply fragment through
        another of our SURBs; its fragments and acks cross the same mixes as ours, so
        the share of ours acked tells how many SURBs a reply really spends. Without
        this, an exit on a lossy path spends its stock unseen and stalls on its reserve
        until a SURB request gets through (upstream waits 10 s before asking again).
        """
        mark = self._delivery_mark
        if mark is None or sent < mark[0] or acked < mark[1]:
            self._delivery_mark = (sent, acked)
            return
        sent_since = sent - mark[0]
        if sent_since < DELIVERY_SAMPLE_PACKETS:
            return
        share = min(1.0, max(MIN_DELIVERY_SHARE, (acked - mark[1]) / sent_since))
        self._delivery = 0.75 * self._delivery + 0.25 * share
        self._delivery_mark = (sent, acked)

    @property
    def reply_resend_factor(self) -> float:
        """SURBs a reply fragment spends at the exit, its resends included."""
        return 1.0 / self._delivery

    def _on_exit_low(self) -> None:
        """The exit asked for SURBs, so it held fewer than its threshold: an estimate
        above it had missed spending (the exit's reply resends, lost requests)."""
        self.surb_requests += 1
        self.exit_surbs = min(self.exit_surbs, EXIT_REQUEST_BELOW - 1)

    def on_surbs_served(self, count: int) -> None:
        """The mixnet client answered the exit's SurbRequest with `count` SURBs (the
        request itself came through one of ours)."""
        self._on_exit_low()
        self.exit_surbs += count - 1
        self.surbs_sent += count

    # --- sending --------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = 1 if self._seq >= MAX_SEQ else self._seq + 1
        return self._seq

    def _send_request(self, body: RequestBody, *, retransmit: bool = True) -> None:
        assert self.stream_id is not None and self.version is not None
        request = IpPacketRequest(self.version, body).encode()
        payload = LpFrame(self.stream_id, MsgType.DATA, self._next_seq(), request).encode()
        self._emit(payload, self._data_surbs(len(payload)), retransmit=retransmit)

    def _require_connected(self) -> None:
        if self.state is not ClientState.CONNECTED:
            raise NotConnected(f"IPR session is {self.state.value}")

    def send_packet(self, packet: bytes, now: float) -> None:
        """One IP packet in its own Data message (as the published client sends them)."""
        self._require_connected()
        retransmit = self.config.resend_lone_acks or not is_lone_tcp_ack(packet)
        self._send_data(encode_bundle([packet]), now, retransmit=retransmit)

    def send_packets(self, packets: Sequence[bytes], now: float) -> None:
        """Several IP packets in one Data message (u16 bundle; the exit unbundles any count)."""
        self._require_connected()
        if not packets:
            return
        self._send_data(encode_bundle(packets), now)

    def _send_data(self, bundle: bytes, now: float, *, retransmit: bool = True) -> None:
        """One Data message carrying an encoded bundle; it keeps the session alive."""
        self._send_request(DataRequest(bundle), retransmit=retransmit)
        self._last_uplink = now
        self._keepalive_signalled = False

    @property
    def packed(self) -> int:
        """IP packets `pack` holds for a partial bundle."""
        if self._packer is None or self.state is not ClientState.CONNECTED:
            return 0  # a lost session's packets are dropped with it
        return self._packer.buffered

    @property
    def packed_bytes(self) -> int:
        return self._packer.size if self._packer is not None else 0

    def pack(self, packet: bytes, now: float) -> None:
        """Queue one IP packet for a bundle; full bundles are sent at once (see the module
        docstring). Without `bundle_fragments`, the packet is sent on its own."""
        self._require_connected()
        if self.config.bundle_fragments <= 0 or not self.bundle_gate.open:
            self.flush_packed(now)  # keeps the order
            self.send_packet(packet, now)
            return
        if self._packer is None:
            # a Data message's envelope: the LP frame, then the request header's version,
            # service provider and kind bytes
            fragments = data_message_fragments(self.sizes.message_fragments, HEADER_SIZE + 3)
            self._packer = FragmentPacker(fragments, self.config.bundle_fragments)
        if not self._packer.buffered:
            self.packed_since = now
        bundles = self._packer.push(packet)
        for bundle in bundles:
            self._send_bundle(bundle, now)
        if bundles and self._packer.buffered:
            self.packed_since = now

    def flush_packed(self, now: float) -> None:
        """Send the partial bundle (as one message only where that saves packets)."""
        if self._packer is not None and self.state is ClientState.CONNECTED:
            for bundle in self._packer.flush():
                self._send_bundle(bundle, now)

    def _send_bundle(self, bundle: bytes, now: float) -> None:
        """A packer's bundle as it is (one packet's is already `encode_bundle([packet])`);
        decoded only to tell whether it holds nothing but lone ACKs."""
        lone_acks = all(is_lone_tcp_ack(p) for p in decode_bundle(bundle))
        self._send_data(bundle, now, retransmit=self.config.resend_lone_acks or not lone_acks)

    def ping(self, now: float) -> int:
        """Send a Ping; pings do not keep the session alive at the exit."""
        self._require_connected()
        request_id = self._rng.getrandbits(64)
        self._send_request(PingRequest(request_id, self._timestamp(now)))
        self._pings[request_id] = now
        return request_id

    def health(self, now: float) -> int:
        self._require_connected()
        request_id = self._rng.getrandbits(64)
        self._send_request(HealthRequest(request_id, self._timestamp(now)))
        return request_id

    def disconnect(self, now: float) -> None:
        """Tell the exit to free our addresses; the session is over either way."""
        if self.state is ClientState.CONNECTED:
            self._send_request(DisconnectRequest(self._rng.getrandbits(64), self._timestamp(now)))
        self.state = ClientState.IDLE

    def on_surb_request(self, amount: int, now: float) -> None:
        """The exit asked for more reply SURBs: answer with AdditionalSurbs, bounded and batched."""
        if self.state not in (ClientState.CONNECTING, ClientState.CONNECTED):
            self.dropped += 1
            return
        left = max(0, min(amount, self.config.max_surbs_answered))
        self._on_exit_low()
        self.exit_surbs -= 1  # the request came through one of ours
        while left > 0:
            batch = min(left, self.config.surbs_per_message)
            self._transmits.append(SendAdditionalSurbs(batch))
            self.exit_surbs += batch
            self.surbs_sent += batch
            left -= batch

    # --- receiving ------------------------------------------------------------------------------

    def on_reply(self, payload: bytes, now: float) -> None:
        """The data of a reply message (a Reply NymMessage's content) from the mixnet."""
        cost = self.sizes.reply_fragments(len(payload))
        try:
            frame = LpFrame.decode(payload)
        except IprError:
            self.exit_surbs -= cost
            self.dropped += 1
            return
        if frame.stream_id != self.stream_id or frame.msg_type is not MsgType.DATA:
            self.exit_surbs -= cost
            self.dropped += 1
            return
        self._count_spent(frame.seq, cost)
        if self.state is ClientState.CONNECTING:
            self._on_connect_reply(frame.content, now)
        elif self.state is ClientState.CONNECTED:
            self._on_session_reply(frame.content, now)
        else:
            self.dropped += 1

    def _on_connect_reply(self, content: bytes, now: float) -> None:
        attempt = self._attempt
        assert attempt is not None
        try:
            if attempt.version >= V10:
                response = _decode_v10_connect_reply(content, attempt.version)
            else:  # the v9 path reads any reply as v9 and does not check its version byte
                response = IpPacketResponse.decode(content, layout_version=V9)
        except IprError:
            self.dropped += 1
            return
        if response.request_id != attempt.request_id:
            self.dropped += 1
            return
        body = response.body
        if isinstance(body, ConnectSuccess):
            self.state = ClientState.CONNECTED
            self.version = attempt.version
            self.ipv4, self.ipv6 = body.ipv4, body.ipv6
            self.mtu = body.mtu if body.mtu is not None else self.config.default_mtu
            self._last_uplink = now
            self._events.append(
                Connected(body.ipv4, body.ipv6, self.mtu, body.mtu is not None, attempt.version)
            )
        elif isinstance(body, ConnectFailure):
            self.state = ClientState.FAILED
            self._events.append(ConnectFailed(body.reason.name, body.message))
        else:
            self.state = ClientState.FAILED
            self._events.append(ConnectFailed("unexpected response", type(body).__name__))

    def _on_session_reply(self, content: bytes, now: float) -> None:
        assert self.version is not None
        try:
            response = IpPacketResponse.decode(content, layout_version=self.version)
        except IprError:
            self.dropped += 1
            return
        body = response.body
        if isinstance(body, DataResponse):
            decoder = BundleDecoder()
            packets = decoder.feed(body.ip_packet)
            if decoder.pending:
                self.dropped += 1  # a torn tail: keep the whole packets, as upstream does
            if packets:
                self._events.append(PacketsReceived(tuple(packets)))
        elif isinstance(body, PongResponse):
            sent = self._pings.pop(body.request_id, None)
            if sent is None:
                self.dropped += 1
                return
            self._missed_pongs = 0
            self._events.append(PongReceived(body.request_id, now - sent))
        elif isinstance(body, HealthResponse):
            self._events.append(HealthReceived(body))
        elif isinstance(body, InfoResponse):
            self._events.append(InfoReceived(body))
        elif isinstance(body, DisconnectResponse | UnrequestedDisconnect):
            self._lose("disconnected")
        else:
            self.dropped += 1  # a late or repeated connect reply

    def _lose(self, reason: str) -> None:
        self.state = ClientState.LOST
        self._events.append(ReconnectNeeded(reason))

    # --- time ---------------------------------------------------------------------------------

    def poll_deadline(self) -> float | None:
        """When `handle_timeout` next has something to do."""
        cfg = self.config
        if self.state is ClientState.CONNECTING:
            assert self._attempt is not None
            deadline = self._connect_started + cfg.connect_timeout
            if self._attempt.version >= V10:
                deadline = min(deadline, self._attempt.started + cfg.v10_fallback_after)
            return deadline
        if self.state is ClientState.CONNECTED:
            deadline = self._last_uplink + cfg.idle_timeout
            if not self._keepalive_signalled:
                deadline = min(deadline, self._last_uplink + cfg.keepalive_after)
            if self._pings:
                deadline = min(deadline, min(self._pings.values()) + cfg.ping_timeout)
            return deadline
        return None

    def handle_timeout(self, now: float) -> None:
        cfg = self.config
        if self.state is ClientState.CONNECTING:
            assert self._attempt is not None
            if now - self._connect_started >= cfg.connect_timeout:
                self.state = ClientState.FAILED
                self._events.append(ConnectFailed("timeout"))
            elif (
                self._attempt.version >= V10
                and now - self._attempt.started >= cfg.v10_fallback_after
            ):
                self._send_connect(V9, now)
            return
        if self.state is not ClientState.CONNECTED:
            return
        idle = now - self._last_uplink
        if idle >= cfg.idle_timeout:
            self._lose("idle")
            return
        if idle >= cfg.keepalive_after and not self._keepalive_signalled:
            self._keepalive_signalled = True
            self._events.append(KeepaliveDue(idle))
        for request_id, sent in list(self._pings.items()):
            if now - sent >= cfg.ping_timeout:
                del self._pings[request_id]
                self._missed_pongs += 1
        if self._missed_pongs >= cfg.max_missed_pongs:
            self._lose("pongs missing")
