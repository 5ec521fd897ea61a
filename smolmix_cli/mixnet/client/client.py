"""`MixnetClient`: a Nym client in one `async with` — keys, gateway, traffic, acks.

The thin anyio shell that ties the pieces together: the caller's Topology, a
gateway (given, remembered from last time, or the best performing one),
keys from a `KeyStore`, a `GatewayClient` for the WebSocket and a `ClientCore`
for everything sans-io. One driver task runs the core's clock: it resends
overdue fragments, moves due packets to the gateway and sleeps until the core's
next deadline or until something new arrives.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.abc
import anyio.lowlevel
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.error_words import failure_words
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.client.core import (
    ClientCore,
    ClientError,
    CoreConfig,
    MessageDelivered,
    MessageFailed,
    NoReplySurbs,
    ReceivedMessage,
)
from smolmix_cli.mixnet.client.key_store import KeyStore
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.gateway.client import (
    GatewayClient,
    GatewayUnavailable,
    unwrap_single_exception,
)
from smolmix_cli.mixnet.gateway.session_events import CredentialsRequired
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from smolmix_cli.mixnet.message.preparer import MessagePreparer
from smolmix_cli.mixnet.message.receiver import MessageReceiver
from smolmix_cli.mixnet.packet.size import PacketSize
from smolmix_cli.mixnet.topology.topology import Node, NoUsableRoute, Topology
from smolmix_cli.wakeup import Signal
from smolmix_cli.websocket import WebSocketError

log = logging.getLogger(__name__)

__all__ = [
    "ClientClosed",
    "ClientConfig",
    "ClientError",
    "ClientStats",
    "DeliveryFailed",
    "GatewayUnavailable",
    "MixnetClient",
    "NoReplySurbs",
    "NoUsableRoute",
    "ReceivedMessage",
    "choose_gateway",
    "gateway_candidates",
    "gateway_url",
    "gateway_urls",
]

_OUTCOMES_KEPT = 10_000

HANDSHAKE_TIMEOUT = 15.0  # register or authenticate, once the WebSocket is up

MAX_GATEWAY_CANDIDATES = 10
"""Gateways tried before giving up. Upstream bounds its entry rotation at 3
(nymtech/nym openspec/changes/add-entry-gateway-rotation/design.md), but with
~40 % of mainnet's entry gateways dead or refusing free bandwidth 3 fail
0.4**3 = 6 % of cold boots; 10 fail 0.4**10 = 1e-4. Most dead gateways fail
fast (refused, TLS, zk-nym refusal, closed); GATEWAY_ATTEMPT_TIMEOUT bounds
the ones that do not (five of them fit in GATEWAY_BUDGET)."""

GATEWAY_BUDGET = 30.0
"""Seconds `start` may spend on all gateways together: the gateway phase of the
tunnel's boot budget (smolmix_cli/options.py DEFAULT_BOOT_TIMEOUT), which also
holds the directory reads and the exit walk."""

GATEWAY_ATTEMPT_TIMEOUT = 6.0
"""Seconds one gateway may take on all its URLs (connect and handshake), so a
black-holed gateway costs one short attempt, not the whole GATEWAY_BUDGET. A
live gateway answers well inside it: TLS plus the registration handshake are a
few round trips, under two seconds even across continents."""


class DeliveryFailed(ClientError):
    """A message was given up on (no ack after the retransmission limit)."""


class ClientClosed(ClientError):
    """The client was closed (or lost its gateway for good)."""


@dataclass(frozen=True)
class ClientConfig(CoreConfig):
    """The core's settings plus the shell's; delays in seconds (zero allowed), defaults as
    Nym's client (spec 2.10). A ClientConfig is the CoreConfig its core runs with."""

    average_packet_delay: float = 0.015
    average_ack_delay: float = 0.015
    packet_size: PacketSize = PacketSize.REGULAR
    connect_timeout: float = 10.0
    reconnect_max_delay: float = 30.0
    max_reconnect_attempts: int | None = None
    keepalive_interval: float | None = 30.0
    reauthenticate_after_register: bool = False
    topology_refresh_interval: float = 300.0
    """Seconds between calls of `start(topology_source=...)` (Nym refreshes every 5 min)."""
    gateway_attempts: int = MAX_GATEWAY_CANDIDATES
    """Gateways `start` tries (each on all its URLs) before it gives up."""
    gateway_budget: float = GATEWAY_BUDGET
    """Seconds `start` may spend on all of them together (the boot has other phases)."""
    gateway_attempt_timeout: float = GATEWAY_ATTEMPT_TIMEOUT
    """Seconds one gateway may take, on all its URLs together."""

    @classmethod
    def fast(cls, **overrides: object) -> ClientConfig:
        """No traffic shaping, no cover, no mix delays: for tests and the local network."""
        values: dict[str, object] = {
            "poisson": False,
            "cover": False,
            "poisson_cover": False,
            "average_packet_delay": 0.0,
            "average_ack_delay": 0.0,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of what the client has done."""

    packets_sent: int
    real_packets_sent: int
    cover_packets_sent: int
    retransmissions: int
    reply_retransmissions: int
    acks_received: int
    packets_received: int
    cover_received: int
    messages_sent: int
    messages_delivered: int
    messages_failed: int
    messages_received: int
    reply_surbs_received: int
    reply_surbs_dropped: int
    surb_requests_sent: int
    surb_requests_served: int
    reply_surbs_served: int
    dropped_pushes: int
    nodes_avoided: int
    gateway_connects: int
    gateway_connection_losses: int
    bandwidth_remaining: int


def gateway_urls(node: Node) -> list[str]:
    """Every way to reach the gateway, in the order tried: wss by hostname, ws by
    hostname, then ws by each announced IP (spec 3.1).

    The IP fallback follows upstream's `ws_entry_address_with_fallback`
    (nymtech/nym common/topology/src/node.rs, #6249): a hostname whose DNS or
    TLS is broken need not make the gateway unusable.
    """
    entry = node.entry
    if entry is None:
        raise NoUsableRoute(f"gateway {node.identity.hex()} announces no client WebSocket")
    urls: list[str] = []
    if entry.hostname and entry.wss_port:
        urls.append(f"wss://{_host(entry.hostname)}:{entry.wss_port}/")
    hosts = [entry.hostname] if entry.hostname else []
    hosts += [str(ip) for ip in node.ip_addresses]
    for host in hosts:
        url = f"ws://{_host(host)}:{entry.ws_port}/"
        if url not in urls:
            urls.append(url)
    return urls


def gateway_url(node: Node) -> str:
    """The first of `gateway_urls`."""
    return gateway_urls(node)[0]


def gateway_candidates(
    topology: Topology,
    explicit: bytes | None = None,
    remembered: bytes | None = None,
    rng: random.Random | None = None,
    limit: int = MAX_GATEWAY_CANDIDATES,
) -> list[Node]:
    """The gateways to try, in order: the named one alone, else the remembered one (if
    still listed) first, then a performance-weighted random order; at most `limit`.

    Low performers are already gone from a Topology built by `from_directory`
    (spec 4.3: performance >= 50), and nodes that also declare the mixnode role
    are avoided. Random rather than "the best" spreads clients as Nym's own
    clients do, and keeps one bad top node from failing every run alike.
    """
    if explicit is not None:
        node = topology.node_by_identity(explicit)
        if node.entry is None:
            raise NoUsableRoute(f"node {explicit.hex()} is not a gateway clients can connect to")
        return [node]
    reachable = [n for n in topology.gateways() if n.entry is not None]
    if not reachable:
        raise NoUsableRoute("the topology lists no gateway with a client WebSocket")
    # Spec 4.3: skip gateways that also declare the mixnode role (unless that is all).
    candidates = [n for n in reachable if not n.supported_roles.mixnode] or reachable
    ordered = weighted_order(candidates, rng or random.SystemRandom())
    if remembered is not None:
        sticky = [n for n in ordered if n.identity == remembered]
        ordered = sticky + [n for n in ordered if n.identity != remembered]
    return ordered[: max(1, limit)]


def choose_gateway(
    topology: Topology,
    explicit: bytes | None = None,
    remembered: bytes | None = None,
    rng: random.Random | None = None,
) -> Node:
    """The first of `gateway_candidates`: named, remembered, else a weighted random draw."""
    return gateway_candidates(topology, explicit, remembered, rng, limit=1)[0]


def weighted_order(nodes: list[Node], rng: random.Random) -> list[Node]:
    """A random order where a node's chance to come first is proportional to its
    performance (Efraimidis-Spirakis: sort by u ** (1 / weight))."""

    def key(node: Node) -> float:
        weight = max(float(node.performance), 1e-6)
        return float(rng.random() ** (1.0 / weight))

    keyed = [(key(n), i, n) for i, n in enumerate(nodes)]
    keyed.sort(key=lambda item: (-item[0], item[1]))
    return [n for _k, _i, n in keyed]


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class MixnetClient:
    """A running client; create it with `MixnetClient.start(...)`."""

    def __init__(
        self, core: ClientCore, gateway_node: Node, key_store: KeyStore, config: ClientConfig
    ) -> None:
        self._core = core
        self.gateway = gateway_node
        self.key_store = key_store
        self.config = config
        self._gateway_client: GatewayClient | None = None
        self._wake = Signal()
        self._sent = Signal()
        self._inbox: deque[ReceivedMessage] = deque()
        self._inbox_signal = Signal()
        self._outcomes: OrderedDict[int, MessageDelivered | MessageFailed] = OrderedDict()
        self._outcome_signal = Signal()
        self._failure: BaseException | None = None
        self._closed = False
        self._gateway_down_since: float | None = None
        self.gateways_tried: list[tuple[str, str]] = []
        """(gateway and URL, why it was skipped or "connected"), in the order tried."""
        self.topology_refreshes = 0
        self.topology_refresh_failures = 0
        self.last_topology_error = ""
        self._now = _clock()

    # -- lifecycle ----------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def start(
        cls,
        topology: Topology,
        *,
        gateway: bytes | None = None,
        key_store: KeyStore | None = None,
        ssl_context: ssl.SSLContext | None = None,
        gateway_url: str | None = None,
        config: ClientConfig | None = None,
        rng: random.Random | None = None,
        topology_source: Callable[[], Awaitable[Topology]] | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> AsyncIterator[MixnetClient]:
        """Connect to a gateway (registering on first use) and run until the block ends.

        Gateways are tried as `gateway_candidates` orders them, each on every URL
        of `gateway_urls` while the failure is the transport's; a gateway that
        answered and refused us (e.g. CredentialsRequired) is left at once. At most
        `config.gateway_attempts` gateways within `config.gateway_budget` seconds, each
        within `config.gateway_attempt_timeout` (an explicit gateway gets the whole
        budget); `on_phase` hears each attempt, `gateways_tried` keeps them.

        `topology_source` (e.g. a nym-api fetch) is called every
        `config.topology_refresh_interval` seconds, and sooner just after a key
        rotation the topology predicts (`Topology.refresh_delay`); a failing call
        or a topology without our gateway keeps the previous one.
        """
        config = config if config is not None else ClientConfig()
        store = key_store if key_store is not None else KeyStore.ephemeral()
        report = on_phase if on_phase is not None else (lambda _text: None)
        nodes = gateway_candidates(
            topology, gateway, store.active_gateway, rng, limit=config.gateway_attempts
        )
        if gateway_url is not None:  # an explicit URL is one gateway's
            attempts = [(nodes[0], [gateway_url])]
        else:
            attempts = [(node, gateway_urls(node)) for node in nodes]
        tried: list[tuple[str, str]] = []
        last_error: GatewayUnavailable | None = None
        deadline = anyio.current_time() + config.gateway_budget
        with unwrap_single_exception():
            async with AsyncExitStack() as stack:
                client: MixnetClient | None = None
                # One gateway alone (named, or the only one listed) gets the whole budget.
                each = config.gateway_budget if len(attempts) == 1 else None
                for node, urls in attempts:
                    if deadline <= anyio.current_time() and tried:
                        break
                    ends = min(
                        deadline, anyio.current_time() + (each or config.gateway_attempt_timeout)
                    )
                    for url in urls:
                        remaining = ends - anyio.current_time()
                        if remaining <= 0 and tried:
                            break
                        name = f"{b58encode(node.identity)} at {url}"
                        skipped = f" (skipped {tried[-1][0]}: {tried[-1][1]})" if tried else ""
                        report(f"connecting to gateway {name}{skipped}")
                        try:
                            client = await cls._connect(
                                stack,
                                topology,
                                node,
                                url,
                                store,
                                ssl_context,
                                config,
                                rng,
                                max(1.0, remaining),
                            )
                        except GatewayUnavailable as exc:
                            last_error = exc
                            reason, next_url = _skip_reason(exc)
                            tried.append((name, reason))
                            log.info("gateway %s skipped: %s", name, reason)
                            if next_url:
                                continue
                            break
                        tried.append((name, "connected"))
                        break
                    if client is not None:
                        break
                if client is None:
                    if len(tried) == 1 and last_error is not None:
                        raise last_error
                    raise GatewayUnavailable(
                        "no usable gateway: " + "; ".join(f"{n}: {r}" for n, r in tried)
                    ) from last_error
                client.gateways_tried = tried
                store.set_active_gateway(client.gateway.identity)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client._drive)
                    if topology_source is not None:
                        tg.start_soon(client._refresh_topology, topology_source, topology)
                    try:
                        yield client
                    finally:
                        client._closed = True
                        client._wake_all()
                        tg.cancel_scope.cancel()

    @classmethod
    async def _connect(
        cls,
        stack: AsyncExitStack,
        topology: Topology,
        node: Node,
        url: str,
        store: KeyStore,
        ssl_context: ssl.SSLContext | None,
        config: ClientConfig,
        rng: random.Random | None,
        budget: float,
    ) -> MixnetClient:
        """A client on this gateway at this URL (its connection kept open by `stack`)."""
        keys = store.client_keys()
        address = Recipient(keys.identity.public_bytes, keys.encryption.public_bytes, node.identity)
        preparer = MessagePreparer(
            address,
            keys.ack_key,
            rng=rng,
            average_packet_delay_ns=_ns(config.average_packet_delay),
            average_ack_delay_ns=_ns(config.average_ack_delay),
            packet_size=config.packet_size,
        )
        receiver = MessageReceiver(keys.encryption.private_bytes, keys.ack_key)
        core = ClientCore(
            preparer,
            receiver,
            topology,
            config=config,
            rng=rng,
            now=anyio.current_time(),
        )
        client = cls(core, node, store, config)

        def remember_key(key: SharedKey | None) -> None:
            store.set_gateway_key(node.identity, key)

        with unwrap_single_exception():
            client._gateway_client = await stack.enter_async_context(
                GatewayClient.connect(
                    url,
                    Ed25519PrivateKey.from_private_bytes(keys.identity.private_bytes),
                    node.identity,
                    on_push=client._on_push,
                    shared_key=store.gateway_key(node.identity),
                    on_shared_key=remember_key,
                    on_connection_change=client._on_connection_change,
                    ssl_context=ssl_context,
                    connect_timeout=min(config.connect_timeout, budget),
                    handshake_timeout=min(HANDSHAKE_TIMEOUT, budget),
                    reconnect_max_delay=config.reconnect_max_delay,
                    max_reconnect_attempts=config.max_reconnect_attempts,
                    keepalive_interval=config.keepalive_interval,
                    reauthenticate_after_register=config.reauthenticate_after_register,
                )
            )
        return client

    async def aclose(self) -> None:
        """Stop sending and disconnect (also done when the `async with` block ends)."""
        self._closed = True
        self._wake_all()
        if self._gateway_client is not None:
            await self._gateway_client.aclose()

    # -- the application side -----------------------------------------------------------

    @property
    def address(self) -> Recipient:
        return self._core.address

    @property
    def queued_packets(self) -> int:
        """Real packets waiting for their slot (Poisson pacing) or for the gateway."""
        return self._core.queued

    async def wait_queue_empty(self) -> None:
        """Until no real packet waits for its slot any more, SURBs for peers apart
        (they take turns with what is sent next, `ClientCore._bulk`).

        With Poisson pacing a sender that holds its data until then fills each slot
        with what is newest (the tunnel coalesces TCP ACKs that way) instead of
        queueing one message per packet behind the slots."""
        while self._core.queued_ahead:
            self._check_open()
            await self._sent.wait()

    @property
    def fragments_awaiting_ack(self) -> int:
        """Real fragments sent or queued whose SURB-ACK has not come back yet."""
        return self._core.pending_acks

    async def send(
        self,
        recipient: Recipient,
        data: bytes,
        *,
        reply_surbs: int = 0,
        retransmit: bool = True,
        repliable: bool = False,
    ) -> int:
        """Queue `data` for `recipient`; returns the id `wait_delivered` takes.

        `retransmit=False`: each fragment goes once (its ack still feeds the timeout).
        """
        self._check_open()
        message_id = self._core.send_message(
            recipient,
            data,
            reply_surbs=reply_surbs,
            retransmit=retransmit,
            repliable=repliable,
            now=self._now(),
        )
        self._wake.set()
        return message_id

    async def send_reply(self, sender_tag: bytes, data: bytes) -> int:
        """Answer an anonymous sender through the reply SURBs it sent (NoReplySurbs if too few)."""
        self._check_open()
        message_id = self._core.send_reply(sender_tag, data, now=self._now())
        self._wake.set()
        return message_id

    @property
    def ack_counts(self) -> tuple[int, int]:
        """Real fragments sent and acks received so far, without a whole stats snapshot
        (the tunnel reads them on every reply)."""
        core = self._core.stats
        return core.real_packets_sent, core.acks_received

    @property
    def unacked_count(self) -> int:
        """Fragments whose ack did not come in time so far: resent, or given up on (those
        sent once, such as lone TCP ACKs)."""
        core = self._core.stats
        return core.retransmissions + core.sent_once_unacked

    @property
    def reply_surbs_served(self) -> int:
        """SURBs sent so far in answer to peers' SURB requests."""
        return self._core.stats.reply_surbs_served

    def reply_surbs_available(self, sender_tag: bytes) -> int:
        return self._core.reply_surbs_available(sender_tag)

    def take_reply_retransmission_surbs(self) -> dict[bytes, int]:
        """SURBs spent on resent reply fragments since the last call, per sender tag."""
        return self._core.take_reply_retransmission_surbs()

    async def request_reply_surbs(self, sender_tag: bytes, amount: int) -> int:
        """Ask the anonymous sender for `amount` more SURBs (spends one SURB)."""
        self._check_open()
        message_id = self._core.request_reply_surbs(sender_tag, amount, now=self._now())
        self._wake.set()
        return message_id

    async def receive(self, *, timeout: float | None = None) -> ReceivedMessage:
        """The next whole message that arrived (TimeoutError after `timeout` seconds)."""
        if timeout is None:  # no cancel scope per message when nothing bounds the wait
            await self._wait_inbox()
        else:
            with anyio.fail_after(timeout):
                await self._wait_inbox()
        return self._inbox.popleft()

    async def _wait_inbox(self) -> None:
        while not self._inbox:
            self._check_open()
            await self._inbox_signal.wait()

    async def wait_delivered(self, message_id: int, *, timeout: float | None = None) -> None:
        """Return once every fragment of the message was acknowledged; DeliveryFailed if not."""
        with anyio.fail_after(timeout):
            while message_id not in self._outcomes:
                self._check_open()
                await self._outcome_signal.wait()
        outcome = self._outcomes[message_id]
        if isinstance(outcome, MessageFailed):
            raise DeliveryFailed(f"message {message_id}: {outcome.reason}")

    def gateway_down_for(self) -> float:
        """Seconds since the gateway connection dropped (0 while connected)."""
        since = self._gateway_down_since
        return 0.0 if since is None else anyio.current_time() - since

    @property
    def gateway_last_error(self) -> str:
        gateway = self._gateway_client
        return gateway.stats.last_error if gateway is not None else ""

    @property
    def gateway_protocol_version(self) -> int | None:
        """The gateway protocol version negotiated at registration or login (`smolmix doctor`)."""
        gateway = self._gateway_client
        version = gateway.stats.protocol_version if gateway is not None else 0
        return version or None

    def set_topology(self, topology: Topology) -> None:
        self._core.set_topology(topology)

    @property
    def stats(self) -> ClientStats:
        core = self._core.stats
        gateway = self._gateway_client.stats if self._gateway_client is not None else None
        return ClientStats(
            packets_sent=core.packets_sent,
            real_packets_sent=core.real_packets_sent,
            cover_packets_sent=core.cover_packets_sent,
            retransmissions=core.retransmissions,
            reply_retransmissions=core.reply_retransmissions,
            acks_received=core.acks_received,
            packets_received=core.packets_received,
            cover_received=core.cover_received,
            messages_sent=core.messages_sent,
            messages_delivered=core.messages_delivered,
            messages_failed=core.messages_failed,
            messages_received=core.messages_received,
            reply_surbs_received=core.reply_surbs_received,
            reply_surbs_dropped=core.reply_surbs_dropped,
            surb_requests_sent=core.surb_requests_sent,
            surb_requests_served=core.surb_requests_served,
            reply_surbs_served=core.reply_surbs_served,
            dropped_pushes=core.dropped_pushes,
            nodes_avoided=core.nodes_avoided,
            gateway_connects=gateway.connects if gateway else 0,
            gateway_connection_losses=gateway.connection_losses if gateway else 0,
            bandwidth_remaining=gateway.bandwidth_remaining if gateway else 0,
        )

    # -- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._failure is not None:
            raise ClientClosed(f"mixnet client stopped: {self._failure}") from self._failure
        if self._closed:
            raise ClientClosed("mixnet client is closed")

    def _wake_all(self) -> None:
        self._wake.set()
        self._sent.set()
        self._inbox_signal.set()
        self._outcome_signal.set()

    def _on_connection_change(self, up: bool) -> None:
        if up:
            self._gateway_down_since = None
        elif self._gateway_down_since is None:
            self._gateway_down_since = anyio.current_time()
        self._wake.set()

    def _on_push(self, message: bytes) -> None:
        self._core.handle_push(message, self._now())
        self._dispatch()
        self._wake.set()  # an ack may have changed the deadlines

    def _dispatch(self) -> None:
        while (event := self._core.poll_event()) is not None:
            if isinstance(event, ReceivedMessage):
                self._inbox.append(event)
                self._inbox_signal.set()
            else:
                self._outcomes[event.message_id] = event
                while len(self._outcomes) > _OUTCOMES_KEPT:
                    self._outcomes.popitem(last=False)
                self._outcome_signal.set()

    async def _refresh_topology(
        self, source: Callable[[], Awaitable[Topology]], current: Topology
    ) -> None:
        while True:
            await anyio.sleep(
                current.refresh_delay(self.config.topology_refresh_interval, time.time())
            )
            try:
                topology = await source()
                topology.node_by_identity(self.gateway.identity)
                if not topology.is_usable:
                    raise NoUsableRoute("refreshed topology has an empty layer or no gateway")
            except (MixnetError, OSError) as exc:
                self.topology_refresh_failures += 1
                self.last_topology_error = failure_words(exc)
                continue
            self._core.set_topology(topology)
            current = topology
            self.topology_refreshes += 1

    async def _drive(self) -> None:
        gateway = self._gateway_client
        assert gateway is not None
        core = self._core
        try:
            while not self._closed:
                if not gateway.connected:
                    # Nothing leaves and no ack clock runs while the gateway is away.
                    core.suspend(anyio.current_time())
                    await gateway.wait_connected()
                    core.resume(anyio.current_time())
                    continue
                now = self._now
                core.handle_timeout(now())
                # A fresh clock per packet: its ack timer must start when it really
                # leaves, not when the loop began (sends can wait on a full outbox).
                while (packet := core.poll_transmit(now())) is not None:
                    await gateway.send_mix_packet(packet)
                    self._sent.set()
                    # Building packets is CPU work: let pushes (acks) and the socket run.
                    await anyio.lowlevel.checkpoint()
                self._dispatch()
                deadline = core.poll_deadline()
                wait = math.inf if deadline is None else deadline - now()
                if wait > 0:
                    with anyio.move_on_after(wait):
                        await self._wake.wait()
                else:
                    await anyio.lowlevel.checkpoint()  # e.g. zero-mean cover: stay fair
        except GatewayUnavailable as exc:
            self._failure = exc
            self._wake_all()


def _clock() -> Callable[[], float]:
    """`anyio.current_time` without its backend lookup per call: on asyncio it is the
    running loop's own clock, read a few times for every packet."""
    try:
        return asyncio.get_running_loop().time
    except RuntimeError:  # another backend (trio), or no loop yet
        return anyio.current_time


def _skip_reason(exc: GatewayUnavailable) -> tuple[str, bool]:
    """Why a gateway URL failed, and whether another URL of the same gateway may help
    (only when the transport failed; a gateway that spoke to us will not change its mind)."""
    cause = exc.__cause__
    if isinstance(cause, CredentialsRequired):
        return "it only accepts zk-nym credentials (no free bandwidth)", False
    if cause is None:
        return str(exc), False
    return failure_words(cause), isinstance(cause, WebSocketError | OSError)


def _ns(seconds: float) -> int:
    if seconds < 0:
        raise ClientError("delays must not be negative")
    return round(seconds * 1_000_000_000)
