"""`Tunnel`: TCP streams, UDP exchanges and DNS through one exit IPR, as an apps Connector.

Start-up (state `connecting`): read the topology, start the mixnet client on
the entry gateway, choose an exit (pinned, remembered, or discovered), run the
IPR handshake, then build the userspace stack on the addresses the exit
allocated (`ready`). No readiness ping: the ConnectSuccess came back through our
own reply SURBs, so it already proved the path both ways (the official client
does not ping either); its round trip is the session's `rtt_ms`. Operations wait at the ready gate.

A session that is lost (the exit's 60 s idle drop, a Disconnect, missing pongs)
is replaced at once: a new handshake, new addresses, a new stack. Streams of
the old session fail with BrokenResourceError; new ones use the new session.
Discovered exits are raced `exit_race` at a time in a performance-weighted
order (exit_race.py), each within a short per-attempt budget, up to
`exit_attempts` of them: the first that connects carries the
session, one that refuses, stays silent or cannot be routed to frees its lane
for the next, and one that connects after the race was won is sent a Disconnect
(a pinned exit is the only attempt and gets the whole connect_timeout). `trail`
names every gateway and exit tried and how each attempt ended, for -v and the
session's status.

Names are resolved through the tunnel (apps.dns over our own `udp_exchange` /
`open_tcp`); the OS resolver is never asked about a destination.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import random
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

import anyio
import anyio.abc

from smolmix_cli.apps.dns import Resolver
from smolmix_cli.apps.errors import ResolveError
from smolmix_cli.bootstrap import boot_mixnet
from smolmix_cli.config import Network
from smolmix_cli.error_words import failure_words
from smolmix_cli.ipr.client_logic import version_for_exit
from smolmix_cli.ipr.messages import V10
from smolmix_cli.ipr.router_logic import TUN_IPV4
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.client.client import MixnetClient
from smolmix_cli.mixnet.directory.nym_api import NymApiClient
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.gateway.client import unwrap_single_exception
from smolmix_cli.mixnet.topology.topology import Topology
from smolmix_cli.netstack.aio import StackClosed, StackRunner, TcpStream, UdpSocket
from smolmix_cli.netstack.errors import (
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimedOut,
    NetstackError,
)
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.tunnel.errors import (
    ExitPolicyDenied,
    GatewayLost,
    IprHandshakeFailed,
    NoExitAvailable,
    TunnelClosed,
    TunnelConnectError,
    TunnelTimeout,
    TunnelUnavailable,
)
from smolmix_cli.tunnel.exit_race import ExitRace
from smolmix_cli.tunnel.exits import (
    ExitCandidate,
    ExitDiscovery,
    ExitMemory,
    discover_exits,
    exit_order,
)
from smolmix_cli.tunnel.ipr_link import IpAddress, IprLink, stream_of
from smolmix_cli.tunnel.options import MAINNET_DNS, TunnelOptions, for_local_network
from smolmix_cli.tunnel.status import TunnelStatus, gateway_lines

log = logging.getLogger(__name__)

TRAIL_KEPT = 200  # trail lines a long-lived tunnel keeps
EXITS_KEPT = 50  # exits whose last outcome the status names

KEEPALIVE_ECHO_ID = 0x534D  # "SM": the idle keep-alive's ICMP echo identifier


class TunnelState(enum.Enum):
    CONNECTING = "connecting"
    READY = "ready"
    SHUTTING_DOWN = "shutting down"
    SHUT_DOWN = "shut down"
    FAILED = "failed"


class _PolicyDenied(ConnectionRefused):
    """The stack-level error a denied connect fails with (mapped to ExitPolicyDenied)."""


@dataclass(eq=False)
class Session:
    """One IPR session: its link, the allocated addresses and the stack built on them."""

    link: IprLink
    runner: StackRunner
    ipv4: IPv4Address
    ipv6: IPv6Address
    mtu: int
    connect_rtt: float
    """Seconds from the ConnectRequest to its ConnectSuccess: one mixnet round trip."""
    udp_denials: dict[tuple[IpAddress, int], anyio.Event] = field(default_factory=dict)
    ended: anyio.Event = field(default_factory=anyio.Event)

    @property
    def stack(self) -> NetStack:
        return self.runner.stack


def parse_server(text: str) -> tuple[str, int]:
    """`ip:port`, `[v6]:port` or a bare IP (port 53) — never a name: no resolver to ask."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = int(port_text)
    return str(ip_address(host)), port


