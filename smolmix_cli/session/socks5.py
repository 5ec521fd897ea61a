"""A SOCKS5 front (RFC 1928) so other programs ride the session's tunnel.

`curl --socks5-hostname`, `git -c http.proxy=socks5h://...`: CONNECT to a
domain name (resolved through the tunnel, never here), an IPv4 or an IPv6
literal; UDP ASSOCIATE for request/response datagrams such as DNS (each
datagram is one exchange through the tunnel; no fragments). No
authentication, so the server binds loopback unless told otherwise, and on
Linux refuses loopback clients whose socket another user owns; BIND is
refused. The codec below is sans-io; `Socks5Server` is its anyio shell.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc

VERSION = 5
NO_AUTH = 0x00
NO_ACCEPTABLE = 0xFF
CMD_CONNECT, CMD_BIND, CMD_UDP_ASSOCIATE = 1, 2, 3
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4
REP_SUCCEEDED = 0x00
REP_GENERAL_FAILURE = 0x01
REP_NOT_ALLOWED = 0x02
REP_NETWORK_UNREACHABLE = 0x03
REP_HOST_UNREACHABLE = 0x04
REP_CONNECTION_REFUSED = 0x05
REP_TTL_EXPIRED = 0x06
REP_COMMAND_NOT_SUPPORTED = 0x07
REP_ADDRESS_TYPE_NOT_SUPPORTED = 0x08
HANDSHAKE_TIMEOUT = 10.0
UDP_EXCHANGE_TIMEOUT = 10.0


class Socks5Error(Exception):
    """Bytes that are not SOCKS5 (or a request we answer with an error reply)."""

    def __init__(self, message: str, reply: int = REP_GENERAL_FAILURE) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class SocksRequest:
    command: int
    host: str  # a domain name or an IP literal (IPv6 without brackets)
    port: int


# -- codec --------------------------------------------------------------------------------------


def parse_greeting(buf: bytes) -> tuple[tuple[int, ...], int] | None:
    """(methods offered, bytes used), or None if more bytes are needed."""
    if len(buf) < 2:
        return None
    if buf[0] != VERSION:
        raise Socks5Error(f"not SOCKS5 (version byte {buf[0]})")
    end = 2 + buf[1]
    if buf[1] == 0:
        raise Socks5Error("greeting offers no methods")
    if len(buf) < end:
        return None
    return tuple(buf[2:end]), end


def choose_method(methods: tuple[int, ...]) -> bytes:
    return bytes([VERSION, NO_AUTH if NO_AUTH in methods else NO_ACCEPTABLE])


def _parse_address(buf: bytes, at: int) -> tuple[str, int, int] | None:
    """(host, port, end offset) of ATYP|ADDR|PORT at `at`, or None if incomplete."""
    if len(buf) <= at:
        return None
    atyp = buf[at]
    if atyp == ATYP_IPV4:
        end = at + 1 + 4
        if len(buf) < end + 2:
            return None
        host = str(ipaddress.IPv4Address(buf[at + 1 : end]))
    elif atyp == ATYP_IPV6:
        end = at + 1 + 16
        if len(buf) < end + 2:
            return None
        host = str(ipaddress.IPv6Address(buf[at + 1 : end]))
    elif atyp == ATYP_DOMAIN:
        if len(buf) < at + 2:
            return None
        size = buf[at + 1]
        end = at + 2 + size
        if len(buf) < end + 2:
            return None
        try:
            host = buf[at + 2 : end].decode("ascii")
        except UnicodeDecodeError:
            raise Socks5Error("domain name is not ASCII", REP_HOST_UNREACHABLE) from None
        if not host or any(c in host for c in "\x00/ ") or len(host) > 253:
            raise Socks5Error("bad domain name", REP_HOST_UNREACHABLE)
    else:
        raise Socks5Error(f"address type {atyp}", REP_ADDRESS_TYPE_NOT_SUPPORTED)
    (port,) = struct.unpack_from(">H", buf, end)
    return host, port, end + 2


def parse_request(buf: bytes) -> tuple[SocksRequest, int] | None:
    """(request, bytes used), or None if more bytes are needed."""
    if len(buf) < 4:
        return None
    version, command, reserved = buf[0], buf[1], buf[2]
    if version != VERSION:
        raise Socks5Error(f"request version {version}")
    if reserved != 0:
        raise Socks5Error("reserved byte is not zero")
    parsed = _parse_address(buf, 3)
    if parsed is None:
        return None
    host, port, end = parsed
    if command not in (CMD_CONNECT, CMD_BIND, CMD_UDP_ASSOCIATE):
        raise Socks5Error(f"command {command}", REP_COMMAND_NOT_SUPPORTED)
    return SocksRequest(command, host, port), end


def encode_address(host: str, port: int) -> bytes:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("ascii")
        if not 0 < len(name) < 256:
            raise Socks5Error("domain name length out of range") from None
        return bytes([ATYP_DOMAIN, len(name)]) + name + struct.pack(">H", port)
    atyp = ATYP_IPV4 if address.version == 4 else ATYP_IPV6
    return bytes([atyp]) + address.packed + struct.pack(">H", port)


def reply(code: int, host: str = "0.0.0.0", port: int = 0) -> bytes:
    return bytes([VERSION, code, 0]) + encode_address(host, port)


def parse_udp(datagram: bytes) -> tuple[str, int, bytes]:
    """(host, port, payload) of a client's UDP datagram; fragments are refused."""
    if len(datagram) < 4 or datagram[0:2] != b"\x00\x00":
        raise Socks5Error("bad UDP request header")
    if datagram[2] != 0:
        raise Socks5Error("UDP fragments are not supported")
    parsed = _parse_address(datagram, 3)
    if parsed is None:
        raise Socks5Error("truncated UDP request header")
    host, port, end = parsed
    return host, port, datagram[end:]


