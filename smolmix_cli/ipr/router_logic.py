"""The exit side of IPR v8/v9/v10, sans-io: what our local exit IPR does with clients' messages.

Follows the upstream IPR (spec §4-§6): control requests are tied to the sender
tag, data packets to their SOURCE address; addresses come from 10.0.0.0/16 and
fc00::/112; inline control replies use LP seq 0 on the requesting frame's stream,
data replies the stream bound at connect with seq 1, 2, … (0 skipped on wrap);
downlink packets are bundled up to 1500 bytes and flushed every buffer timeout
(or, with `bundle_fragments`, into bundles of whole Sphinx packets, see below);
a client with no uplink data for 60 s, or no downlink packet for 5 min, is
forgotten silently (swept every 10 s).
Replies spend the client's reply SURBs, keeping a reserve of 10 for SURB
requests, and the exit asks for more when it runs low.

Stricter than upstream: a data packet's source must belong to the client whose
sender tag carried it (upstream only checks that the source is allocated).
Deliberate departure for the local exit (issue 17): `bundle_fragments` > 0 bundles
downlink packets across fragment boundaries (`FragmentPacker`: 9 full-size packets in
8 reply fragments instead of 9). A partial bundle is sent on upstream's timer unless
the shell says more is coming for that client (`downlink_pending`: the NAT holds unsent
data for it) or the client is uploading (its ACKs: each reply spends one of the SURBs an
upload must send up), then after `bundle_hold` at most; where bundling saves nothing, packets
go one per message. Clients decode any bundle (spec §5.6); mainnet's exits keep 1500 bytes.

Nothing here raises on network input; bad input is dropped and counted in
`stats`. The shell moves `ReplyToClient` / `RequestSurbs` through the client's
SURBs and `pop_uplink()` packets to the NAT.
"""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from smolmix_cli.ipr.bundle import (
    BUFFER_TIMEOUT_S,
    BULK_PACKET,
    MAX_BUNDLE_SIZE,
    BundleDecoder,
    BundleEncoder,
    FragmentPacker,
    data_message_fragments,
)
from smolmix_cli.ipr.errors import IprError, MalformedIpPacket, UnsupportedVersion
from smolmix_cli.ipr.lp_frame import HEADER_SIZE, MAX_SEQ, LpFrame, MsgType, is_stream_frame
from smolmix_cli.ipr.messages import (
    MAX_NON_STREAM_VERSION,
    MTU_VERSION,
    SPHINX_STREAM_VERSION_THRESHOLD,
    BuildInfo,
    ConnectFailure,
    ConnectFailureReason,
    ConnectRequest,
    ConnectSuccess,
    DataRequest,
    DataResponse,
    DisconnectFailureReason,
    DisconnectRequest,
    DisconnectResponse,
    HealthRequest,
    HealthResponse,
    InfoKind,
    InfoLevel,
    InfoResponse,
    IpPacketRequest,
    IpPacketResponse,
    PingRequest,
    PongResponse,
    ResponseBody,
)

IpAddress = IPv4Address | IPv6Address
DestinationFilter = Callable[[IpAddress, int], bool]
DownlinkPending = Callable[[IPv4Address, IPv6Address], bool]

TUN_IPV4 = IPv4Address("10.0.0.1")
TUN_IPV6 = IPv6Address("fc00::1")
_IPV4_BASE = int(IPv4Address("10.0.0.0"))
_IPV6_BASE = int(IPv6Address("fc00::"))
FIRST_HOST = 2
LAST_HOST = 65534

_PROTO_TCP = 6
_PROTO_UDP = 17
_PROTO_ICMP = 1
_PROTO_ICMPV6 = 58
_TRANSPORT_MIN = {_PROTO_TCP: 20, _PROTO_UDP: 8, _PROTO_ICMP: 8, _PROTO_ICMPV6: 8}


