"""The local network's exit IPR: a Nym client behind the exit gateway, `IprRouter`, and the NAT.

Upstream runs the IPR inside nym-node as its own Nym client (spec 6.1); so
does this one: a `MixnetClient` registered at the exit gateway receives the
clients' repliable messages, `IprRouter` (sans-io, byte-exact with the
published client) decides what they mean, and its replies go back through
the clients' reply SURBs. Allowed IP packets go into `ExitNat`; what the NAT
sends back is bundled by the router.

Two things the router does not see by itself, and this shell supplies:
- how many SURBs each message brought. The mixnet client stores them; the
  router and the client spend them in lock step (one per reply fragment,
  one per SURB request), so any surplus the client holds over the router's
  count is what arrived since, including AdditionalSurbs messages, which
  carry no data and so never reach `receive()`.
- the packet of a policy denial. The router answers it with the upstream
  Info (ExitPolicyFilterCheckFailed) and drops it; this shell also has the
  NAT answer it with ICMP "administratively prohibited", so the client's
  connect fails within one round trip.
- when a client is gone. The router forgets or replaces a client's addresses
  silently; the shell notices and has the NAT end that client's flows.
Faults for the mainnet-shaped network (`ExitIprOptions`): `silent` takes every
message and answers none, `v9_only` drops v10 requests as an exit whose
directory entry shows a v10 build but whose process speaks v9 (the client
retries as v9 after its v10 budget), `connect_delay` answers a new client only
after that many seconds (messages of senders not yet connected wait).
Reply fragments whose SURB-ACK does not come are resent by the mixnet client
through the next SURB, as upstream's reply controller does (nymtech/nym
common/client-core/src/client/replies/reply_controller: handle_reply_retransmission),
so downlink loss does not fall on TCP alone. The router counts SURBs, so the
shell debits it with every SURB a resend took (`_debit_resends`); the client
keeps `reply_retransmission_reserve` SURBs back for the router's SURB requests.
Control replies whose resends all failed are sent again by the shell.
Downlink packets are bundled across fragment boundaries (`RouterConfig.bundle_fragments`,
a departure from upstream's 1500-byte bundles that any client decodes): a partial
bundle waits only while the NAT holds unsent data for that client.
"""

from __future__ import annotations

import logging
import random
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from smolmix_cli.ipr.bundle import BundleDecoder, LossGate
from smolmix_cli.ipr.errors import IprError
from smolmix_cli.ipr.lp_frame import LpFrame, is_stream_frame
from smolmix_cli.ipr.messages import V10, DataRequest, IpPacketRequest
from smolmix_cli.ipr.router_logic import (
    TUN_IPV4,
    TUN_IPV6,
    IprRouter,
    ReplyToClient,
    RequestSurbs,
    RouterConfig,
    parse_packet,
)
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.client.client import ClientConfig, DeliveryFailed, MixnetClient
from smolmix_cli.mixnet.client.core import NoReplySurbs
from smolmix_cli.mixnet.client.key_store import KeyStore
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.message.fragment import number_of_required_fragments
from smolmix_cli.mixnet.message.message import MIN_PADDING_OVERHEAD, available_plaintext_per_packet
from smolmix_cli.mixnet.topology.topology import Topology
from smolmix_cli.testnet.exit.nat import AddressMap, ExitNat, NatConfig
from smolmix_cli.testnet.exit.policy import ExitPolicy

log = logging.getLogger(__name__)

IpAddress = IPv4Address | IPv6Address
SURB_SYNC_INTERVAL = 0.01  # how soon SURBs that came without data are noticed, when needed
IDLE_SYNC_INTERVAL = 0.5
CONTROL_RESENDS = 3  # a lost control reply is sent again at most this often
CONTROL_CONFIRM_TIMEOUT = 60.0
MAX_QUEUED_REPLIES = 4096  # downlink packets beyond this (waiting for SURBs) are dropped
REPLY_RESENDS = 4  # at 10 % loss per mix node a reply fragment arrives 99.8 % of the time
REPLY_RESEND_RESERVE = 5  # SURBs a resend leaves for the router's SURB requests
# The exit's least ack wait once acks were measured (the tunnel keeps MEASURED_ACK_FLOOR).
# At 0.5 s every lost reply fragment outlived the NAT's TCP RTO (0.2 s), so TCP saw the
# hole, collapsed its window to 2 segments and resent on top of the mixnet: 2 MiB at 10 %
# loss per mix node took 67-72 s against 20-21 s at 0.1 s (bench/loss.py, same run), for
# 68-142 spurious resends per 2 MiB at no loss (about 5 %, each one SURB).
EXIT_ACK_FLOOR = 0.1
# A reply fragment is resent once the ack of one sent 5 ms (or a quarter of the measured
# ack overhead) later came first, not a whole ack timeout later (CoreConfig's
# loss_detection_window). 10 MiB at 10 % loss: 36-40 s idle against 53 s (bench/loss.py).
EXIT_LOSS_DETECTION_WINDOW = 0.005
# Until acks were timed the wait is static (Nym: 1.5 s plus 1.5 x the mix delays), and it
# doubles per round of timeouts while no ack comes: a fresh exit whose first replies (a
# DNS answer, a SYN-ACK) were lost four times in a row sat 30 s on them at 10 % loss.
EXIT_STATIC_ACK_WAIT = 0.5
_REPLY_HEADER = 2  # a Reply NymMessage: type byte + content tag
# Reply bundles of up to 8 Sphinx packets: 9 full-size (1,420-byte) IP packets fill 8
# fragments, where one per message takes 9. More per bundle saves no more (18 in 16)
# and makes one lost fragment hold back more packets.
LOCAL_BUNDLE_FRAGMENTS = 8


