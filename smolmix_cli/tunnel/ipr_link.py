"""The anyio shell around `IprClient`: one IPR session over a running `MixnetClient`.

The link owns no socket: the tunnel's dispatcher hands it every reply payload
(`on_reply`), one driver task runs the client's clock and one pump task moves
the stack's outgoing packets into Data messages (no task per packet). Incoming
IP packets go to the `IprDevice`, the stack runner's packet device.

SURB requests from the exit are answered by the mixnet client itself (it serves
requests from peers it sent repliable messages to; the link tells `IprClient` how
many it sent, for its estimate of the exit's stock); Data messages carry the SURBs
`IprClient` sizes for them (see `ClientConfig.surb_sizing`).

The pump packs the stack's packets into bundles of whole Sphinx packets
(`ClientConfig.bundle_fragments`). A partial bundle of data segments waits, at most
`bundle_hold`, only while a TCP connection of the stack holds unsent data (its windows
are full: more segments follow the next ACK); anything else leaves at once, so request
and response latency is unchanged.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address, ip_address

import anyio
import anyio.abc
import anyio.lowlevel

from smolmix_cli.ipr.bundle import BULK_PACKET
from smolmix_cli.ipr.client_logic import (
    ClientConfig,
    ClientState,
    Connected,
    ConnectFailed,
    InfoReceived,
    IprClient,
    KeepaliveDue,
    MessageSizes,
    PacketsReceived,
    ReconnectNeeded,
    SendAdditionalSurbs,
    SendToIpr,
    version_for_exit,
)
from smolmix_cli.ipr.lp_frame import HEADER_SIZE
from smolmix_cli.ipr.messages import InfoKind
from smolmix_cli.mixnet.client.client import MixnetClient
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.message.preparer import fragments_needed, reply_fragments, surbs_that_fit
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.tunnel.errors import IprHandshakeFailed, TunnelClosed
from smolmix_cli.tunnel.exits import ExitCandidate
from smolmix_cli.tunnel.uplink_acks import coalesce_lone_acks
from smolmix_cli.wakeup import Signal

IpAddress = IPv4Address | IPv6Address
DEVICE_QUEUE = 512  # uplink packets held before the stack is back-pressured
WINDOW_POLL = 0.005


class IprDevice:
    """The stack's point-to-point interface whose far end is the exit IPR."""

    def __init__(self, max_queue: int = DEVICE_QUEUE, *, coalesce_acks: bool = True) -> None:
        self.max_queue = max_queue
        self.coalesce_acks = coalesce_acks
        self.acks_coalesced = 0
        self._rx: deque[bytes] = deque()
        self._tx: deque[bytes] = deque()
        self._rx_signal = Signal()
        self._tx_signal = Signal()
        self._space = Signal()
        self.closed = False
        self.dropped = 0

    # -- the stack's side (PacketDevice) --
    async def receive(self) -> bytes:
        while not self._rx:
            if self.closed:
                raise anyio.EndOfStream
            await self._rx_signal.wait()
        return self._rx.popleft()

    def receive_nowait(self) -> bytes | None:
        return self._rx.popleft() if self._rx else None

    def send_nowait(self, packet: bytes) -> bool:
        if self.closed:
            self.dropped += 1
            return True
        if len(self._tx) >= self.max_queue:
            return False
        self._tx.append(packet)
        self._tx_signal.set()
        return True

    async def send(self, packet: bytes) -> None:
        while not self.send_nowait(packet):
            await self._space.wait()

    async def aclose(self) -> None:
        self.close()
        await anyio.lowlevel.checkpoint()

    def close(self) -> None:
        self.closed = True
        self._rx_signal.set()
        self._tx_signal.set()
        self._space.set()

    # -- the link's side --
    def deliver(self, packets: tuple[bytes, ...]) -> None:
        if not self.closed:
            self._rx.extend(packets)
            self._rx_signal.set()

    def take_uplink(self, limit: int) -> list[bytes]:
        """Up to `limit` queued packets, lone ACKs superseded within them dropped."""
        out: list[bytes] = []
        tx = self._tx
        while tx and len(out) < limit:
            out.append(tx.popleft())
        if out:
            self._space.set()
            if self.coalesce_acks:
                taken = len(out)
                out = coalesce_lone_acks(out)
                self.acks_coalesced += taken - len(out)
        return out

    async def wait_uplink(self) -> None:
        while not self._tx and not self.closed:
            await self._tx_signal.wait()