def udp_datagram(host: str, port: int, payload: bytes) -> bytes:
    return b"\x00\x00\x00" + encode_address(host, port) + payload


# client side (for `smolmix` tests and tools that drive a SOCKS5 server)


def client_greeting() -> bytes:
    return bytes([VERSION, 1, NO_AUTH])


def client_request(command: int, host: str, port: int) -> bytes:
    return bytes([VERSION, command, 0]) + encode_address(host, port)


def parse_reply(buf: bytes) -> tuple[int, str, int, int] | None:
    """(reply code, bound host, bound port, bytes used), or None if more bytes are needed."""
    if len(buf) < 4:
        return None
    if buf[0] != VERSION:
        raise Socks5Error(f"reply version {buf[0]}")
    parsed = _parse_address(buf, 3)
    if parsed is None:
        return None
    host, port, end = parsed
    return buf[1], host, port, end


def error_reply_code(exc: BaseException) -> int:
    """The SOCKS5 reply for a tunnel failure: its most specific class in the table below."""
    from smolmix_cli.apps.errors import ConnectError, OperationTimeout, ResolveError
    from smolmix_cli.tunnel.errors import ExitPolicyDenied, TunnelUnavailable

    replies: dict[type[BaseException], int] = {
        ExitPolicyDenied: REP_NOT_ALLOWED,
        ConnectError: REP_CONNECTION_REFUSED,
        ResolveError: REP_HOST_UNREACHABLE,
        OperationTimeout: REP_TTL_EXPIRED,
        TimeoutError: REP_TTL_EXPIRED,
        TunnelUnavailable: REP_NETWORK_UNREACHABLE,
    }
    for cls in type(exc).__mro__:
        if cls in replies:
            return replies[cls]
    return REP_GENERAL_FAILURE


def proc_net_address(host: str, port: int) -> str:
    """An endpoint as /proc/net/tcp{,6} spells it: the address in host-order 32-bit words."""
    packed = ipaddress.ip_address(host).packed
    words = [
        packed[i : i + 4][::-1] if sys.byteorder == "little" else packed[i : i + 4]
        for i in range(0, len(packed), 4)
    ]
    return b"".join(words).hex().upper() + f":{port:04X}"