def _is_control_reply(payload: bytes) -> bool:
    """The router sends inline control replies with LP seq 0, data with seq 1, 2, ..."""
    if not is_stream_frame(payload):
        return False
    try:
        return LpFrame.decode(payload).seq == 0
    except IprError:
        return False


def reply_surb_cost(payload_size: int) -> int:
    """Reply SURBs (= fragments) a reply of `payload_size` bytes takes."""
    per_packet = available_plaintext_per_packet()
    needed, _ = number_of_required_fragments(
        _REPLY_HEADER + payload_size + MIN_PADDING_OVERHEAD, per_packet
    )
    return needed


@dataclass(frozen=True)
class ExitIprOptions:
    policy: ExitPolicy = field(default_factory=ExitPolicy.default)
    address_map: AddressMap | None = None
    router: RouterConfig = field(
        default_factory=lambda: RouterConfig(bundle_fragments=LOCAL_BUNDLE_FRAGMENTS)
    )
    nat: NatConfig = field(default_factory=NatConfig)
    # Reply fragments are resent a few times (each resend spends a SURB, debited from the
    # router's count); past that TCP recovers, and control replies are sent again by the
    # shell (`_confirm_control`).
    client: ClientConfig = field(
        default_factory=lambda: ClientConfig.fast(
            keepalive_interval=None,
            max_retransmissions=REPLY_RESENDS,
            reply_retransmission_reserve=REPLY_RESEND_RESERVE,
            ack_wait_floor=EXIT_ACK_FLOOR,
            ack_wait_addition=EXIT_STATIC_ACK_WAIT,
            loss_detection_window=EXIT_LOSS_DETECTION_WINDOW,
        )
    )
    silent: bool = False
    v9_only: bool = False
    connect_delay: float = 0.0


def request_version(payload: bytes) -> int | None:
    """The IPR version byte of a request (inside its LP frame, if any); None if empty."""
    try:
        content = LpFrame.decode(payload).content if is_stream_frame(payload) else payload
    except IprError:
        return None
    return content[0] if content else None


