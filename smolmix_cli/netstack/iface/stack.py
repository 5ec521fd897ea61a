"""The sans-io network stack: IP packets and explicit time in, IP packets out.

`NetStack` owns addressing, demultiplexing, ports, listeners (including the
exit NAT's "any destination" mode), ICMP and UDP; each TCP connection's state
machine lives in `socket.tcp.connection.TcpConnection`, and applications
hold it through `handles.TcpSocket`. Every input (a packet, an application
call, a timer) is followed by draining the touched connection's output, so
`poll_transmit` only hands out what is already encoded.

Malformed or unwanted packets are counted in `counters` (by reason) and
dropped; nothing a peer sends raises out of `receive_packet`.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import struct
from collections import Counter, deque
from collections.abc import Collection, Iterable
from typing import Any

from smolmix_cli.netstack.errors import AddressInUse, MalformedPacket, NetstackError
from smolmix_cli.netstack.iface.fragments import Reassembler
from smolmix_cli.netstack.iface.handles import TcpKey, TcpListener, TcpSocket
from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.connection import TcpConnection, reset_for
from smolmix_cli.netstack.socket.udp import Datagram, DatagramTooLarge, UdpSocket
from smolmix_cli.netstack.wire import icmp
from smolmix_cli.netstack.wire.ip import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    Endpoint,
    IPAddress,
    IpPacket,
    PacketError,
    decode_ip,
    encode_ip,
    pseudo_header_raw,
    to_address,
)
from smolmix_cli.netstack.wire.tcp import ACK, FIN, RST, SYN, TcpSegment, decode_tcp
from smolmix_cli.netstack.wire.tcp_ip import encode_tcp_ip, ipv4_tcp_base_sum
from smolmix_cli.netstack.wire.udp import decode_udp, encode_udp

log = logging.getLogger(__name__)

DEFAULT_MTU = 1420  # spec §12: the IPR's MTU when it reports none (MSS 1380)
EPHEMERAL_FIRST = 49152
EPHEMERAL_LAST = 65535
ORPHAN_TIMEOUT = 60.0  # a connection the application released must finish within this

ECHO_REPLIES = "echo-replies"  # take_events() token: `echo_replies` grew


class NoRoute(NetstackError):
    """The stack has no address of the destination's family."""