def dns_servers_for(network: Network, options: TunnelOptions) -> list[tuple[str, int]]:
    """Explicit servers, else the local network's own DNS server, else the mainnet defaults."""
    if options.dns_servers:
        return [parse_server(s) for s in options.dns_servers]
    if network.dns_resolver:
        return [parse_server(network.dns_resolver)]
    return [parse_server(s) for s in MAINNET_DNS]


class Tunnel:
    """Use `async with Tunnel.open(network, options) as tunnel:`."""

    def __init__(
        self, network: Network, options: TunnelOptions, rng: random.Random | None = None
    ) -> None:
        self.network = network
        self.options = options
        self.rng = rng if rng is not None else random.SystemRandom()
        self.state = TunnelState.CONNECTING
        self.reason = "starting"
        self.failure: BaseException | None = None
        self.exit: ExitCandidate | None = None
        self.session: Session | None = None
        self.sessions_started = 0
        self.exits_failed: list[str] = []
        self.exits_tried: dict[str, str] = {}  # exit key -> how its last attempt ended
        self.trail: deque[str] = deque(maxlen=TRAIL_KEPT)  # gateways and exits, as they end
        self.trail_total = 0  # lines ever added (the -v printer's cursor)
        self._changed = anyio.Event()
        self._link: IprLink | None = None  # the current session's
        self._links: list[IprLink] = []  # every running attempt's, the current one's included
        self._mixnet: MixnetClient | None = None
        self._memory = ExitMemory(options.data_dir)
        self._topology: Topology | None = None  # the boot topology, for the route check
        self._keepalive_seq = 0
        self._resolvers = [
            Resolver(
                self, server=host, port=port, timeout=options.dns_timeout, tries=options.dns_tries
            )
            for host, port in dns_servers_for(network, options)
        ]

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        network: Network,
        options: TunnelOptions | None = None,
        *,
        rng: random.Random | None = None,
    ) -> AsyncIterator[Tunnel]:
        """Start connecting in the background and hand out the tunnel at once (see `wait_ready`)."""
        if options is None:
            options = for_local_network() if network.is_local else TunnelOptions()
        tunnel = cls(network, options, rng)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(tunnel._run)
                try:
                    yield tunnel
                finally:
                    tunnel._set_state(TunnelState.SHUTTING_DOWN, "closing")
                    tg.cancel_scope.cancel()
        finally:
            tunnel._set_state(TunnelState.SHUT_DOWN, "closed")

    def _set_state(self, state: TunnelState, reason: str) -> None:
        if self.state in (TunnelState.SHUT_DOWN, TunnelState.FAILED):
            return  # terminal
        if self.state is TunnelState.SHUTTING_DOWN and state is not TunnelState.SHUT_DOWN:
            return
        self.state, self.reason = state, reason
        self._changed.set()
        self._changed = anyio.Event()

    def _fail(self, exc: BaseException) -> None:
        self.failure = exc
        self._set_state(TunnelState.FAILED, failure_words(exc))

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Return once the tunnel carries traffic; raise if it failed or closed meanwhile."""
        with anyio.move_on_after(timeout if timeout is not None else float("inf")):
            while True:
                if self.state is TunnelState.READY:
                    return
                if self.state is TunnelState.FAILED:
                    raise self._failure_error()
                if self.state in (TunnelState.SHUTTING_DOWN, TunnelState.SHUT_DOWN):
                    raise TunnelClosed(f"tunnel is {self.state.value}")
                await self._changed.wait()
        raise TunnelTimeout(f"tunnel not ready after {timeout:g} s ({self.reason})")

    def _failure_error(self) -> BaseException:
        failure = self.failure
        if isinstance(failure, TunnelUnavailable | MixnetError):
            return failure  # typed already: the CLI maps it to its exit code
        error = TunnelUnavailable(f"tunnel failed: {self.reason}")
        error.__cause__ = failure
        return error

    async def _ready_session(self) -> Session:
        await self.wait_ready(self.options.connect_timeout)
        session = self.session
        if session is None:  # pragma: no cover - READY implies a session
            raise TunnelClosed("no session")
        return session

    async def _run(self) -> None:
        try:
            with unwrap_single_exception():
                await self._run_inner()
        except Exception as exc:
            self._fail(exc)

    async def _run_inner(self) -> None:
        def phase(text: str) -> None:
            self.reason = text

        async with boot_mixnet(
            self.network,
            self.options.mixnet_config(self.network),
            data_dir=self.options.data_dir,
            on_phase=phase,
        ) as mixnet:
            self._mixnet = mixnet.client
            for line in gateway_lines(mixnet.client.gateways_tried):
                self._note(line)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._dispatch, mixnet.client)
                tg.start_soon(self._watch_gateway, mixnet.client)
                await self._sessions(mixnet.api, mixnet.client, mixnet.topology, tg)

    async def _watch_gateway(self, mixnet: MixnetClient) -> None:
        """Fail the tunnel when its gateway stays away: a ready state must mean traffic can
        leave. The gateway client goes on reconnecting meanwhile (a blip costs nothing)."""
        grace = self.options.gateway_loss_after
        while True:
            down = mixnet.gateway_down_for()
            if down >= grace:
                error = mixnet.gateway_last_error or "connection lost"
                lost = GatewayLost(f"lost the gateway for {down:.0f} s ({error})")
                # Failed before the sessions unwind, so an operation that fails with them
                # already sees a failed tunnel (a session daemon retries it on the next one).
                self._fail(lost)
                raise lost
            await anyio.sleep(min(0.5, grace / 4) if down else min(1.0, grace / 2))

    async def _dispatch(self, mixnet: MixnetClient) -> None:
        """Every message from the mixnet goes to the IPR link of its stream (a race runs
        several); the current session's link counts the ones nobody owns as dropped."""
        while True:
            message = await mixnet.receive()
            stream = stream_of(message.data)
            owner = self._link
            for link in self._links:
                if link.client.stream_id == stream:
                    owner = link
                    break
            if owner is not None:
                owner.on_reply(message.data)

    def _note(self, line: str) -> None:
        self.trail.append(line)
        self.trail_total += 1

    async def _sessions(
        self, api: NymApiClient, mixnet: MixnetClient, topology: Topology, tg: anyio.abc.TaskGroup
    ) -> None:
        prefer = self._memory.load()
        discovery: ExitDiscovery | None = None
        self._topology = topology
        while True:
            if self.options.ipr is not None:
                exit_ = ExitCandidate(Recipient.parse(self.options.ipr))
                self.reason = f"connecting to exit {exit_.key}"
                race = ExitRace.over([exit_], 1, 1)
                exit_, session = await self._race(mixnet, race, tg, rotating=False)
            else:
                if discovery is None:
                    self.reason = "discovering exits"
                    discovery = await discover_exits(api, topology)
                exit_, session = await self._rotate(mixnet, discovery, prefer, tg)
            self.exit = exit_
            self._memory.save(exit_)
            self.session = session
            self.sessions_started += 1
            self._set_state(TunnelState.READY, f"via {exit_.key} as {session.ipv4}")
            await session.link.lost.wait()
            self.session = None
            self._set_state(TunnelState.CONNECTING, f"reconnecting ({session.link.lost_reason})")
            await session.ended.wait()
            prefer = exit_.key

    async def _rotate(
        self,
        mixnet: MixnetClient,
        discovery: ExitDiscovery,
        prefer: str | None,
        tg: anyio.abc.TaskGroup,
    ) -> tuple[ExitCandidate, Session]:
        """The first exit, in weighted order and `exit_race` at a time, that gets ready."""
        order = exit_order(discovery.candidates, self.rng, prefer=prefer)
        order = order[: self.options.exit_attempts]
        if not order:
            raise NoExitAvailable(f"no exit gateway available: {discovery.summary()}")
        race = ExitRace.over(order, self.options.exit_race, len(discovery.candidates))
        return await self._race(mixnet, race, tg, rotating=True, context=discovery.summary())

    async def _race(
        self,
        mixnet: MixnetClient,
        race: ExitRace,
        tg: anyio.abc.TaskGroup,
        *,
        rotating: bool,
        context: str = "",
    ) -> tuple[ExitCandidate, Session]:
        """Start attempts while lanes are free; the winner's task stays in `tg` carrying its
        session, the losers end within their own attempt budget (see `_attempt`)."""
        won: list[Session] = []
        total = race.tried + len(race.pending)
        stagger = self.options.exit_race_stagger if race.width > 1 else 0.0
        while not won:
            while (exit_ := race.next_attempt()) is not None:
                self.exits_tried[exit_.key] = "trying"
                try:
                    self._check_route(exit_)
                except IprHandshakeFailed as exc:
                    self._exit_failed(race, exit_, exc)
                    continue
                tg.start_soon(self._attempt, mixnet, exit_, race, won, rotating)
                latest = exit_.short
                lanes = f", {len(race.running)} at once" if race.width > 1 else ""
                self.reason = (
                    f"connecting to exit {latest} ({race.tried}/{total}{lanes}; {context})"
                )
                if stagger > 0:
                    break  # the next lane opens after `stagger`, or at once on a failure
            if race.exhausted:
                if race.listed == 1 and len(race.failures) == 1:
                    failed, why = race.failures[0]
                    raise IprHandshakeFailed(f"exit {failed.key}: {why}")
                raise IprHandshakeFailed(race.summary())
            with anyio.move_on_after(stagger if stagger > 0 and race.can_start else math.inf):
                await race.changed.wait()
            if race.failures:
                failed, why = race.failures[-1]
                context = f"failed: exit {failed.short}: {why}"
        assert race.winner is not None
        for loser in race.running:  # named now, so -v lists every exit tried by the time it's ready
            self._note(f"exit {loser.short}: still trying, released when it answers or times out")
        return race.winner, won[0]

    def _exit_failed(self, race: ExitRace, exit_: ExitCandidate, exc: BaseException) -> None:
        why = _without_prefix(str(exc), f"exit {exit_.key}: ")
        self.exits_failed.append(exit_.key)
        self._exit_outcome(exit_, why)
        race.failed(exit_, why)

    def _exit_outcome(self, exit_: ExitCandidate, outcome: str) -> None:
        self.exits_tried.pop(exit_.key, None)
        self.exits_tried[exit_.key] = outcome
        while len(self.exits_tried) > EXITS_KEPT:
            del self.exits_tried[next(iter(self.exits_tried))]
        self._note(f"exit {exit_.short}: {outcome}")

    def _check_route(self, exit_: ExitCandidate) -> None:
        """Fail at once when no route to the exit's gateway can be built: the mixnet client
        would only drop the connect (a failed message nobody waits for), and we would wait
        out the whole attempt."""
        topology = self._topology
        if topology is None:
            return
        try:
            topology.node_by_identity(exit_.ipr.gateway)
        except MixnetError as exc:
            log.info("no route to exit %s: %s", exit_.key, exc)
            raise IprHandshakeFailed(f"exit {exit_.key}: no route to its gateway") from None

    def _attempt_options(self, exit_: ExitCandidate, rotating: bool) -> TunnelOptions:
        """The IPR client config of one attempt on this exit."""
        options = self.options
        if not rotating:
            return options
        # One budget per IPR version, so the v9 fallback still runs inside the attempt
        # (upstream ip_mix_stream.rs caps v10 at IPR_V10_ATTEMPT_TIMEOUT, then tries v9).
        step = min(options.exit_attempt_timeout, options.v10_fallback_after)
        v10_first = version_for_exit(exit_.build_version) == V10
        return options.replace(
            connect_timeout=options.exit_attempt_budget(v10_first), v10_fallback_after=step
        )

    async def _attempt(
        self,
        mixnet: MixnetClient,
        exit_: ExitCandidate,
        race: ExitRace,
        won: list[Session],
        rotating: bool,
    ) -> None:
        """Connect one exit. The race's winner goes on carrying the session until
        its link is lost; a loser that connected sends a Disconnect (the exit frees its
        addresses) and ends, as does every failed attempt."""
        options = self.options
        link_options = self._attempt_options(exit_, rotating)
        holder: list[Session] = []
        link = IprLink(
            mixnet,
            exit_,
            link_options,  # an IPR client config (TunnelOptions extends it)
            rng=self.rng if isinstance(self.rng, random.Random) else None,
            packets_per_message=options.packets_per_message,
            max_in_flight=options.max_in_flight,
            coalesce_acks=options.coalesce_uplink_acks,
            hold_for_slots=options.hold_uplink_for_slots,
            on_keepalive_due=lambda: self._keepalive(holder),
            on_policy_denied=lambda addr, port: self._policy_denied(holder, addr, port),
        )
        self._links.append(link)
        try:
            with unwrap_single_exception():
                async with anyio.create_task_group() as stg:
                    await stg.start(link.run)
                    try:
                        asked = anyio.current_time()
                        connected = await link.connect()
                        rtt = anyio.current_time() - asked
                    except (IprHandshakeFailed, TunnelClosed) as exc:
                        await link.disconnect()  # free any addresses it gave us
                        self._exit_failed(race, exit_, exc)
                        stg.cancel_scope.cancel()
                        return
                    if not race.claim(exit_):
                        await link.disconnect()
                        self._exit_outcome(exit_, "connected after the race was won; disconnected")
                        stg.cancel_scope.cancel()
                        return
                    mtu = options.mtu if options.mtu is not None else connected.mtu
                    addresses: list[IPv4Address | IPv6Address] = [connected.ipv4]
                    if mtu >= 1280:
                        addresses.append(connected.ipv6)
                    stack = NetStack(addresses, mtu=mtu, tcp_config=options.tcp_config())
                    link.attach_stack(stack)
                    runner = StackRunner(stack, link.device)
                    await stg.start(runner.run)
                    session = Session(link, runner, connected.ipv4, connected.ipv6, mtu, rtt)
                    holder.append(session)
                    self._link = link
                    self._exit_outcome(exit_, f"connected in {rtt * 1000:.0f} ms")
                    won.append(session)
                    race.changed.set()
                    await link.lost.wait()
                    stg.cancel_scope.cancel()
        finally:
            link.device.close()
            self._links.remove(link)
            if self._link is link:
                self._link = None
            for session in holder:
                session.ended.set()

    def _keepalive(self, holder: list[Session]) -> None:
        """No uplink for a while: one ICMP echo to the exit's TUN address keeps our session."""
        if not self.options.keep_alive_idle or not holder:
            return
        runner = holder[0].runner
        self._keepalive_seq = (self._keepalive_seq + 1) & 0xFFFF
        with contextlib.suppress(NetstackError):
            runner.stack.icmp_echo(TUN_IPV4, KEEPALIVE_ECHO_ID, self._keepalive_seq)
            runner.flush()

    def _policy_denied(self, holder: list[Session], address: IpAddress, port: int) -> None:
        """The exit refused a destination: fail the connects (and UDP exchanges) waiting on it."""
        if not holder:
            return
        session = holder[0]
        now = session.runner.clock()
        for sock in session.stack.connections:
            if sock.remote == (address, port) and not sock.conn.is_established:
                sock.conn.handle_icmp_unreachable(
                    _PolicyDenied(f"the exit's policy refuses {address}:{port}"), now
                )
                session.stack._after_input(sock, now)
        event = session.udp_denials.get((address, port))
        if event is not None:
            event.set()
        session.runner.flush()

    # -- the Connector API ---------------------------------------------------------------------

    async def resolve(self, name: str) -> list[str]:
        """Addresses for `name` through the tunnel (A first, AAAA if none); ResolveError if none."""
        literal = _literal(name)
        if literal is not None:
            return [str(literal)]
        errors: list[str] = []
        for resolver in self._resolvers:
            for ipv6 in (False, True):
                try:
                    return await resolver.resolve_addresses(name, ipv6=ipv6)
                except ResolveError as exc:
                    errors.append(str(exc))
        raise ResolveError(errors[-1] if errors else f"Could not resolve host: {name}")

    async def _addresses(self, host: str) -> list[IpAddress]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        found = [ip_address(a) for a in await self.resolve(host)]
        found.sort(key=lambda a: a.version)  # IPv4 first, as the published client
        return found

    async def open_tcp(self, host: str, port: int) -> TcpStream:
        if not 0 < port <= 0xFFFF:
            raise TunnelConnectError(f"port {port} out of range")
        addresses = await self._addresses(host)
        session = await self._ready_session()
        last: Exception | None = None
        for address in addresses:
            if address.version == 6 and session.stack.mtu < 1280:
                continue
            try:
                return await self._connect(session, address, port)
            except ExitPolicyDenied:
                raise
            except (TunnelConnectError, TunnelTimeout) as exc:
                last = exc
        raise last or TunnelConnectError(f"no usable address for {host}")

    async def _connect(self, session: Session, address: IpAddress, port: int) -> TcpStream:
        timeout = self.options.tcp_connect_timeout
        with anyio.move_on_after(timeout):
            try:
                return await session.runner.connect_tcp(address, port)
            except _PolicyDenied:
                raise ExitPolicyDenied(
                    f"the exit's policy refuses {_where(address, port)}"
                ) from None
            except (ConnectionRefused, ConnectionReset):
                raise TunnelConnectError(f"connection to {_where(address, port)} refused") from None
            except ConnectionTimedOut:
                raise TunnelTimeout(f"connection to {_where(address, port)} timed out") from None
            except StackClosed:
                raise TunnelClosed("the tunnel session ended while connecting") from None
            except NetstackError as exc:
                raise TunnelConnectError(f"{_where(address, port)}: {exc}") from None
        raise TunnelTimeout(f"connection to {_where(address, port)} timed out after {timeout:g} s")

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
        """One datagram out, the first datagram back from that address and port."""
        if not 0 < port <= 0xFFFF:
            raise TunnelConnectError(f"port {port} out of range")
        address = (await self._addresses(host))[0]
        session = await self._ready_session()
        sock = session.runner.bind_udp()
        key = (address, port)
        denied = session.udp_denials.setdefault(key, anyio.Event())
        reply: bytes | None = None
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    await denied.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                with anyio.move_on_after(timeout):
                    try:
                        await sock.sendto(payload, address, port)
                    except NetstackError as exc:
                        raise TunnelConnectError(f"{_where(address, port)}: {exc}") from None
                    reply = await _receive_from(sock, address, port)
                tg.cancel_scope.cancel()
        except anyio.BrokenResourceError:
            raise TunnelClosed("the tunnel session ended during a UDP exchange") from None
        finally:
            if session.udp_denials.get(key) is denied and not denied.is_set():
                del session.udp_denials[key]
            await sock.aclose()
        if reply is not None:
            return reply
        if denied.is_set():
            session.udp_denials.pop(key, None)
            raise ExitPolicyDenied(f"the exit's policy refuses {_where(address, port)}")
        raise TunnelTimeout(f"no UDP reply from {_where(address, port)} within {timeout:g} s")

    async def ping(self, host: str, timeout: float = 10.0, payload: bytes = b"smolmix") -> float:
        """ICMP echo round trip through the tunnel (seconds); TunnelTimeout without a reply."""
        address = (await self._addresses(host))[0]
        session = await self._ready_session()
        try:
            return await session.runner.ping(address, payload, timeout)
        except TimeoutError:
            raise TunnelTimeout(f"no echo reply from {address} within {timeout:g} s") from None
        except StackClosed:
            raise TunnelClosed("the tunnel session ended during a ping") from None

    # -- observation ---------------------------------------------------------------------------

    def snapshot(self) -> TunnelStatus:
        session = self.session
        link = session.link if session else None
        mixnet = self._mixnet
        return TunnelStatus(
            state=self.state.value,
            reason=self.reason,
            exit=self.exit.key if self.exit else None,
            gateway=b58encode(mixnet.gateway.identity) if mixnet is not None else None,
            ipv4=str(session.ipv4) if session else None,
            ipv6=str(session.ipv6) if session else None,
            rtt_ms=round(session.connect_rtt * 1000, 3) if session else None,
            sessions_started=self.sessions_started,
            exits_failed=tuple(self.exits_failed),
            exits_tried=tuple(f"{key}: {why}" for key, why in self.exits_tried.items()),
            gateways_tried=tuple(gateway_lines(mixnet.gateways_tried if mixnet else ())),
            gateways_skipped=tuple(
                f"{name}: {why}"
                for name, why in (mixnet.gateways_tried if mixnet else ())
                if why != "connected"
            ),
            packets_up=link.packets_up if link else 0,
            packets_down=link.packets_down if link else 0,
            messages_up=link.messages_up if link else 0,
            ipr_dropped=link.client.dropped if link else 0,
        )


def _without_prefix(text: str, prefix: str) -> str:
    return text[len(prefix) :] if text.startswith(prefix) else text


def _literal(host: str) -> IpAddress | None:
    try:
        return ip_address(host.strip("[]"))
    except ValueError:
        return None


def _where(address: IpAddress, port: int) -> str:
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


async def _receive_from(sock: UdpSocket, address: IpAddress, port: int) -> bytes:
    while True:
        data, source = await sock.receive()
        if source == (address, port):
            return data
