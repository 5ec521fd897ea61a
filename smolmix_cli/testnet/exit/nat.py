"""The exit's userspace NAT: tunnel IP packets in, real OS sockets out.

One `NetStack` in accept-any-destination mode owns the exit's tunnel-side
addresses (10.0.0.1, fc00::1, as the upstream TUN device). What the clients'
packets open is terminated here and carried on ordinary sockets:

- TCP: a client's SYN is held until the OS connection to the (mapped)
  destination is up; only then does the stack answer it, so a refused or
  unreachable destination fails the client's connect at once (RST, or ICMP
  host unreachable) instead of a connection that opens and dies. The two ends
  are then spliced with bounded buffers, each half-close passed on.
- UDP: datagrams are relayed per flow (client endpoint, destination) over a
  connected OS socket; answers come back from the address the client wrote to.
  Flows expire when idle and their number is bounded.
- ICMP echo to any destination is answered by the exit itself (it has no raw
  sockets to ping the world with).

`AddressMap` lets the local network hand out demo addresses (198.18.0.0/15,
"benchmarking") that the exit sends to loopback servers; everything else goes
where the packet says. Policy decisions are the caller's (`reject` builds the
ICMP "administratively prohibited" answer for a denied packet).
"""

from __future__ import annotations

import errno
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

import anyio
import anyio.abc
from anyio.abc import TaskStatus

from smolmix_cli.netstack.aio import StackRunner, TcpStream, TcpStreamListener, UdpSocket
from smolmix_cli.netstack.errors import NetstackError
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.phy.callback import CallbackDevice
from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.connection import reset_for
from smolmix_cli.netstack.wire import icmp, ip
from smolmix_cli.netstack.wire.tcp import ACK, FIN, RST, SYN, decode_tcp, encode_tcp

log = logging.getLogger(__name__)

IpAddress = IPv4Address | IPv6Address
FlowKey = tuple[bytes, int, bytes, int]  # client address, client port, destination, port

EXIT_IPV4 = IPv4Address("10.0.0.1")
EXIT_IPV6 = IPv6Address("fc00::1")


@dataclass(frozen=True, slots=True)
class NatConfig:
    mtu: int = 1420  # the upstream TUN's default
    tcp_connect_timeout: float = 10.0
    tcp_accept_timeout: float = 60.0  # OS connection kept for a handshake that never finishes
    splice_chunk: int = 65536
    udp_idle_timeout: float = 60.0
    max_udp_flows: int = 1024
    max_pending_connects: int = 1024
    max_tcp_flows: int = 4096  # spliced and connecting; a SYN beyond is refused (RST)
    sweep_interval: float = 1.0
    # As the tunnel's end (tunnel/options.py): responses leave without Nagle's wait; the
    # sparse ACK policy is off, as there (it slowed transfers under loss).
    tcp_ack_every: int = 0
    tcp_nodelay: bool = True
    # Unacked plus unsent bytes towards the client. A real exit's sender is the origin's
    # Linux TCP, whose send buffer autotunes to MiBs: 64 KiB would cap the flight below a
    # client's scaled receive window (TunnelOptions.tcp_recv_window).
    tcp_send_buffer: int = 1 << 20
    # The origin's kernel answers a request with its ACK on the response once the
    # connection is interactive (Linux's pingpong mode; TcpConfig.pingpong).
    tcp_pingpong: bool = True

    def tcp_config(self) -> TcpConfig:
        return TcpConfig(
            ack_every=self.tcp_ack_every,
            nagle=not self.tcp_nodelay,
            send_buffer=self.tcp_send_buffer,
            pingpong=self.tcp_pingpong,
        )


class AddressMap:
    """Where a tunnel destination really goes: (address, port) -> (host, port)."""

    def __init__(self) -> None:
        self._hosts: dict[IpAddress, str] = {}
        self._ports: dict[tuple[IpAddress, int], tuple[str, int]] = {}

    def map_address(self, address: IpAddress, host: str) -> None:
        """Every port of `address` goes to the same port on `host` unless mapped itself."""
        self._hosts[address] = host

    def map_port(self, address: IpAddress, port: int, host: str, target_port: int) -> None:
        self._ports[(address, port)] = (host, target_port)

    def resolve(self, address: IpAddress, port: int) -> tuple[str, int]:
        hit = self._ports.get((address, port))
        if hit is not None:
            return hit
        return self._hosts.get(address, str(address)), port

    def is_mapped(self, address: IpAddress) -> bool:
        return address in self._hosts or any(a == address for a, _ in self._ports)