class NetStack:
    """One host's IPv4/IPv6 stack on a point-to-point (TUN-like) interface."""

    def __init__(
        self,
        addresses: Iterable[IPAddress],
        mtu: int = DEFAULT_MTU,
        tcp_config: TcpConfig | None = None,
        reassembler: Reassembler | None = None,
        orphan_timeout: float = ORPHAN_TIMEOUT,
        icmp_error_rate: tuple[float, float] = (100.0, 50.0),
    ) -> None:
        self.addresses = list(addresses)
        if mtu < 1280 and any(a.version == 6 for a in self.addresses):
            raise ValueError("IPv6 needs an MTU of at least 1280")
        if mtu < 576:
            raise ValueError("MTU below 576")
        self.mtu = mtu
        self._ours = {a.packed for a in self.addresses}
        base = tcp_config or TcpConfig()
        self.tcp_config_v4 = dataclasses.replace(base, mss=min(base.mss, mtu - 40))
        self.tcp_config_v6 = dataclasses.replace(base, mss=min(base.mss, mtu - 60))
        self.reassembler = reassembler if reassembler is not None else Reassembler()
        self.orphan_timeout = orphan_timeout
        self.icmp_error_rate = icmp_error_rate  # (errors per second, burst)
        self._icmp_tokens = icmp_error_rate[1]
        self._icmp_last = 0.0
        self.counters: Counter[str] = Counter()
        self._tcp: dict[TcpKey, TcpSocket] = {}
        self._listeners: dict[tuple[bytes | None, int], TcpListener] = {}
        self._any_listener: TcpListener | None = None
        self._udp: dict[tuple[bytes | None, int], UdpSocket] = {}
        self._udp_any: UdpSocket | None = None
        self._out: list[bytes] = []
        self._dirty: set[object] = set()
        # Established sockets that took input since the last poll, with the input's
        # time: their output is built once per batch of packets (see _segment_for).
        self._pending: dict[TcpSocket, float] = {}
        self._ports: Counter[int] = Counter()
        self._next_port = EPHEMERAL_FIRST
        self._timers: list[tuple[float, int, TcpSocket]] = []
        self._timer_seq = itertools.count()
        # (from, id, seq, payload) of echo replies to us, newest kept; see icmp_echo()
        self.echo_replies: deque[tuple[IPAddress, int, int, bytes]] = deque(maxlen=64)

    # ---- addressing and ports ----

    def source_for(self, dst: IPAddress) -> IPAddress:
        for addr in self.addresses:
            if addr.version == dst.version:
                return addr
        raise NoRoute(f"no IPv{dst.version} address on this stack")

    def is_ours(self, addr: IPAddress) -> bool:
        return addr.packed in self._ours

    def allocate_port(self) -> int:
        """The next free port of the shared TCP/UDP counter (49152 upwards, wrapping)."""
        for _ in range(EPHEMERAL_LAST - EPHEMERAL_FIRST + 1):
            port = self._next_port
            self._next_port = EPHEMERAL_FIRST if port >= EPHEMERAL_LAST else port + 1
            if not self._ports[port]:
                return port
        raise AddressInUse("no free ephemeral port")

    def _take_port(self, port: int) -> None:
        self._ports[port] += 1

    def _free_port(self, port: int) -> None:
        self._ports[port] -= 1
        if self._ports[port] <= 0:
            del self._ports[port]

    def config_for(self, version: int) -> TcpConfig:
        return self.tcp_config_v4 if version == 4 else self.tcp_config_v6

    # ---- TCP API ----

    def tcp_connect(
        self,
        remote: Endpoint,
        now: float,
        local: Endpoint | None = None,
        config: TcpConfig | None = None,
        iss: int | None = None,
    ) -> TcpSocket:
        """Active open; the SYN is queued. Watch `conn.is_established` / `conn.error`."""
        raddr, rport = remote
        if not 0 < rport <= 0xFFFF:
            raise ValueError("remote port out of range")
        laddr = local[0] if local else self.source_for(raddr)
        if laddr.version != raddr.version:
            raise ValueError("local and remote address families differ")
        if local and local[1]:
            lport, owns = local[1], True
            if (laddr.packed, lport, raddr.packed, rport) in self._tcp:
                raise AddressInUse(f"{laddr}:{lport} -> {raddr}:{rport} exists")
        else:
            lport, owns = self.allocate_port(), True
        cfg = config or self.config_for(raddr.version)
        if config is not None:
            clamp = self.mtu - (40 if raddr.version == 4 else 60)
            cfg = dataclasses.replace(config, mss=min(config.mss, clamp))
        conn = TcpConnection.connect((laddr, lport), (raddr, rport), cfg, now, iss)
        sock = self._register(conn, owns)
        self._after_input(sock, now)
        return sock

    def tcp_listen(
        self, port: int, address: IPAddress | None = None, backlog: int = 128
    ) -> TcpListener:
        key = (address.packed if address else None, port)
        if not 0 < port <= 0xFFFF:
            raise ValueError("port out of range")
        if key in self._listeners:
            raise AddressInUse(f"already listening on port {port}")
        listener = TcpListener(key[0], port, backlog)
        self._listeners[key] = listener
        self._take_port(port)
        return listener

    def tcp_listen_any(self, backlog: int = 1024) -> TcpListener:
        """Accept a SYN to ANY address and port (the exit's userspace NAT).

        The accepted connection's `local` is the destination the SYN named.
        Connections and listeners that match more precisely take precedence.
        """
        if self._any_listener is not None:
            raise AddressInUse("an any-destination listener exists")
        self._any_listener = TcpListener(None, None, backlog)
        return self._any_listener

    def close_listener(self, listener: TcpListener, now: float) -> None:
        if listener.closed:
            return
        listener.closed = True
        if listener.port is None:
            self._any_listener = None
        else:
            self._listeners.pop((listener.address, listener.port), None)
            self._free_port(listener.port)
        for sock in list(listener.handshaking) + list(listener.ready):
            sock.listener = None
            sock.abort(now)
        listener.handshaking.clear()
        listener.ready.clear()

    @property
    def connections(self) -> list[TcpSocket]:
        return list(self._tcp.values())

    def has_unsent(self, remotes: Collection[IPAddress] | None = None) -> bool:
        """Whether a TCP connection (to one of `remotes`, or any) holds data not yet sent:
        its windows hold it back, so more packets follow the peer's ACKs."""
        for sock in self._tcp.values():
            if sock.conn.unsent > 0 and (remotes is None or sock.remote[0] in remotes):
                return True
        return False

    # ---- UDP API ----

    def udp_bind(
        self,
        port: int = 0,
        address: IPAddress | None = None,
        max_datagrams: int = 16,
        max_bytes: int = 65535,
    ) -> UdpSocket:
        port = port or self.allocate_port()
        key = (address.packed if address else None, port)
        if key in self._udp:
            raise AddressInUse(f"UDP port {port} in use")
        sock = UdpSocket(address, port, False, max_datagrams, max_bytes)
        self._udp[key] = sock
        self._take_port(port)
        return sock

    def udp_bind_any(self, max_datagrams: int = 1024, max_bytes: int = 1 << 20) -> UdpSocket:
        """Receive UDP to any address and port not bound otherwise (exit NAT)."""
        if self._udp_any is not None:
            raise AddressInUse("an any-destination UDP socket exists")
        self._udp_any = UdpSocket(None, 0, True, max_datagrams, max_bytes)
        return self._udp_any

    def udp_close(self, sock: UdpSocket) -> None:
        if sock.closed:
            return
        sock.closed = True
        if sock.any_destination:
            self._udp_any = None
            return
        key = (sock.address.packed if sock.address else None, sock.port)
        if self._udp.get(key) is sock:
            del self._udp[key]
            self._free_port(sock.port)

    def udp_sendto(
        self,
        sock: UdpSocket,
        data: bytes | bytearray | memoryview,
        dest: Endpoint,
        src: Endpoint | None = None,
    ) -> None:
        """Queue one datagram. `src` overrides the source (any-destination replies)."""
        daddr, dport = dest
        if not 0 < dport <= 0xFFFF:
            raise ValueError("destination port out of range")
        if src is not None:
            saddr, sport = src
        else:
            saddr = sock.address or self.source_for(daddr)
            sport = sock.port
        if saddr.version != daddr.version:
            raise ValueError("source and destination address families differ")
        room = self.mtu - (28 if daddr.version == 4 else 48)
        if len(data) > room:
            raise DatagramTooLarge(f"{len(data)} bytes > {room} (MTU {self.mtu})")
        s, d = saddr.packed, daddr.packed
        pseudo = pseudo_header_raw(s, d, PROTO_UDP, 8 + len(data))
        self._out.append(encode_ip(s, d, PROTO_UDP, encode_udp(sport, dport, bytes(data), pseudo)))

    def icmp_echo(
        self, dest: IPAddress, ident: int, seq: int, payload: bytes | bytearray | memoryview = b""
    ) -> None:
        """Queue an echo request; replies land in `echo_replies` (event `ECHO_REPLIES`)."""
        payload = bytes(payload)
        src = self.source_for(dest)
        s, d = src.packed, dest.packed
        if dest.version == 4:
            msg = icmp.IcmpMessage(icmp.V4_ECHO_REQUEST, 0, (ident << 16) | seq, payload)
            self._out.append(encode_ip(s, d, PROTO_ICMP, icmp.encode_icmp(msg)))
        else:
            msg = icmp.IcmpMessage(icmp.V6_ECHO_REQUEST, 0, (ident << 16) | seq, payload)
            pseudo = pseudo_header_raw(s, d, PROTO_ICMPV6, 8 + len(payload))
            self._out.append(encode_ip(s, d, PROTO_ICMPV6, icmp.encode_icmp(msg, pseudo)))

    # ---- the sans-io loop ----

    def poll_transmit(self, now: float) -> list[bytes]:
        """IP packets to send now (everything queued since the last call)."""
        if self._pending:
            self._flush_pending()
        out, self._out = self._out, []
        return out

    def take_events(self) -> set[object]:
        """Sockets and listeners whose state changed since the last call (for the shell)."""
        if self._pending:
            self._flush_pending()
        dirty, self._dirty = self._dirty, set()
        return dirty

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for sock, when in pending.items():
            self._after_input(sock, when)

    def poll_deadline(self) -> float | None:
        """The next time `handle_timeout` has work (may be early, never late)."""
        if self._pending:
            self._flush_pending()
        timers = self._timers
        while timers:
            when, _, sock = timers[0]
            if sock._deadline == when and self._tcp.get(sock._key) is sock:
                break
            heapq.heappop(timers)
        first = timers[0][0] if timers else None
        reasm = self.reassembler.poll_deadline()
        if reasm is not None and (first is None or reasm < first):
            return reasm
        return first

    def handle_timeout(self, now: float) -> None:
        if self._pending:
            self._flush_pending()
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _, sock = heapq.heappop(timers)
            if sock._deadline != when or self._tcp.get(sock._key) is not sock:
                continue
            sock._deadline = None
            real = self._deadline_of(sock)
            if real is None:
                continue
            if real > now:  # the timer moved later since it was scheduled (lazy timers)
                sock._deadline = real
                heapq.heappush(timers, (real, next(self._timer_seq), sock))
                continue
            try:
                if sock._orphan_deadline is not None and now >= sock._orphan_deadline:
                    self.counters["tcp_orphan_aborted"] += 1
                    sock._orphan_deadline = None
                    sock.conn.abort()
                else:
                    sock.conn.handle_timeout(now)
                self._after_input(sock, now)
            except Exception:  # an engine bug must not take the whole stack down
                log.exception("TCP timer handling failed")
                self.counters["internal_error"] += 1
        expired = self.reassembler.expire(now)
        if expired:
            self.counters["fragment_timeout"] += expired

    def receive_packet(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Take one IP packet from the interface; never raises for bad input."""
        try:
            self._receive(data if data.__class__ is bytes else bytes(data), now)
        except PacketError as exc:
            self.counters[exc.reason] += 1
        except MalformedPacket as bad:  # (not `exc` again: mypyc types the name once)
            self.counters["bad_checksum" if "checksum" in str(bad) else "bad_transport"] += 1
        except Exception:
            log.exception("unexpected error handling a packet")
            self.counters["internal_error"] += 1

    # ---- receive path ----

    def _receive(self, data: bytes, now: float) -> None:
        if data and data[0] == 0x45 and self._fast_tcp4(data, now):
            return
        pkt = decode_ip(data)
        src = pkt.src
        if src[0] >= 224 if len(src) == 4 else src[0] == 0xFF:
            raise PacketError("bad_source", "multicast or broadcast source")
        if src in _UNSPECIFIED:
            raise PacketError("bad_source", "unspecified source")
        if pkt.dst not in self._ours and not _unicast(pkt.dst):
            self.counters["not_unicast"] += 1  # multicast (MLD, mDNS...): never ours to answer
            return
        if pkt.frag is not None:
            self.counters["fragments"] += 1
            whole = self.reassembler.add(pkt, now)
            if whole is None:
                return
            self.counters["reassembled"] += 1
            pkt = whole
        proto = pkt.protocol
        if proto == PROTO_TCP:
            self._receive_tcp(pkt, now)
        elif proto == PROTO_UDP:
            self._receive_udp(pkt, now)
        elif (proto == PROTO_ICMP and pkt.version == 4) or (
            proto == PROTO_ICMPV6 and pkt.version == 6
        ):
            self._receive_icmp(pkt, now)
        else:
            self.counters["unknown_protocol"] += 1
            if pkt.dst in self._ours:
                self._send_icmp_error(
                    pkt.dst, pkt.src, icmp.protocol_unreachable(pkt.raw, pkt.version), now
                )

    def _segment_for(self, sock: TcpSocket, seg: TcpSegment, now: float) -> None:
        conn = sock.conn
        conn.handle_segment(seg, now)
        if sock.listener is None and not conn.is_closed:
            # Output waits for the end of the batch (the next poll), as a NIC's
            # receive coalescing lets a kernel do: a burst of segments gets one
            # cumulative ACK, and a burst of ACKs one round of sending, instead
            # of one per segment. ACKs that must leave at once (quickack,
            # duplicate ACKs) the connection queues itself.
            self._pending[sock] = now
        else:
            self._pending.pop(sock, None)
            self._after_input(sock, now)

    def _fast_tcp4(self, data: bytes, now: float) -> bool:
        """A plain IPv4 TCP packet for an open connection, without building an IpPacket.

        Anything else (options, fragments, not for us, odd sources, no connection)
        returns False before counting anything, and the general path takes it.
        """
        n = len(data)
        if n < 40 or data[9] != PROTO_TCP or data[6] & 0x3F or data[7]:
            return False
        total = (data[2] << 8) | data[3]
        dst = data[16:20]
        if (
            total < 40
            or total > n
            or data[12] >= 224
            or dst not in self._ours
            or int.from_bytes(data[:20], "big") % 0xFFFF
        ):
            return False
        src = data[12:16]
        if src == _ZERO4:
            return False
        seg = decode_tcp(data[20:total], src + dst + _TCP4_TAIL.pack(PROTO_TCP, total - 20))
        sock = self._tcp.get((dst, seg.dst_port, src, seg.src_port))
        if sock is None:
            return False  # listeners, resets: the general path (decodes again, rare)
        self._segment_for(sock, seg, now)
        return True

    def _receive_tcp(self, pkt: IpPacket, now: float) -> None:
        payload = pkt.payload
        if pkt.version == 4:
            pseudo = pkt.src + pkt.dst + _TCP4_TAIL.pack(PROTO_TCP, len(payload))
        else:
            pseudo = pseudo_header_raw(pkt.src, pkt.dst, PROTO_TCP, len(payload))
        seg = decode_tcp(payload, pseudo)
        sock = self._tcp.get((pkt.dst, seg.dst_port, pkt.src, seg.src_port))
        if sock is not None:
            self._segment_for(sock, seg, now)
            return
        ours = pkt.dst in self._ours
        listener = None
        if ours:
            listener = self._listeners.get((pkt.dst, seg.dst_port)) or self._listeners.get(
                (None, seg.dst_port)
            )
        elif self._any_listener is not None:
            listener = self._any_listener  # NAT mode covers other hosts, never our own ports
        if listener is None and not ours:
            self.counters["not_ours"] += 1
            return
        if listener is not None and seg.flags & (SYN | ACK | RST | FIN) == SYN:
            if len(listener.handshaking) + len(listener.ready) >= listener.backlog:
                self.counters["tcp_backlog_full"] += 1
                return
            if seg.src_port == 0 or seg.dst_port == 0:
                self.counters["bad_port"] += 1
                return
            local = (to_address(pkt.dst), seg.dst_port)
            remote = (to_address(pkt.src), seg.src_port)
            conn = TcpConnection.accept(seg, local, remote, self.config_for(pkt.version), now)
            sock = self._register(conn, owns_port=False)
            sock.listener = listener
            listener.handshaking.add(sock)
            self._after_input(sock, now)
            return
        self.counters["tcp_no_socket"] += 1
        rst = reset_for(seg)
        if rst is not None:
            self._emit_tcp(pkt.dst, pkt.src, rst)

    def _receive_udp(self, pkt: IpPacket, now: float) -> None:
        sport, dport, data = decode_udp(
            pkt.payload, pseudo_header_raw(pkt.src, pkt.dst, PROTO_UDP, len(pkt.payload))
        )
        ours = pkt.dst in self._ours
        sock = self._udp.get((pkt.dst, dport))
        if sock is None:
            sock = self._udp.get((None, dport)) if ours else self._udp_any
        if sock is None:
            self.counters["udp_no_socket"] += 1
            if ours:
                self._send_icmp_error(
                    pkt.dst, pkt.src, icmp.port_unreachable(pkt.raw, pkt.version), now
                )
            else:
                self.counters["not_ours"] += 1
            return
        dgram = Datagram(data, (to_address(pkt.src), sport), (to_address(pkt.dst), dport))
        if sock.deliver(dgram):
            self._dirty.add(sock)
        else:
            self.counters["udp_queue_full"] += 1

    def _receive_icmp(self, pkt: IpPacket, now: float) -> None:
        v = pkt.version
        pseudo = (
            b"" if v == 4 else pseudo_header_raw(pkt.src, pkt.dst, PROTO_ICMPV6, len(pkt.payload))
        )
        msg = icmp.decode_icmp(pkt.payload, pseudo)
        ours = pkt.dst in self._ours
        if msg.type == (icmp.V4_ECHO_REQUEST if v == 4 else icmp.V6_ECHO_REQUEST):
            if ours:
                self.counters["icmp_echo_answered"] += 1
                self._send_icmp(pkt.dst, pkt.src, icmp.echo_reply(msg, v))
            else:
                self.counters["not_ours"] += 1
            return
        if msg.type == (icmp.V4_ECHO_REPLY if v == 4 else icmp.V6_ECHO_REPLY):
            self.counters["icmp_echo_reply"] += 1
            if ours:
                self.echo_replies.append((to_address(pkt.src), msg.echo_id, msg.echo_seq, msg.body))
                self._dirty.add(ECHO_REPLIES)
            return
        if msg.type not in (icmp.V4_ERROR_TYPES if v == 4 else icmp.V6_ERROR_TYPES):
            self.counters["icmp_ignored"] += 1
            return
        quote = icmp.parse_quote(msg.body, v)
        if quote.protocol != PROTO_TCP:
            self.counters["icmp_error_udp"] += 1
            return
        sock = self._tcp.get((quote.src, quote.src_port, quote.dst, quote.dst_port))
        if sock is None:
            self.counters["icmp_error_no_socket"] += 1
            return
        conn = sock.conn
        mtu = icmp.next_hop_mtu(msg, v)
        if mtu is not None:
            self.counters["icmp_packet_too_big"] += 1
            floor = 576 if v == 4 else 1280
            mtu = max(min(mtu, self.mtu), floor)
            conn.set_mss(mtu - (40 if v == 4 else 60))
            self._after_input(sock, now)
            return
        if icmp.is_hard_unreachable(msg, v) and not conn.is_established:
            self.counters["icmp_unreachable_connect"] += 1
            conn.on_unreachable(now)  # fatal only while connecting (RFC 1122 4.2.3.9)
            self._after_input(sock, now)
            return
        self.counters["icmp_error_ignored"] += 1

    # ---- transmit path and bookkeeping ----

    def _register(self, conn: TcpConnection, owns_port: bool) -> TcpSocket:
        (laddr, lport), (raddr, rport) = conn.local, conn.remote
        key = (laddr.packed, lport, raddr.packed, rport)
        sock = TcpSocket(self, conn, key, owns_port)
        self._tcp[key] = sock
        if owns_port:
            self._take_port(lport)
        return sock

    def _unregister(self, sock: TcpSocket) -> None:
        if self._tcp.get(sock._key) is sock:
            del self._tcp[sock._key]
            if sock.owns_port:
                self._free_port(sock._key[1])
        if sock.listener is not None:
            sock.listener.handshaking.discard(sock)
            sock.listener = None

    def _after_input(self, sock: TcpSocket, now: float) -> None:
        """Drain the connection's output, move it through the listener, reschedule."""
        conn = sock.conn
        segs = conn.poll_transmit(now)
        if segs:
            key = sock._key
            src, dst, pseudo0, base = key[0], key[2], sock._pseudo0, sock._ip_base
            out = self._out
            for seg in segs:
                out.append(encode_tcp_ip(src, dst, seg, pseudo0, base))
        # An event only when what an application waits on changed: state, data
        # to read, end of data, error, or send room crossing a third of the buffer
        # (Linux's sk_stream_min_wspace). A writer blocked on a full buffer was
        # otherwise woken by every ACK to queue one or two segments' worth.
        view = (
            conn.state,
            conn.readable > 0,
            conn.at_eof,
            conn.error,
            conn.send_space() * 3 >= conn.config.send_buffer,
        )
        if view != sock._app_view:
            sock._app_view = view
            self._dirty.add(sock)
        listener = sock.listener
        if listener is not None:
            if conn.is_established:
                listener.handshaking.discard(sock)
                sock.listener = None
                listener.ready.append(sock)
                self._dirty.add(listener)
            elif conn.is_closed or conn.error is not None:
                listener.handshaking.discard(sock)
                sock.listener = None
        if conn.is_closed:
            self._unregister(sock)
            sock._deadline = None
            return
        deadline = conn.poll_deadline()
        if sock._orphan_deadline is not None and (
            deadline is None or sock._orphan_deadline < deadline
        ):
            deadline = sock._orphan_deadline
        # Lazy timers: reschedule only when the deadline moves earlier; an entry that
        # fires early re-arms itself (the RTO moves later on nearly every ACK).
        if deadline is not None and (sock._deadline is None or deadline < sock._deadline):
            sock._deadline = deadline
            heapq.heappush(self._timers, (deadline, next(self._timer_seq), sock))
            if len(self._timers) > 64 + 4 * len(self._tcp):
                self._compact_timers()

    @staticmethod
    def _deadline_of(sock: TcpSocket) -> float | None:
        deadline = sock.conn.poll_deadline()
        orphan = sock._orphan_deadline
        if orphan is not None and (deadline is None or orphan < deadline):
            return orphan
        return deadline

    def _compact_timers(self) -> None:
        self._timers = [
            t for t in self._timers if t[2]._deadline == t[0] and self._tcp.get(t[2]._key) is t[2]
        ]
        heapq.heapify(self._timers)

    def _emit_tcp(self, src: bytes, dst: bytes, seg: TcpSegment) -> None:
        pseudo0 = pseudo_header_raw(src, dst, PROTO_TCP, 0)
        base = ipv4_tcp_base_sum(src, dst) if len(src) == 4 else -1
        self._out.append(encode_tcp_ip(src, dst, seg, pseudo0, base))

    def _send_icmp_error(self, src: bytes, dst: bytes, msg: icmp.IcmpMessage, now: float) -> None:
        """ICMP errors go through a token bucket (RFC 4443 §2.4 f; RFC 1812 4.3.2.8)."""
        rate, burst = self.icmp_error_rate
        self._icmp_tokens = min(burst, self._icmp_tokens + (now - self._icmp_last) * rate)
        self._icmp_last = now
        if self._icmp_tokens < 1.0:
            self.counters["icmp_rate_limited"] += 1
            return
        self._icmp_tokens -= 1.0
        self._send_icmp(src, dst, msg)

    def _send_icmp(self, src: bytes, dst: bytes, msg: icmp.IcmpMessage) -> None:
        self.counters["icmp_sent"] += 1
        if len(src) == 4:
            self._out.append(encode_ip(src, dst, PROTO_ICMP, icmp.encode_icmp(msg)))
        else:
            pseudo = pseudo_header_raw(src, dst, PROTO_ICMPV6, 8 + len(msg.body))
            self._out.append(encode_ip(src, dst, PROTO_ICMPV6, icmp.encode_icmp(msg, pseudo)))

    def stats(self) -> dict[str, Any]:
        return {
            "tcp_connections": len(self._tcp),
            "tcp_listeners": len(self._listeners) + (self._any_listener is not None),
            "udp_sockets": len(self._udp) + (self._udp_any is not None),
            "fragments_pending": len(self.reassembler),
            **self.counters,
        }


_UNSPECIFIED = frozenset({bytes(4), bytes(16)})
_ZERO4 = bytes(4)


def _unicast(addr: bytes) -> bool:
    """Not multicast, limited broadcast or unspecified (RFC 1122 3.2.1.3, RFC 4291 2.7)."""
    if len(addr) == 4:
        return addr[0] < 224 and addr != b"\x00\x00\x00\x00"
    return addr[0] != 0xFF and addr != bytes(16)


_TCP4_TAIL = struct.Struct("!HH")  # IPv4 pseudo header tail: (zero, protocol), length