@dataclass(frozen=True, slots=True)
class RouterConfig:
    mtu: int = 1420  # the exit TUN's MTU, reported to v10 clients
    max_bundle: int = MAX_BUNDLE_SIZE
    default_buffer_timeout: float = BUFFER_TIMEOUT_S
    idle_timeout: float = 60.0  # CLIENT_MIXNET_INACTIVITY_TIMEOUT (no uplink data)
    handler_idle_timeout: float = 300.0  # CLIENT_HANDLER_ACTIVITY_TIMEOUT (no downlink packet)
    sweep_interval: float = 10.0  # DISCONNECT_TIMER_INTERVAL
    allocation_attempts: int = 100
    surb_reserve: int = 10  # minimum_reply_surb_storage_threshold
    surb_request_buffer: int = 50  # nym-node's minimum_reply_surb_threshold_buffer
    surb_request_min: int = 10
    surb_request_max: int = 50
    max_stored_surbs: int = 200  # maximum_reply_surb_storage_threshold
    surb_rerequest_wait: float = 10.0
    build_info: BuildInfo = field(default_factory=BuildInfo)
    bind_source_to_sender_tag: bool = True
    # 0: upstream's bundles (above). n: bundles of up to n Sphinx packets (module docstring).
    bundle_fragments: int = 0
    bundle_hold: float = 0.05  # the most a partial bundle waits while more is coming


@dataclass(frozen=True, slots=True)
class ReplyToClient:
    """Send `payload` as a Reply message through the SURBs of `sender_tag`."""

    sender_tag: bytes
    payload: bytes


@dataclass(frozen=True, slots=True)
class RequestSurbs:
    """Send a SurbRequest for `amount` SURBs through one SURB of `sender_tag`."""

    sender_tag: bytes
    amount: int


RouterTransmit = ReplyToClient | RequestSurbs


@dataclass(frozen=True, slots=True)
class PacketInfo:
    source: IpAddress
    destination: IpAddress
    protocol: int
    destination_port: int  # 0 when the transport has no ports (ICMP, unknown)


def parse_packet(packet: bytes) -> PacketInfo:
    """Addresses, protocol and port of an IP packet that has an IP and a transport header."""
    if not packet:
        raise MalformedIpPacket("empty packet")
    version = packet[0] >> 4
    if version == 4:
        ihl = (packet[0] & 0x0F) * 4
        if len(packet) < 20 or ihl < 20 or len(packet) < ihl:
            raise MalformedIpPacket("truncated IPv4 header")
        protocol = packet[9]
        source: IpAddress = IPv4Address(packet[12:16])
        destination: IpAddress = IPv4Address(packet[16:20])
        offset = ihl
    elif version == 6:
        if len(packet) < 40:
            raise MalformedIpPacket("truncated IPv6 header")
        protocol = packet[6]
        source = IPv6Address(packet[8:24])
        destination = IPv6Address(packet[24:40])
        offset = 40
    else:
        raise MalformedIpPacket(f"IP version {version}")
    needed = _TRANSPORT_MIN.get(protocol, 0)
    if len(packet) - offset < needed:
        raise MalformedIpPacket(f"truncated transport header (protocol {protocol})")
    port = 0
    if protocol in (_PROTO_TCP, _PROTO_UDP):
        port = int.from_bytes(packet[offset + 2 : offset + 4], "big")
    return PacketInfo(source, destination, protocol, port)


def downlink_destination(packet: bytes) -> IpAddress:
    """The destination the TUN listener reads: byte 16 (IPv4) or 24 (IPv6)."""
    if len(packet) >= 20 and packet[0] >> 4 == 4:
        return IPv4Address(packet[16:20])
    if len(packet) >= 40 and packet[0] >> 4 == 6:
        return IPv6Address(packet[24:40])
    raise MalformedIpPacket("no IPv4/IPv6 destination")


def address_pair(n: int) -> tuple[IPv4Address, IPv6Address]:
    """Host number n in the pools: 10.0.(n>>8).(n&0xff) and fc00::n."""
    return IPv4Address(_IPV4_BASE + n), IPv6Address(_IPV6_BASE + n)


def socket_text(address: IpAddress, port: int) -> str:
    """As Rust's SocketAddr displays it (the exit-policy Info carries this text)."""
    return f"[{address}]:{port}" if isinstance(address, IPv6Address) else f"{address}:{port}"


@dataclass(slots=True)
class _Client:
    sender_tag: bytes
    ipv4: IPv4Address
    ipv6: IPv6Address
    version: int
    stream_id: int | None  # None for a raw (v8) client
    buffer_timeout: float
    last_activity: float
    last_emit: float
    last_downlink: float
    encoder: BundleEncoder | FragmentPacker
    seq: int = 0
    first_buffered: float = 0.0  # when the packer's partial bundle got its first packet
    held: bool = False  # its flush time came while more was coming: wait for the hold
    uploading: bool = False  # its last data message was a bundle of data segments

    def next_seq(self) -> int:
        self.seq = 1 if self.seq >= MAX_SEQ else self.seq + 1
        return self.seq