def socket_owner(table: str, local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The uid owning the TCP socket local->remote in a /proc/net/tcp{,6} table, if listed."""
    want_local, want_remote = proc_net_address(*local), proc_net_address(*remote)
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 7 and fields[1] == want_local and fields[2] == want_remote:
            try:
                return int(fields[7])
            except ValueError:
                return None
    return None


# -- anyio shell ---------------------------------------------------------------------------------


def loopback_peer_uid(conn: anyio.abc.SocketStream) -> int | None:
    """Which local user connected (Linux, loopback peers only): the owner of the peer's socket.

    None when that cannot be known (another OS, a remote peer, the entry already gone).
    """
    # A peer that reset at once has no address any more: anyio then omits the
    # attribute, so every lookup carries a default.
    local = conn.extra(anyio.abc.SocketAttribute.local_address, None)
    remote = conn.extra(anyio.abc.SocketAttribute.remote_address, None)
    if local is None or remote is None:
        return None
    try:
        peer = (str(remote[0]), int(remote[1]))
        ours = (str(local[0]), int(local[1]))
        if not ipaddress.ip_address(peer[0]).is_loopback:
            return None
        name = "/proc/net/tcp6" if ":" in peer[0] else "/proc/net/tcp"
        with open(name) as handle:
            return socket_owner(handle.read(), peer, ours)
    except (OSError, ValueError, TypeError, IndexError):
        return None


class Socks5Server:
    """Serve SOCKS5 on host:port through `connector` (open_tcp, udp_exchange)."""

    def __init__(
        self,
        connector: Any,
        on_stream: Callable[[int, int], None] | None = None,
        allowed_uid: int | None = None,
    ) -> None:
        self.connector = connector
        self.on_stream = on_stream
        self.counters: Any = getattr(connector, "counters", None)
        self.allowed_uid = allowed_uid  # refuse loopback clients of other users (Linux)
        self.refused = 0
        self.failures = 0

    async def serve(
        self,
        host: str,
        port: int,
        *,
        task_status: anyio.abc.TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        bound = listener.extra(anyio.abc.SocketAttribute.local_address)
        task_status.started((str(bound[0]), int(bound[1])))
        await self.serve_listener(listener)

    async def serve_listener(self, listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
        from smolmix_cli.accept import serve_contained

        async with listener:
            await serve_contained(listener, self.handle, self._failed)

    def _failed(self, exc: BaseException) -> None:
        """One client's failure (or an accept error): counted, never the server's end."""
        self.failures += 1
        if self.counters is not None:
            self.counters.peer_failures += 1

    async def handle(self, conn: anyio.abc.SocketStream) -> None:
        async with conn:
            if self.allowed_uid is not None:
                owner = loopback_peer_uid(conn)
                if owner is not None and owner != self.allowed_uid:
                    self.refused += 1
                    if self.counters is not None:
                        self.counters.refused_peers += 1
                    return  # another local user: no tunnel for them
            buf = b""
            try:
                with anyio.fail_after(HANDSHAKE_TIMEOUT):
                    while (greeting := parse_greeting(buf)) is None:
                        buf += await conn.receive()
                    methods, used = greeting
                    buf = buf[used:]
                    await conn.send(choose_method(methods))
                    if NO_AUTH not in methods:
                        return
                    while True:
                        try:
                            parsed = parse_request(buf)
                        except Socks5Error as exc:
                            await conn.send(reply(exc.reply))
                            return
                        if parsed is not None:
                            break
                        buf += await conn.receive()
            except (
                Socks5Error,
                TimeoutError,
                anyio.EndOfStream,
                anyio.BrokenResourceError,
                OSError,
            ):
                return
            request, used = parsed
            buf = buf[used:]
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                if request.command == CMD_CONNECT:
                    await self._connect(conn, request, buf)
                elif request.command == CMD_UDP_ASSOCIATE:
                    await self._associate(conn)
                else:
                    await conn.send(reply(REP_COMMAND_NOT_SUPPORTED))

    async def _connect(
        self, conn: anyio.abc.SocketStream, request: SocksRequest, first: bytes
    ) -> None:
        from smolmix_cli.session.splice import splice

        try:
            stream = await self.connector.open_tcp(request.host, request.port)
        except Exception as exc:
            await conn.send(reply(error_reply_code(exc)))
            return
        async with stream:
            await conn.send(reply(REP_SUCCEEDED))
            up, down = await splice(conn, stream, first, self.counters)
        if self.on_stream is not None:
            self.on_stream(up, down)

    async def _associate(self, conn: anyio.abc.SocketStream) -> None:
        """Relay the client's datagrams until its control connection closes (RFC 1928 §7)."""
        local = conn.extra(anyio.abc.SocketAttribute.local_address, None)
        remote = conn.extra(anyio.abc.SocketAttribute.remote_address, None)
        if local is None or remote is None:
            return  # the client is already gone
        client_ip = str(remote[0])
        v6 = ":" in str(local[0])
        async with await anyio.create_udp_socket(
            family=socket.AF_INET6 if v6 else socket.AF_INET, local_host=str(local[0])
        ) as udp:
            bound = udp.extra(anyio.abc.SocketAttribute.local_address)
            await conn.send(reply(REP_SUCCEEDED, str(bound[0]), int(bound[1])))
            async with anyio.create_task_group() as tg:

                async def control() -> None:
                    with contextlib.suppress(Exception):
                        while await conn.receive():
                            pass
                    tg.cancel_scope.cancel()

                async def exchange(
                    host: str, port: int, payload: bytes, to: tuple[str, int]
                ) -> None:
                    try:
                        answer = await self.connector.udp_exchange(
                            host, port, payload, UDP_EXCHANGE_TIMEOUT
                        )
                    except Exception:
                        return  # UDP: no answer is the only error signal
                    with contextlib.suppress(Exception):
                        await udp.sendto(udp_datagram(host, port, answer), *to)

                tg.start_soon(control)
                async for datagram, (source_ip, source_port) in udp:
                    if str(source_ip) != client_ip:
                        continue  # only the client that asked may use the association
                    try:
                        host, port, payload = parse_udp(datagram)
                    except Socks5Error:
                        continue
                    tg.start_soon(exchange, host, port, payload, (str(source_ip), int(source_port)))


def parse_listen(text: str) -> tuple[str, int]:
    """`--socks5` value: PORT, HOST:PORT or [V6]:PORT; the host defaults to loopback."""
    text = text.strip()
    host = "127.0.0.1"
    port_text = text
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]:")
        port_text = rest if sep else ""
    elif ":" in text:
        host, port_text = text.rsplit(":", 1)
    if not port_text.isdigit() or not 0 <= int(port_text) <= 0xFFFF:
        raise ValueError(f"bad port in {text!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ValueError(f"the SOCKS5 address must be an IP literal: {host!r}") from None
        host = "127.0.0.1"
    return host, int(port_text)