class IprLink:
    """One IPR session: `connect`, then packets both ways until `lost` is set."""

    def __init__(
        self,
        mixnet: MixnetClient,
        exit_: ExitCandidate,
        config: ClientConfig,
        *,
        rng: random.Random | None = None,
        packets_per_message: int = 1,
        max_in_flight: int = 0,
        coalesce_acks: bool = True,
        hold_for_slots: bool = True,
        on_keepalive_due: Callable[[], None] | None = None,
        on_policy_denied: Callable[[IpAddress, int], None] | None = None,
    ) -> None:
        self.mixnet = mixnet
        self.exit = exit_
        sizes = MessageSizes(surbs_that_fit, reply_fragments, fragments_needed)
        self.client = IprClient(rng, config, sizes)
        self.device = IprDevice(coalesce_acks=coalesce_acks)
        self.packets_per_message = packets_per_message
        self.max_in_flight = max_in_flight
        self.hold_for_slots = hold_for_slots and mixnet.config.poisson
        self.on_keepalive_due = on_keepalive_due
        self.on_policy_denied = on_policy_denied
        self.connected: Connected | None = None
        self.connect_failure: ConnectFailed | None = None
        self.lost = anyio.Event()
        self.lost_reason = ""
        self.packets_up = 0
        self.packets_down = 0
        self.messages_up = 0
        self._connect_done = anyio.Event()
        self._wake = Signal()
        self._surbs_served = mixnet.reply_surbs_served
        self._stack: NetStack | None = None

    def attach_stack(self, stack: NetStack) -> None:
        """The stack whose packets this link carries: its send queues tell the pump
        whether a partial bundle will grow."""
        self._stack = stack

    # -- driving -----------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """The clock and the uplink pump; runs until cancelled or the mixnet client stops."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._pump)
                task_status.started()
                await self._drive()
        except MixnetError as exc:
            self._lose(f"mixnet client stopped: {exc}")
        finally:
            self.device.close()

    async def _drive(self) -> None:
        client = self.client
        while True:
            now = anyio.current_time()
            deadline = client.poll_deadline()
            if deadline is not None and deadline <= now:
                client.handle_timeout(now)
                self._process_events()
            await self._flush()
            deadline = client.poll_deadline()
            wait = math.inf if deadline is None else max(0.0, deadline - anyio.current_time())
            with anyio.move_on_after(wait):
                await self._wake.wait()

    async def _pump(self) -> None:
        device, client = self.device, self.client
        per_message = self.packets_per_message
        paced = self.hold_for_slots
        while True:
            if client.packed:  # a partial bundle waits for more, a bounded time
                hold_end = client.packed_since + client.config.bundle_hold
                with anyio.move_on_after(max(0.0, hold_end - anyio.current_time())):
                    await device.wait_uplink()
            else:
                await device.wait_uplink()
            if device.closed:
                return
            if paced:
                # One Poisson slot per message: packets wait in the device, not behind
                # the slots, so the lone ACKs that queued meanwhile leave as one (and
                # the data segments that queued, as bundles).
                await self.mixnet.wait_queue_empty()
            await self._wait_for_window()
            packets = device.take_uplink(64 * per_message)
            if client.state is not ClientState.CONNECTED:
                device.dropped += len(packets)
                continue
            now = anyio.current_time()
            if per_message == 1:
                for packet in packets:
                    client.pack(packet, now)
                if client.packed and not self._bundle_may_wait(now):
                    client.flush_packed(now)
            else:
                for start in range(0, len(packets), per_message):
                    client.send_packets(packets[start : start + per_message], now)
            self.packets_up += len(packets)
            await self._flush()
            self._wake.set()  # the idle deadline moved

    def _bundle_may_wait(self, now: float) -> bool:
        """A partial bundle of data segments waits while the stack has more to send."""
        client, stack = self.client, self._stack
        if stack is None or now >= client.packed_since + client.config.bundle_hold:
            return False
        if client.packed_bytes < BULK_PACKET * client.packed:  # packets averaging under it
            return False  # ACKs, handshakes, requests: never held
        return stack.has_unsent()

    async def _wait_for_window(self) -> None:
        """Hold uplink packets while too many fragments await their SURB-ACKs.

        Without a window, a burst (many TCP streams opening at once) queues more
        fragments than the mixnet carries within the ack timeout; the client then
        retransmits packets that were merely late, and the load feeds itself. Held
        packets stay in the device queue, and TCP sees the delay as RTT.
        """
        limit = self.max_in_flight
        if limit <= 0:
            return
        while self.mixnet.fragments_awaiting_ack > limit:
            await anyio.sleep(WINDOW_POLL)

    async def _flush(self) -> None:
        for transmit in self.client.pop_transmits():
            if isinstance(transmit, SendToIpr):
                self.messages_up += 1
                await self.mixnet.send(
                    self.exit.ipr,
                    transmit.payload,
                    reply_surbs=transmit.reply_surbs,
                    retransmit=transmit.retransmit,
                    repliable=True,
                )
            elif isinstance(transmit, SendAdditionalSurbs):  # pragma: no cover - see docstring
                pass

    # -- from the dispatcher -----------------------------------------------------------

    def on_reply(self, payload: bytes) -> None:
        served = self.mixnet.reply_surbs_served
        if served != self._surbs_served:
            self.client.on_surbs_served(served - self._surbs_served)
            self._surbs_served = served
        sent, acked = self.mixnet.ack_counts
        self.client.observe_round_trips(sent, acked)
        self.client.bundle_gate.observe(acked, self.mixnet.unacked_count)
        self.client.on_reply(payload, anyio.current_time())
        self._process_events()
        self._wake.set()

    def _process_events(self) -> None:
        for event in self.client.pop_events():
            if isinstance(event, PacketsReceived):
                self.packets_down += len(event.packets)
                self.device.deliver(event.packets)
            elif isinstance(event, InfoReceived):
                self._on_info(event)
            elif isinstance(event, KeepaliveDue):
                if self.on_keepalive_due is not None:
                    self.on_keepalive_due()
            elif isinstance(event, Connected):
                self.connected = event
                self._connect_done.set()
            elif isinstance(event, ConnectFailed):
                self.connect_failure = event
                self._connect_done.set()
            elif isinstance(event, ReconnectNeeded):
                self._lose(event.reason)

    def _on_info(self, event: InfoReceived) -> None:
        info = event.response
        if info.kind is not InfoKind.EXIT_POLICY_FILTER_CHECK_FAILED:
            return
        target = parse_socket_text(info.message)
        if target is not None and self.on_policy_denied is not None:
            self.on_policy_denied(*target)

    def _lose(self, reason: str) -> None:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()
        self._connect_done.set()

    # -- the session -------------------------------------------------------------------

    async def connect(self) -> Connected:
        """Open the stream and connect (v10 first if the exit's build is new enough)."""
        version = version_for_exit(self.exit.build_version)
        self.client.connect(anyio.current_time(), datetime.now(UTC), version=version)
        self._wake.set()
        await self._connect_done.wait()
        if self.connected is not None:
            return self.connected
        if self.connect_failure is not None:
            failure = self.connect_failure
            if failure.reason == "timeout":
                budget = self.client.config.connect_timeout
                raise IprHandshakeFailed(f"exit {self.exit.key}: no ConnectSuccess in {budget:g} s")
            detail = f": {failure.message}" if failure.message else ""
            raise IprHandshakeFailed(
                f"exit {self.exit.key}: refused the connect ({failure.reason}{detail})"
            )
        raise TunnelClosed(f"IPR session ended while connecting: {self.lost_reason}")

    async def disconnect(self) -> None:
        """Tell the exit to free our addresses (best effort, nothing awaited)."""
        if self.client.state is ClientState.CONNECTED:
            self.client.disconnect(anyio.current_time())
            with contextlib.suppress(MixnetError):
                await self._flush()


def parse_socket_text(text: str) -> tuple[IpAddress, int] | None:
    """`1.2.3.4:80` or `[::1]:80` (Rust's SocketAddr display) as an address and port."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit():
        return None
    try:
        address = ip_address(host.strip("[]"))
    except ValueError:
        return None
    port = int(port_text)
    return (address, port) if port <= 0xFFFF else None


def stream_of(payload: bytes) -> int | None:
    """The LP stream id of a reply (LpFrame's header: 2-byte kind, then the 8-byte id),
    without decoding the rest: the dispatcher looks at every message."""
    if len(payload) < HEADER_SIZE:
        return None
    return int.from_bytes(payload[2:10], "big")