@dataclass(slots=True)
class _SurbAccount:
    available: int = 0
    pending: int = 0
    requested_at: float | None = None
    last_seen: float = 0.0
    queue: deque[bytes] = field(default_factory=deque)


class IprRouter:
    """The exit IPR's state: clients by sender tag and by address, SURB accounts, bundlers."""

    def __init__(
        self,
        rng: random.Random | None = None,
        config: RouterConfig | None = None,
        *,
        allow_destination: DestinationFilter | None = None,
        reply_surb_cost: Callable[[int], int] | None = None,
        downlink_pending: DownlinkPending | None = None,
    ) -> None:
        self._rng = rng if rng is not None else random.SystemRandom()
        self.config = config if config is not None else RouterConfig()
        self._allow = allow_destination
        self._cost = reply_surb_cost if reply_surb_cost is not None else (lambda _size: 1)
        self._downlink_pending = downlink_pending
        self._bundling = True  # `set_bundling`: off on a lossy path
        self.stats: Counter[str] = Counter()
        self._clients: dict[bytes, _Client] = {}
        self._by_address: dict[IpAddress, _Client] = {}
        self._accounts: dict[bytes, _SurbAccount] = {}
        self._transmits: list[RouterTransmit] = []
        self._uplink: list[bytes] = []
        self._next_sweep: float | None = None

    # --- drained by the shell ---------------------------------------------------------------

    def pop_transmits(self) -> list[RouterTransmit]:
        out, self._transmits = self._transmits, []
        return out

    def pop_uplink(self) -> list[bytes]:
        """IP packets from clients, checked and allowed, for the NAT."""
        out, self._uplink = self._uplink, []
        return out

    def client_addresses(self, sender_tag: bytes) -> tuple[IPv4Address, IPv6Address] | None:
        client = self._clients.get(sender_tag)
        return None if client is None else (client.ipv4, client.ipv6)

    def surbs_available(self, sender_tag: bytes) -> int:
        account = self._accounts.get(sender_tag)
        return 0 if account is None else account.available

    # --- from the mixnet ------------------------------------------------------------------------

    def on_message(
        self, sender_tag: bytes | None, payload: bytes, reply_surbs: int, now: float
    ) -> None:
        """A reconstructed message for the IPR: its sender tag, data and how many SURBs it carried."""
        self._start_sweeping(now)
        if sender_tag is None:
            self.stats["no sender tag"] += 1
            return
        account = self._account(sender_tag, now)
        self._credit(account, reply_surbs)
        try:
            self._handle(sender_tag, payload, now)
        except UnsupportedVersion:
            self.stats["version"] += 1
        except IprError:
            self.stats["garbage"] += 1
        self._pump(sender_tag, now)

    def on_additional_surbs(self, sender_tag: bytes, count: int, now: float) -> None:
        account = self._account(sender_tag, now)
        self._credit(account, count)
        self._pump(sender_tag, now)

    def _credit(self, account: _SurbAccount, count: int) -> None:
        """SURBs arrived, with data or without: any of them answer an open request.

        Counting only those without data left a request open (a few SURBs short) while
        the client's SURBs came with its data instead, and a starving account then
        waited out the whole re-request wait (10 s) at its reserve. A remainder below
        the smallest request is forgiven for the same reason (issue 20 item 3)."""
        if count <= 0:
            return
        account.available += count
        account.pending = max(0, account.pending - count)
        if account.pending < self.config.surb_request_min:
            account.pending = 0
            account.requested_at = None

    def on_surbs_spent(self, sender_tag: bytes, count: int, now: float) -> None:
        """The shell's mixnet client spent `count` SURBs the router did not hand out
        (resent reply fragments): debit them, and ask for more if that leaves too few."""
        account = self._accounts.get(sender_tag)
        if account is None or count <= 0:
            return
        account.available = max(0, account.available - count)
        account.last_seen = now
        self._pump(sender_tag, now, active=True)

    def on_surbs_dropped(self, sender_tag: bytes, count: int) -> None:
        """The mixnet client dropped `count` of this tag's SURBs (its store is bounded)."""
        account = self._accounts.get(sender_tag)
        if account is not None:
            account.available = max(0, account.available - count)

    def _account(self, sender_tag: bytes, now: float) -> _SurbAccount:
        account = self._accounts.setdefault(sender_tag, _SurbAccount())
        account.last_seen = now
        return account

    def _handle(self, sender_tag: bytes, payload: bytes, now: float) -> None:
        frame: LpFrame | None = None
        if is_stream_frame(payload):
            frame = LpFrame.decode(payload)
            if not frame.content:
                self.stats["stream open"] += 1  # logged upstream, never answered
                return
            request = IpPacketRequest.decode(frame.content)
            if request.version < SPHINX_STREAM_VERSION_THRESHOLD:
                raise UnsupportedVersion(f"v{request.version} inside an LP frame")
        else:
            request = IpPacketRequest.decode(payload)
            if request.version > MAX_NON_STREAM_VERSION:
                raise UnsupportedVersion(f"v{request.version} without an LP frame")
        body = request.body
        if isinstance(body, DataRequest):
            self._on_data(sender_tag, request.version, frame, body, now)
        elif isinstance(body, ConnectRequest):
            self._on_connect(sender_tag, request.version, frame, body, now)
        elif isinstance(body, DisconnectRequest):
            self._on_disconnect(sender_tag, request.version, frame, body)
        elif isinstance(body, PingRequest):
            self._inline(sender_tag, request.version, frame, PongResponse(body.request_id))
        elif isinstance(body, HealthRequest):
            reply = HealthResponse(body.request_id, self.config.build_info, None)
            self._inline(sender_tag, request.version, frame, reply)

    # --- control ----------------------------------------------------------------------------------

    def _inline(
        self, sender_tag: bytes, version: int, frame: LpFrame | None, body: ResponseBody
    ) -> None:
        payload = IpPacketResponse(version, body).encode()
        if frame is not None:
            payload = LpFrame(frame.stream_id, MsgType.DATA, 0, payload).encode()
        self._queue(sender_tag, payload)

    def _allocate(self) -> tuple[IPv4Address, IPv6Address] | None:
        for _ in range(self.config.allocation_attempts):
            ipv4, ipv6 = address_pair(self._rng.randint(FIRST_HOST, LAST_HOST))
            taken = ipv4 in self._by_address or ipv6 in self._by_address
            if not taken and ipv4 != TUN_IPV4 and ipv6 != TUN_IPV6:
                return ipv4, ipv6
        return None

    def _on_connect(
        self,
        sender_tag: bytes,
        version: int,
        frame: LpFrame | None,
        request: ConnectRequest,
        now: float,
    ) -> None:
        existing = self._clients.get(sender_tag)
        if existing is not None and frame is None:
            pair: tuple[IPv4Address, IPv6Address] | None = (existing.ipv4, existing.ipv6)
        else:
            if existing is not None:  # an LP reconnect always gets new addresses
                self._remove(existing)
            pair = self._allocate()
        if pair is None:
            failure = ConnectFailure(request.request_id, ConnectFailureReason.NO_AVAILABLE_IP)
            self._inline(sender_tag, version, frame, failure)
            return
        if existing is None or frame is not None:
            timeout = (
                request.buffer_timeout / 1000
                if request.buffer_timeout is not None
                else self.config.default_buffer_timeout
            )
            client = _Client(
                sender_tag,
                pair[0],
                pair[1],
                version,
                None if frame is None else frame.stream_id,
                timeout,
                now,
                now,
                now,
                self._encoder(version, frame is not None),
            )
            self._clients[sender_tag] = client
            self._by_address[client.ipv4] = client
            self._by_address[client.ipv6] = client
        mtu = self.config.mtu if version >= MTU_VERSION else None
        success = ConnectSuccess(request.request_id, pair[0], pair[1], mtu)
        self._inline(sender_tag, version, frame, success)

    def _encoder(self, version: int, framed: bool) -> BundleEncoder | FragmentPacker:
        cfg = self.config
        if cfg.bundle_fragments <= 0:
            return BundleEncoder(cfg.max_bundle)
        head = (
            (HEADER_SIZE if framed else 0)
            + len(IpPacketResponse(version, DataResponse(b"")).encode())
            - 1
        )
        fragments = data_message_fragments(self._cost, head)
        return FragmentPacker(fragments, cfg.bundle_fragments if self._bundling else 1)

    def set_bundling(self, on: bool) -> None:
        """Bundles across fragment boundaries on or off (the shell turns them off where
        too few reply fragments are acked: a lost fragment holds back its whole bundle)."""
        if on == self._bundling:
            return
        self._bundling = on
        for client in self._clients.values():
            if isinstance(client.encoder, FragmentPacker):
                client.encoder.max_fragments = self.config.bundle_fragments if on else 1

    def _on_disconnect(
        self, sender_tag: bytes, version: int, frame: LpFrame | None, request: DisconnectRequest
    ) -> None:
        client = self._clients.get(sender_tag)
        if client is None:
            failure = DisconnectFailureReason.CLIENT_NOT_CONNECTED
            self._inline(
                sender_tag, version, frame, DisconnectResponse(request.request_id, failure)
            )
            return
        self._remove(client)
        self._inline(sender_tag, version, frame, DisconnectResponse(request.request_id))

    def _remove(self, client: _Client) -> None:
        self._clients.pop(client.sender_tag, None)
        self._by_address.pop(client.ipv4, None)
        self._by_address.pop(client.ipv6, None)

    # --- data ---------------------------------------------------------------------------------------

    def _on_data(
        self,
        sender_tag: bytes,
        version: int,
        frame: LpFrame | None,
        request: DataRequest,
        now: float,
    ) -> None:
        decoder = BundleDecoder()
        packets = decoder.feed(request.ip_packets)
        if decoder.pending:
            self.stats["torn bundle"] += 1  # upstream ignores the tail too
        for packet in packets:
            try:
                info = parse_packet(packet)
            except MalformedIpPacket:
                self.stats["bad ip packet"] += 1
                continue
            client = self._by_address.get(info.source)
            if client is None:
                self.stats["unknown source"] += 1
                continue
            if self.config.bind_source_to_sender_tag and client.sender_tag != sender_tag:
                self.stats["spoofed source"] += 1
                continue
            client.last_activity = now
            # a bundle of data segments, not one large packet (a ClientHello, a request)
            client.uploading = len(packets) > 1 and len(packet) >= BULK_PACKET
            if self._allow is not None and not self._allow(info.destination, info.destination_port):
                self.stats["exit policy"] += 1
                info_reply = InfoResponse(
                    0,
                    InfoKind.EXIT_POLICY_FILTER_CHECK_FAILED,
                    InfoLevel.WARN,
                    socket_text(info.destination, info.destination_port),
                )
                self._inline(sender_tag, version, frame, info_reply)
                continue
            self._uplink.append(packet)

    def on_downlink(self, packet: bytes, now: float) -> None:
        """A packet from the internet side (TUN / NAT) for one of our clients."""
        try:
            destination = downlink_destination(packet)
        except MalformedIpPacket:
            self.stats["bad downlink packet"] += 1
            return
        client = self._by_address.get(destination)
        if client is None:
            self.stats["downlink to nobody"] += 1
            return
        client.last_downlink = now
        was_empty = not client.encoder.buffered
        try:
            bundles = client.encoder.push(packet)
        except IprError:
            self.stats["downlink too large"] += 1
            return
        if was_empty or bundles:
            client.first_buffered = now
        for bundle in bundles:
            self._emit_bundle(client, bundle, now)

    def _emit_bundle(self, client: _Client, bundle: bytes, now: float) -> None:
        client.last_emit = now
        client.held = False
        payload = IpPacketResponse(client.version, DataResponse(bundle)).encode()
        if client.stream_id is not None:
            payload = LpFrame(client.stream_id, MsgType.DATA, client.next_seq(), payload).encode()
        self._queue(client.sender_tag, payload)
        self._pump(client.sender_tag, now)

    # --- SURB economy ---------------------------------------------------------------------------

    def _queue(self, sender_tag: bytes, payload: bytes) -> None:
        self._accounts.setdefault(sender_tag, _SurbAccount()).queue.append(payload)

    def _pump(self, sender_tag: bytes, now: float, *, active: bool = False) -> None:
        """Send what the SURBs allow above the reserve; ask for more when running low."""
        cfg = self.config
        account = self._accounts.get(sender_tag)
        if account is None:
            return
        sent_any = False
        while account.queue:
            cost = self._cost(len(account.queue[0]))
            if account.available - cost < cfg.surb_reserve:
                break
            account.available -= cost
            self._transmits.append(ReplyToClient(sender_tag, account.queue.popleft()))
            sent_any = True
        if not (sent_any or active or account.queue or account.requested_at is not None):
            return  # asked for SURBs only around reply traffic, not on an Open alone
        if (
            account.requested_at is not None
            and now - account.requested_at >= cfg.surb_rerequest_wait
        ):
            account.pending = 0  # that request went unanswered; ask again
            account.requested_at = None
        stock = account.available + account.pending
        wanted = cfg.surb_reserve + cfg.surb_request_buffer + len(account.queue)
        if (
            account.requested_at is None
            and account.available >= 1
            and stock < wanted
            and stock < cfg.max_stored_surbs
        ):
            amount = min(
                cfg.surb_request_max,
                max(len(account.queue) + cfg.surb_request_buffer, cfg.surb_request_min),
            )
            account.available -= 1
            account.pending += amount
            account.requested_at = now
            self._transmits.append(RequestSurbs(sender_tag, amount))

    def queued_replies(self, sender_tag: bytes) -> int:
        account = self._accounts.get(sender_tag)
        return 0 if account is None else len(account.queue)

    # --- time ---------------------------------------------------------------------------------------

    def _start_sweeping(self, now: float) -> None:
        if self._next_sweep is None:
            self._next_sweep = now + self.config.sweep_interval

    def settle(self, now: float) -> None:
        """Send the partial bundles that are due, unless more is coming for their client.

        The shell calls this after each batch of work (a message, NAT output)."""
        for client in self._clients.values():
            if isinstance(client.encoder, FragmentPacker) and client.encoder.buffered:
                self._settle(client, now)

    def _settle(self, client: _Client, now: float) -> None:
        encoder = client.encoder
        assert isinstance(encoder, FragmentPacker)
        if now < client.last_emit + client.buffer_timeout:
            return
        pending = self._downlink_pending
        if (
            self._bundling
            and now < client.first_buffered + self.config.bundle_hold
            and (client.uploading or (pending is not None and pending(client.ipv4, client.ipv6)))
        ):
            client.held = True
            return
        for bundle in encoder.flush():
            self._emit_bundle(client, bundle, now)

    def _flush_due(self, client: _Client) -> float:
        if client.held:
            return client.first_buffered + self.config.bundle_hold
        return client.last_emit + client.buffer_timeout

    def poll_deadline(self) -> float | None:
        deadlines = [self._flush_due(c) for c in self._clients.values() if c.encoder.buffered]
        deadlines += [
            a.requested_at + self.config.surb_rerequest_wait
            for a in self._accounts.values()
            if a.requested_at is not None
        ]
        if self._next_sweep is not None and self._clients:
            deadlines.append(self._next_sweep)
        return min(deadlines, default=None)

    def handle_timeout(self, now: float) -> None:
        for client in list(self._clients.values()):
            encoder = client.encoder
            if not encoder.buffered or now < self._flush_due(client):
                continue
            if isinstance(encoder, FragmentPacker):
                self._settle(client, now)
                continue
            bundle = encoder.flush()
            if bundle is not None:
                self._emit_bundle(client, bundle, now)
        if self._next_sweep is not None and now >= self._next_sweep:
            for client in list(self._clients.values()):
                if now - client.last_activity >= self.config.idle_timeout:
                    self._remove(client)  # silently, as upstream (its notice is a TODO)
                    self.stats["idle client removed"] += 1
                elif now - client.last_downlink >= self.config.handler_idle_timeout:
                    self._remove(client)  # its handler stopped for want of downlink traffic
                    self.stats["quiet client removed"] += 1
            for tag, account in list(self._accounts.items()):
                idle = now - account.last_seen >= self.config.idle_timeout
                if tag not in self._clients and idle and not account.queue:
                    del self._accounts[tag]
            while self._next_sweep <= now:
                self._next_sweep += self.config.sweep_interval
        for tag in list(self._accounts):
            self._pump(tag, now)