@dataclass(slots=True)
class _TcpFlow:
    os_stream: anyio.abc.SocketStream | None
    opened_at: float
    spliced: bool = False
    scope: anyio.CancelScope | None = None  # the splice's, to end it from outside
    forgotten: bool = False  # its client is gone: reset, do not close gracefully


@dataclass(slots=True)
class _UdpFlow:
    socket: anyio.abc.ConnectedUDPSocket
    client: tuple[IpAddress, int]
    destination: tuple[IpAddress, int]
    last_used: float
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)


class ExitNat:
    """Run with `await tg.start(nat.run)`; then `feed()` uplink packets.

    `deliver(packet)` receives every downlink packet (for the router to bundle).
    """

    def __init__(
        self,
        deliver: Callable[[bytes], None],
        *,
        address_map: AddressMap | None = None,
        config: NatConfig | None = None,
    ) -> None:
        self.config = config if config is not None else NatConfig()
        self.address_map = address_map if address_map is not None else AddressMap()
        self._deliver = deliver
        self.counters: Counter[str] = Counter()
        self.stack = NetStack(
            [EXIT_IPV4, EXIT_IPV6], mtu=self.config.mtu, tcp_config=self.config.tcp_config()
        )
        self._device = CallbackDevice(self._downlink)
        self.runner = StackRunner(self.stack, self._device)
        self._tg: anyio.abc.TaskGroup | None = None
        self._pending: set[FlowKey] = set()
        self._tcp: dict[FlowKey, _TcpFlow] = {}
        self._udp: OrderedDict[tuple[IpAddress, int, IpAddress, int], _UdpFlow] = OrderedDict()
        self._udp_any: UdpSocket | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await tg.start(self.runner.run)
                listener = self.runner.listen_tcp_any()
                self._udp_any = self.runner.bind_udp_any()
                tg.start_soon(self._accept_loop, listener)
                tg.start_soon(self._udp_loop, self._udp_any)
                tg.start_soon(self._sweep_loop)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            for flow in self._tcp.values():
                if flow.os_stream is not None:
                    await anyio.aclose_forcefully(flow.os_stream)
            for udp in self._udp.values():
                await anyio.aclose_forcefully(udp.socket)
            self._tcp.clear()
            self._udp.clear()

    def stats(self) -> dict[str, int]:
        out = {f"nat_{k}": int(v) for k, v in self.counters.items()}
        out["nat_tcp_flows"] = len(self._tcp)
        out["nat_udp_flows"] = len(self._udp)
        out["nat_pending_connects"] = len(self._pending)
        return out

    def has_unsent(self, addresses: Iterable[IpAddress]) -> bool:
        """Whether a TCP connection to one of these client addresses holds data not yet
        sent (its windows hold it): more downlink packets will follow the client's ACKs."""
        return self.stack.has_unsent(set(addresses))

    def _downlink(self, packet: bytes) -> None:
        self.counters["downlink packets"] += 1
        self._deliver(packet)

    # --- uplink -----------------------------------------------------------------------------

    def feed(self, packet: bytes) -> None:
        """One IP packet from a client (source already checked by the router)."""
        self.counters["uplink packets"] += 1
        try:
            pkt = ip.decode_ip(packet)
        except ip.PacketError as exc:
            self.counters[f"bad packet ({exc.reason})"] += 1
            return
        ours = self.stack.is_ours(ip.to_address(pkt.dst))
        if pkt.protocol in (ip.PROTO_ICMP, ip.PROTO_ICMPV6) and not ours and pkt.frag is None:
            self._answer_echo(pkt)
            return
        if (
            pkt.protocol == ip.PROTO_TCP
            and not ours
            and pkt.frag is None
            and len(pkt.payload) >= 20
        ):
            flags = pkt.payload[13]
            if flags & (SYN | ACK | RST | FIN) == SYN:
                key = (pkt.src, _port(pkt.payload, 0), pkt.dst, _port(pkt.payload, 2))
                if key in self._pending:
                    self.counters["tcp syn while connecting"] += 1
                    return
                if key not in self._tcp:
                    if self._valid_tcp(pkt):  # no OS connection for a corrupt SYN
                        self._start_connect(key, pkt)
                    return
        self._to_stack(packet)

    def _valid_tcp(self, pkt: ip.IpPacket) -> bool:
        pseudo = ip.pseudo_header_raw(pkt.src, pkt.dst, ip.PROTO_TCP, len(pkt.payload))
        try:
            decode_tcp(pkt.payload, pseudo)
        except (ip.PacketError, NetstackError):
            self.counters["bad tcp syn"] += 1
            return False
        return True

    def _to_stack(self, packet: bytes) -> None:
        self.stack.receive_packet(packet, self.runner.clock())
        self.runner.flush()

    def reject(self, packet: bytes) -> None:
        """Answer a packet the exit policy denies: ICMP 'administratively prohibited'."""
        try:
            pkt = ip.decode_ip(packet)
        except ip.PacketError:
            self.counters["bad rejected packet"] += 1
            return
        self.counters["rejected by policy"] += 1
        if pkt.version == 4:
            msg = icmp.error_for(
                pkt.raw, 4, icmp.V4_DEST_UNREACHABLE, icmp.V4_CODE_ADMIN_PROHIBITED
            )
        else:
            msg = icmp.error_for(
                pkt.raw, 6, icmp.V6_DEST_UNREACHABLE, icmp.V6_CODE_ADMIN_PROHIBITED
            )
        self._send_icmp(pkt, msg)

    # --- ICMP -----------------------------------------------------------------------------------

    def _answer_echo(self, pkt: ip.IpPacket) -> None:
        v = pkt.version
        pseudo = (
            b""
            if v == 4
            else ip.pseudo_header_raw(pkt.src, pkt.dst, ip.PROTO_ICMPV6, len(pkt.payload))
        )
        try:
            msg = icmp.decode_icmp(pkt.payload, pseudo)
        except (ip.PacketError, NetstackError):
            self.counters["bad icmp"] += 1
            return
        if msg.type != (icmp.V4_ECHO_REQUEST if v == 4 else icmp.V6_ECHO_REQUEST):
            self.counters["icmp ignored"] += 1  # errors from clients concern nobody here
            return
        self.counters["icmp echo answered"] += 1
        reply = icmp.echo_reply(msg, v)
        self._emit_icmp(pkt.dst, pkt.src, reply)

    def _send_icmp(self, about: ip.IpPacket, msg: icmp.IcmpMessage) -> None:
        """An ICMP error about `about`, from the exit's own (router) address."""
        source = (EXIT_IPV4 if about.version == 4 else EXIT_IPV6).packed
        self._emit_icmp(source, about.src, msg)

    def _emit_icmp(self, src: bytes, dst: bytes, msg: icmp.IcmpMessage) -> None:
        if len(src) == 4:
            packet = ip.encode_ip(src, dst, ip.PROTO_ICMP, icmp.encode_icmp(msg))
        else:
            pseudo = ip.pseudo_header_raw(src, dst, ip.PROTO_ICMPV6, 8 + len(msg.body))
            packet = ip.encode_ip(src, dst, ip.PROTO_ICMPV6, icmp.encode_icmp(msg, pseudo))
        self._downlink(packet)

    # --- TCP ------------------------------------------------------------------------------------

    def _start_connect(self, key: FlowKey, pkt: ip.IpPacket) -> None:
        if self._tg is None:
            self.counters["tcp syn before start"] += 1
            return
        if len(self._pending) >= self.config.max_pending_connects:
            self.counters["tcp too many connects"] += 1
            return
        if len(self._tcp) + len(self._pending) >= self.config.max_tcp_flows:
            self.counters["tcp too many flows"] += 1
            self._reset(pkt)
            return
        self._pending.add(key)
        self._tg.start_soon(self._connect, key, pkt)

    async def _connect(self, key: FlowKey, pkt: ip.IpPacket) -> None:
        destination, port = ip.to_address(key[2]), key[3]
        host, target_port = self.address_map.resolve(destination, port)
        try:
            with anyio.fail_after(self.config.tcp_connect_timeout):
                stream = await anyio.connect_tcp(host, target_port)
        except (OSError, TimeoutError) as exc:
            self._pending.discard(key)
            if _refused(exc):
                self.counters["tcp connect refused"] += 1
                self._reset(pkt)
            else:
                self.counters["tcp connect failed"] += 1
                code = icmp.V4_CODE_HOST_UNREACHABLE if pkt.version == 4 else 3
                typ = icmp.V4_DEST_UNREACHABLE if pkt.version == 4 else icmp.V6_DEST_UNREACHABLE
                self._send_icmp(pkt, icmp.error_for(pkt.raw, pkt.version, typ, code))
            return
        except Exception:  # e.g. a mapping to something anyio cannot connect to
            log.exception("exit NAT connect failed")
            self._pending.discard(key)
            self.counters["internal error"] += 1
            self._reset(pkt)
            return
        except BaseException:
            self._pending.discard(key)
            raise
        self._pending.discard(key)
        self.counters["tcp connected"] += 1
        self._tcp[key] = _TcpFlow(stream, anyio.current_time())
        self._to_stack(pkt.raw)  # now the stack answers the SYN

    def _reset(self, pkt: ip.IpPacket) -> None:
        pseudo = ip.pseudo_header_raw(pkt.src, pkt.dst, ip.PROTO_TCP, len(pkt.payload))
        try:
            seg = decode_tcp(pkt.payload, pseudo)
        except (ip.PacketError, NetstackError):
            return
        rst = reset_for(seg)
        if rst is None:
            return
        raw = encode_tcp(rst, ip.pseudo_header_raw(pkt.dst, pkt.src, ip.PROTO_TCP, 20))
        self._downlink(ip.encode_ip(pkt.dst, pkt.src, ip.PROTO_TCP, raw))

    async def _accept_loop(self, listener: TcpStreamListener) -> None:
        assert self._tg is not None
        while True:
            tunnel = await listener.accept()
            (laddr, lport), (raddr, rport) = tunnel.local, tunnel.remote
            key = (raddr.packed, rport, laddr.packed, lport)
            flow = self._tcp.get(key)
            if flow is None or flow.os_stream is None or flow.spliced:
                self.counters["tcp accepted without connection"] += 1
                tunnel.abort()
                continue
            flow.spliced = True
            self._tg.start_soon(self._splice, key, tunnel, flow.os_stream)

    async def _splice(
        self, key: FlowKey, tunnel: TcpStream, os_stream: anyio.abc.SocketStream
    ) -> None:
        self.counters["tcp spliced"] += 1
        broken = False

        async def pump(
            source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream, scope: anyio.CancelScope
        ) -> None:
            nonlocal broken
            try:
                while True:
                    try:
                        data = await source.receive(self.config.splice_chunk)
                    except anyio.EndOfStream:
                        await sink.send_eof()
                        return
                    await sink.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                broken = True
                scope.cancel()

        flow = self._tcp.get(key)
        try:
            with anyio.CancelScope() as outer:
                if flow is not None:
                    flow.scope = outer
                async with anyio.create_task_group() as tg:
                    tg.start_soon(pump, tunnel, os_stream, tg.cancel_scope)
                    tg.start_soon(pump, os_stream, tunnel, tg.cancel_scope)
            if flow is not None and flow.forgotten:
                broken = True
        except Exception:  # a bug in one flow must not end the NAT
            log.exception("TCP splice failed")
            self.counters["internal error"] += 1
            broken = True
        finally:
            self._tcp.pop(key, None)
            if broken:
                self.counters["tcp reset"] += 1
                tunnel.abort()
                await anyio.aclose_forcefully(os_stream)
            else:
                with anyio.CancelScope(shield=True):
                    await tunnel.aclose()
                    await anyio.aclose_forcefully(os_stream)

    def forget(self, addresses: Iterable[IpAddress]) -> None:
        """The client that owned `addresses` is gone: end its flows and free their sockets."""
        gone = set(addresses)
        packed = {a.packed for a in gone}
        for key, flow in list(self._tcp.items()):
            if key[0] not in packed:
                continue
            self.counters["tcp flow of a gone client"] += 1
            flow.forgotten = True
            if flow.scope is not None:
                flow.scope.cancel()
            else:
                del self._tcp[key]
                if flow.os_stream is not None and self._tg is not None:
                    self._tg.start_soon(anyio.aclose_forcefully, flow.os_stream)
        for udp_key in list(self._udp):
            if udp_key[0] in gone:
                self.counters["udp flow of a gone client"] += 1
                self._close_udp(udp_key)

    # --- UDP ------------------------------------------------------------------------------------

    async def _udp_loop(self, sock: UdpSocket) -> None:
        while True:
            dgram = await sock.receive_datagram()
            (caddr, cport), (daddr, dport) = dgram.src, dgram.dst
            key = (caddr, cport, daddr, dport)
            flow = self._udp.get(key)
            if flow is None:
                flow = await self._open_udp(key)
                if flow is None:
                    continue
            flow.last_used = anyio.current_time()
            self._udp.move_to_end(key)
            try:
                await flow.socket.send(dgram.data)
                self.counters["udp relayed up"] += 1
            except OSError:
                self.counters["udp send failed"] += 1
                self._close_udp(key)

    async def _open_udp(self, key: tuple[IpAddress, int, IpAddress, int]) -> _UdpFlow | None:
        assert self._tg is not None
        caddr, cport, daddr, dport = key
        host, port = self.address_map.resolve(daddr, dport)
        try:
            udp = await anyio.create_connected_udp_socket(host, port)
        except OSError:
            self.counters["udp open failed"] += 1
            return None
        while len(self._udp) >= self.config.max_udp_flows:
            oldest = next(iter(self._udp))
            self.counters["udp flow evicted"] += 1
            self._close_udp(oldest)
        flow = _UdpFlow(udp, (caddr, cport), (daddr, dport), anyio.current_time())
        self._udp[key] = flow
        self.counters["udp flows opened"] += 1
        self._tg.start_soon(self._udp_replies, key, flow)
        return flow

    async def _udp_replies(
        self, key: tuple[IpAddress, int, IpAddress, int], flow: _UdpFlow
    ) -> None:
        assert self._udp_any is not None
        with flow.scope:
            try:
                async for data in flow.socket:
                    flow.last_used = anyio.current_time()
                    try:
                        await self._udp_any.sendto(
                            data, flow.client[0], flow.client[1], src=flow.destination
                        )
                        self.counters["udp relayed down"] += 1
                    except NetstackError:
                        self.counters["udp reply too large"] += 1
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                self.counters["udp flow failed"] += 1
        if self._udp.get(key) is flow:
            self._close_udp(key)

    def _close_udp(self, key: tuple[IpAddress, int, IpAddress, int]) -> None:
        flow = self._udp.pop(key, None)
        if flow is None:
            return
        flow.scope.cancel()
        if self._tg is not None:
            self._tg.start_soon(anyio.aclose_forcefully, flow.socket)

    # --- housekeeping ---------------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        while True:
            await anyio.sleep(self.config.sweep_interval)
            self.sweep(anyio.current_time())

    def sweep(self, now: float) -> None:
        """Close idle UDP flows and OS connections whose tunnel handshake never finished."""
        for key, flow in list(self._udp.items()):
            if now - flow.last_used >= self.config.udp_idle_timeout:
                self.counters["udp flow expired"] += 1
                self._close_udp(key)
        for tcp_key, tcp in list(self._tcp.items()):
            if not tcp.spliced and now - tcp.opened_at >= self.config.tcp_accept_timeout:
                self.counters["tcp handshake abandoned"] += 1
                del self._tcp[tcp_key]
                if tcp.os_stream is not None and self._tg is not None:
                    self._tg.start_soon(anyio.aclose_forcefully, tcp.os_stream)


def _refused(exc: BaseException) -> bool:
    """anyio wraps the per-address errors: look at the cause too."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, ConnectionRefusedError):
            return True
        if isinstance(candidate, OSError) and candidate.errno == errno.ECONNREFUSED:
            return True
    return False


def _port(segment: bytes, offset: int) -> int:
    return (segment[offset] << 8) | segment[offset + 1]