class ExitIpr:
    """Start with `address = await tg.start(exit_ipr.serve)`; cancel the group to stop."""

    def __init__(
        self,
        topology: Topology,
        gateway: bytes,
        *,
        key_store: KeyStore | None = None,
        ssl_context: ssl.SSLContext | None = None,
        options: ExitIprOptions | None = None,
        rng: random.Random | None = None,
        topology_source: Callable[[], Awaitable[Topology]] | None = None,
    ) -> None:
        self.topology = topology
        # as any Nym client, refreshed (key rotations, reshuffles) when a source is given
        self.topology_source = topology_source
        self.gateway = gateway
        self.key_store = key_store if key_store is not None else KeyStore.ephemeral()
        self.ssl_context = ssl_context
        self.options = options if options is not None else ExitIprOptions()
        self.policy = self.options.policy
        self.router = IprRouter(
            rng,
            self.options.router,
            allow_destination=self._allowed,
            reply_surb_cost=reply_surb_cost,
            downlink_pending=lambda ipv4, ipv6: self.nat.has_unsent((ipv4, ipv6)),
        )
        self.nat = ExitNat(
            self._on_downlink, address_map=self.options.address_map, config=self.options.nat
        )
        self.counters: Counter[str] = Counter()
        self.address: Recipient | None = None
        self._client: MixnetClient | None = None
        self._wake = anyio.Event()
        self._denied = False
        self._tags: set[bytes] = set()
        self._addresses: dict[bytes, tuple[IPv4Address, IPv6Address]] = {}
        self._downlink_count = 0
        self._tg: anyio.abc.TaskGroup | None = None
        self._queued = 0  # replies waiting for SURBs, recounted every 64 downlink packets
        # Below 90 % of reply fragments acked no bundle crosses a fragment: at 10 % loss
        # per mix node 2 MiB took 6.2x the lossless time with bundles against 2.9x
        # without (bench/loss.py, same run), each lost fragment holding back 9 packets.
        self._bundle_gate = LossGate()

    # --- lifecycle --------------------------------------------------------------------------

    async def serve(
        self, *, task_status: TaskStatus[Recipient] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        async with MixnetClient.start(
            self.topology,
            gateway=self.gateway,
            key_store=self.key_store,
            ssl_context=self.ssl_context,
            config=self.options.client,
            topology_source=self.topology_source,
        ) as client:
            self._client = client
            self.address = client.address
            try:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    await tg.start(self.nat.run)
                    tg.start_soon(self._receive_loop, client)
                    tg.start_soon(self._drive, client)
                    task_status.started(client.address)
            finally:
                self._client = None
                self._tg = None

    @property
    def mixnet_client(self) -> MixnetClient | None:
        """The IPR's own Nym client while it runs."""
        return self._client

    def stats(self) -> dict[str, int]:
        out = {f"ipr_{k}": int(v) for k, v in self.router.stats.items()}
        out.update({f"exit_{k}": int(v) for k, v in self.counters.items()})
        out.update(self.nat.stats())
        return out

    # --- from the mixnet ----------------------------------------------------------------------

    async def _receive_loop(self, client: MixnetClient) -> None:
        while True:
            message = await client.receive()
            now = anyio.current_time()
            tag = message.sender_tag
            if tag is None:
                self.router.on_message(None, message.data, 0, now)
                continue
            if self._faulty_drop(message.data):
                continue
            if self.options.connect_delay > 0 and self.router.client_addresses(tag) is None:
                if self._tg is not None:
                    self._tg.start_soon(self._late, client, tag, message.data)
                continue
            await self._handle_now(client, tag, message.data, now)

    def _faulty_drop(self, payload: bytes) -> bool:
        if self.options.silent:
            self.counters["dropped (silent)"] += 1
            return True
        if self.options.v9_only and (request_version(payload) or 0) >= V10:
            self.counters["dropped (v10 request, speaks v9)"] += 1
            return True
        return False

    async def _late(self, client: MixnetClient, tag: bytes, data: bytes) -> None:
        self.counters["delayed (slow)"] += 1
        await anyio.sleep(self.options.connect_delay)
        await self._handle_now(client, tag, data, anyio.current_time())

    async def _handle_now(self, client: MixnetClient, tag: bytes, data: bytes, now: float) -> None:
        self._tags.add(tag)
        try:
            self._handle(client, tag, data, now)
        except Exception:  # a bug here must not take the whole local network down
            log.exception("exit IPR failed on a message")
            self.counters["internal error"] += 1
        self.router.settle(now)
        await self._transmit(client)

    def _observe_delivery(self, client: MixnetClient) -> None:
        """Bundle across fragments only while nearly every reply fragment is acked."""
        self._bundle_gate.observe(client.ack_counts[1], client.unacked_count)
        self.router.set_bundling(self._bundle_gate.open)

    def _handle(self, client: MixnetClient, tag: bytes, data: bytes, now: float) -> None:
        self._debit_resends(client, now)
        self._observe_delivery(client)
        held, known = client.reply_surbs_available(tag), self.router.surbs_available(tag)
        if held < known:  # the client's store is bounded: it dropped some of the oldest
            self.router.on_surbs_dropped(tag, known - held)
        fresh = max(0, held - known)
        self._denied = False
        self.router.on_message(tag, data, fresh, now)
        self._note_addresses(tag)
        if self._denied:
            self._reject_denied(tag, data)
        for packet in self.router.pop_uplink():
            self.nat.feed(packet)

    def _note_addresses(self, tag: bytes) -> None:
        """When the router drops or replaces a client's addresses, the NAT drops its flows."""
        current = self.router.client_addresses(tag)
        previous = self._addresses.get(tag)
        if previous is not None and previous != current:
            self.nat.forget(previous)
        if current is None:
            self._addresses.pop(tag, None)
        else:
            self._addresses[tag] = current

    def _allowed(self, destination: IpAddress, port: int) -> bool:
        if destination in (TUN_IPV4, TUN_IPV6):
            return True  # the exit itself: the stack answers (echo, RST, port unreachable)
        if self.policy.allows(destination, port):
            return True
        self._denied = True
        return False

    def _reject_denied(self, tag: bytes, payload: bytes) -> None:
        """Find the packets the router refused for policy and answer each with ICMP."""
        try:
            content = LpFrame.decode(payload).content if is_stream_frame(payload) else payload
            body = IpPacketRequest.decode(content).body
        except IprError:
            return
        if not isinstance(body, DataRequest):
            return
        owned = self.router.client_addresses(tag)
        if owned is None:
            return
        for packet in BundleDecoder().feed(body.ip_packets):
            try:
                info = parse_packet(packet)
            except IprError:
                continue
            if info.source not in owned or info.destination in (TUN_IPV4, TUN_IPV6):
                continue
            if not self.policy.allows(info.destination, info.destination_port):
                self.nat.reject(packet)

    # --- to the mixnet ------------------------------------------------------------------------

    def _on_downlink(self, packet: bytes) -> None:
        self._downlink_count += 1
        if self._downlink_count % 64 == 0:
            self._queued = sum(self.router.queued_replies(tag) for tag in self._tags)
        if self._queued >= MAX_QUEUED_REPLIES:
            # Replies wait for SURBs that do not come: drop as a full TUN queue would
            # (TCP backs off; a UDP flood cannot grow the exit's memory).
            self.counters["downlink dropped (reply queue full)"] += 1
            return
        self.router.on_downlink(packet, anyio.current_time())
        self._wake.set()

    async def _transmit(self, client: MixnetClient) -> None:
        for transmit in self.router.pop_transmits():
            try:
                if isinstance(transmit, ReplyToClient):
                    message_id = await client.send_reply(transmit.sender_tag, transmit.payload)
                    self.counters["replies sent"] += 1
                    if self._tg is not None and _is_control_reply(transmit.payload):
                        self._tg.start_soon(self._confirm_control, client, transmit, message_id)
                elif isinstance(transmit, RequestSurbs):
                    await client.request_reply_surbs(transmit.sender_tag, transmit.amount)
                    self.counters["surb requests sent"] += 1
            except NoReplySurbs:
                self.counters["reply dropped (no surbs)"] += 1
            except MixnetError as exc:
                self.counters["reply failed"] += 1
                log.debug("exit IPR reply failed: %s", exc)

    async def _confirm_control(
        self, client: MixnetClient, reply: ReplyToClient, message_id: int
    ) -> None:
        """Resend a lost control reply (ConnectSuccess, Pong, Info...), as upstream does.

        Each resend spends SURBs the router did not count; its reserve of 10 absorbs
        the few this costs, and they are rare (control replies only)."""
        for _ in range(CONTROL_RESENDS):
            try:
                await client.wait_delivered(message_id, timeout=CONTROL_CONFIRM_TIMEOUT)
                return
            except DeliveryFailed:
                pass
            except (TimeoutError, MixnetError):
                return
            try:
                message_id = await client.send_reply(reply.sender_tag, reply.payload)
            except MixnetError:
                return
            self.counters["control reply resent"] += 1

    def _debit_resends(self, client: MixnetClient, now: float) -> None:
        """Debit the router with the SURBs resent reply fragments took since last time."""
        for tag, count in client.take_reply_retransmission_surbs().items():
            self.router.on_surbs_spent(tag, count, now)

    def _sync_surbs(self, client: MixnetClient, now: float) -> None:
        """Credit the router with SURBs that arrived in messages without data."""
        self._debit_resends(client, now)
        for tag in list(self._tags):
            held = client.reply_surbs_available(tag)
            known = self.router.surbs_available(tag)
            if held > known:
                self.router.on_additional_surbs(tag, held - known, now)
            elif held < known:
                self.router.on_surbs_dropped(tag, known - held)
            elif self.router.client_addresses(tag) is None and not self.router.queued_replies(tag):
                self._tags.discard(tag)  # a later message from it is credited all it holds

    async def _drive(self, client: MixnetClient) -> None:
        """The router's clock (bundle flushes, sweeps, SURB re-requests) and its output."""
        while True:
            now = anyio.current_time()
            deadline = self.router.poll_deadline()
            if deadline is not None and deadline <= now:
                self.router.handle_timeout(now)
                for tag in list(self._addresses):
                    self._note_addresses(tag)  # the sweep forgets idle clients
            self._sync_surbs(client, now)
            self.router.settle(now)
            await self._transmit(client)
            deadline = self.router.poll_deadline()
            if any(self.router.queued_replies(tag) for tag in self._tags):
                wait = SURB_SYNC_INTERVAL  # replies wait for SURBs: notice them soon
            else:
                wait = IDLE_SYNC_INTERVAL
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - anyio.current_time()))
            self._wake = anyio.Event()
            with anyio.move_on_after(wait):
                await self._wake.wait()
