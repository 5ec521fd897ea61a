"""The background session: one warm tunnel served to this user's commands over a Unix socket.

The socket is bound before the tunnel boots, so commands that arrive during
the boot queue on it and share that one boot. A tunnel that fails after it was
ready is replaced (a new generation) without the socket going away; requests
that hit the failure are retried once on the new tunnel. The first boot's
failure ends the daemon and is reported to every waiting command, so
`--session start` fails exactly as an in-process boot would.

Every connection is checked with SO_PEERCRED: only our own uid is served
(the 0700 directory and 0600 socket already keep others out; this holds even
if they are loosened). The daemon never opens OS sockets to destinations:
streams go through the tunnel, only the loopback SOCKS5 front listens.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.abc

from smolmix_cli.accept import serve_contained
from smolmix_cli.exit_codes import CliError, ExitCode, first_failure
from smolmix_cli.session import protocol as proto
from smolmix_cli.session.cork import Cork
from smolmix_cli.session.exit_watch import PROBE_TIMEOUT_S, PROBES, SilenceWatch
from smolmix_cli.session.paths import SessionPaths, probe
from smolmix_cli.session.splice import Counters, splice
from smolmix_cli.session.unix import UnixListener
from smolmix_cli.session.warm import (
    ExchangeWatch,
    OriginKey,
    TlsContexts,
    Warm,
    WarmPool,
    ca_digest,
    serve_exchanges,
)
from smolmix_cli.tunnel.status import TunnelStatus

REQUEST_TIMEOUT = 10.0  # a command has this long to send its request frame
RETRY_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)
DEFAULT_IDLE_TIMEOUT = 600.0  # OpenSSH ControlPersist habit: ten minutes


class TunnelLike(Protocol):
    """What the daemon needs of a tunnel: the apps Connector plus resolve and stats."""

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream: ...

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes: ...

    async def resolve(self, name: str) -> list[str]: ...

    def snapshot(self) -> TunnelStatus: ...


class BootedLike(Protocol):
    """A booted session (factory.Session): what the daemon needs of it is its tunnel, and
    the CA its network's origins use (for attached commands, `status`)."""

    @property
    def tunnel(self) -> TunnelLike: ...

    @property
    def ca_pem(self) -> str | None: ...


TunnelSource = Callable[[], AbstractAsyncContextManager[BootedLike]]
Classifier = Callable[[BaseException], CliError]
"""Failure -> one line and exit code: smolmix_cli.errors_map.classify, given by the caller
(the classification sits above the session layer; the daemon only serves its answers)."""


class SessionDaemonError(Exception):
    """The daemon cannot run (another session already listens on the socket)."""


@dataclass
class DaemonConfig:
    network_name: str
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT  # None: never
    socks5: tuple[str, int] | None = None
    boot_timeout: float = 60.0
    handle_signals: bool = False
    allowed_uid: int = field(default_factory=os.getuid)
    tunnel_args: tuple[str, ...] = ()  # the options that shaped the tunnel (options.tunnel_args)


def peer_allowed(stream: anyio.abc.SocketStream, uid: int) -> tuple[bool, int | None]:
    """(allowed, peer uid): Linux asks SO_PEERCRED; elsewhere the 0700 directory and 0600
    socket are the check (the peer uid is then unknown)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True, None
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    if raw is None:
        return False, None
    try:
        data = raw.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
        _pid, peer, _gid = struct.unpack("3i", data)
    except (OSError, struct.error):
        return False, None
    return peer == uid, int(peer)


class SessionDaemon:
    """`await tg.start(daemon.serve)` returns once the socket listens; `stop()` ends it."""

    def __init__(
        self,
        paths: SessionPaths,
        config: DaemonConfig,
        source: TunnelSource,
        *,
        classify: Classifier,
    ) -> None:
        self.paths = paths
        self.config = config
        self.source = source
        self.classify = classify
        self.counters = Counters()
        self.warm = WarmPool()
        self.tls_contexts = TlsContexts()
        self.generation = 0
        self.started = time.time()
        self.ready_since: float | None = None
        self.socks5_address: tuple[str, int] | None = None
        self.booted: BootedLike | None = None
        self._boot_error: BaseException | None = None
        self._restart_error: BaseException | None = None
        self.last_failure: str | None = None  # why the previous generation ended
        self._changed = anyio.Event()
        self._active = 0
        self._last_activity = time.monotonic()
        self._scope: anyio.CancelScope | None = None
        self._socket_ino: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        socks_listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        if self.config.socks5 is not None:  # before the socket: a busy port fails the start
            host, port = self.config.socks5
            socks_listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
            bound = socks_listener.extra(anyio.abc.SocketAttribute.local_address)
            self.socks5_address = (str(bound[0]), int(bound[1]))
        try:
            listener = await self._bind()
        except BaseException:
            if socks_listener is not None:
                await socks_listener.aclose()
            raise
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._generations)
                    tg.start_soon(self._idle_watch)
                    tg.start_soon(self._warm_expiry)
                    if self.config.handle_signals:
                        tg.start_soon(self._signals)
                    if socks_listener is not None:
                        from smolmix_cli.session.socks5 import Socks5Server

                        server = Socks5Server(
                            self, on_stream=self._stream_hook, allowed_uid=self.config.allowed_uid
                        )
                        tg.start_soon(server.serve_listener, socks_listener)
                    tg.start_soon(self._accept, listener)
                    self._write_pid()
                    where = (
                        f", SOCKS5 on {_hostport(self.socks5_address)}" if socks_listener else ""
                    )
                    log(f"listening on {self.paths.socket}{where}")
                    task_status.started()
        finally:
            with anyio.CancelScope(shield=True):
                await listener.aclose()
                if socks_listener is not None:
                    await socks_listener.aclose()
            self._cleanup()

    async def _bind(self) -> UnixListener:
        path = self.paths.socket
        alive = probe(path)
        if alive:
            raise SessionDaemonError(f"a session for {self.paths.name} already runs on {path}")
        if alive is False:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        listener = UnixListener(path)
        self._socket_ino = os.stat(path).st_ino
        return listener

    def _write_pid(self) -> None:
        tmp = self.paths.pid_file.with_suffix(".pid.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        os.replace(tmp, self.paths.pid_file)

    def _cleanup(self) -> None:
        """Remove our socket and pid file, but never a successor's."""
        with contextlib.suppress(OSError):
            if os.stat(self.paths.socket).st_ino == self._socket_ino:
                self.paths.socket.unlink()
        with contextlib.suppress(OSError):
            if self.paths.read_pid() == os.getpid():
                self.paths.pid_file.unlink()

    async def _signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for _ in signals:
                log(f"signal received; stopping the {self.paths.name} session")
                self.stop()
                return

    async def _idle_watch(self) -> None:
        idle = self.config.idle_timeout
        if idle is None or idle <= 0 or math.isinf(idle):
            return
        while True:
            await anyio.sleep(min(1.0, idle / 4))
            if self._active == 0 and time.monotonic() - self._last_activity >= idle:
                log(f"idle for {idle:g} s; stopping the {self.paths.name} session")
                self.stop()
                return

    async def _warm_expiry(self) -> None:
        """Close warm connections that idled out, so the exit's NAT and the origin let go."""
        while True:
            await anyio.sleep(min(1.0, self.warm.idle_timeout / 4))
            await self.warm.expire(self.generation)

    # -- the tunnel, generation after generation ---------------------------------------------

    async def _generations(self) -> None:
        failures = 0
        while True:
            try:
                async with self.source() as booted:
                    self.booted = booted
                    self.generation += 1
                    self.ready_since = time.time()
                    failures = 0
                    self._restart_error = None
                    self._notify()
                    log(f"generation {self.generation} ready: {_short_stats(booted.tunnel)}")
                    silent = await self._until_failed(booted.tunnel)
                    self.last_failure = silent or booted.tunnel.snapshot().reason
                    log(f"generation {self.generation} failed: {self.last_failure}")
            except Exception as exc:
                if self.generation == 0:
                    self._boot_error = exc  # the first boot: report it and end
                    self._notify()
                    log(f"boot failed: {self.classify(exc)}")
                    await anyio.sleep(0.5)  # let queued commands read the error
                    self.stop()
                    return
                log(f"restart failed: {self.classify(exc)}")
                self._restart_error = exc
                failures += 1
            finally:
                self.booted = None
                self.ready_since = None
            await anyio.sleep(RETRY_BACKOFF[min(failures, len(RETRY_BACKOFF) - 1)])

    async def _until_failed(self, tunnel: TunnelLike) -> str | None:
        """Return when the tunnel failed (None) or its exit went silent (why)."""
        watch = SilenceWatch()
        while True:
            snap = tunnel.snapshot()
            if snap.state in ("failed", "shut down"):
                return None
            up, down = snap.packets_up, snap.packets_down
            if snap.state == "ready" and watch.observe(up, down, time.monotonic()):
                if not await _exit_answers(tunnel):
                    return f"the exit went silent ({up} packets up, none down for long)"
                snap = tunnel.snapshot()
                watch.answered(snap.packets_up, snap.packets_down)
            await anyio.sleep(0.2)

    async def current(self, timeout: float) -> TunnelLike:
        """The ready tunnel of this generation, waiting for a boot in progress."""
        with anyio.move_on_after(timeout):
            while True:
                if self._boot_error is not None:
                    raise self._boot_error
                booted = self.booted
                if booted is not None and booted.tunnel.snapshot().state == "ready":
                    return booted.tunnel
                with anyio.move_on_after(0.2):  # the state is polled: tunnels have no event for it
                    await self._changed.wait()
        if self._restart_error is not None:
            raise self._restart_error  # why the replacement tunnel is not up
        from smolmix_cli.tunnel.errors import TunnelTimeout

        raise TunnelTimeout(f"the session's tunnel was not ready within {timeout:g} s")

    async def _retrying(self, call: Callable[[TunnelLike], Any]) -> Any:
        """Run `call(tunnel)`; if the tunnel failed under it, once more on the next generation."""
        tunnel = await self.current(self.config.boot_timeout)
        try:
            return await call(tunnel)
        except Exception as exc:
            if not _is_unavailable(exc) or tunnel.snapshot().state == "ready":
                raise
        tunnel = await self.current(self.config.boot_timeout)
        return await call(tunnel)

    # -- the Connector the SOCKS5 front uses (with the same retry) ----------------------------

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        stream: anyio.abc.ByteStream = await self._retrying(lambda t: t.open_tcp(host, port))
        return stream

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
        self.counters.udp_exchanges += 1
        self.counters.bytes_up += len(payload)
        reply: bytes = await self._retrying(lambda t: t.udp_exchange(host, port, payload, timeout))
        self.counters.bytes_down += len(reply)
        return reply

    async def resolve(self, name: str) -> list[str]:
        self.counters.resolves += 1
        found: list[str] = await self._retrying(lambda t: t.resolve(name))
        return found

    @contextlib.asynccontextmanager
    async def _activity(self) -> AsyncIterator[None]:
        self._active += 1
        self._last_activity = time.monotonic()
        try:
            yield
        finally:
            self._active -= 1
            self._last_activity = time.monotonic()

    def _stream_hook(self, up: int, down: int) -> None:
        self.counters.bytes_up += up
        self.counters.bytes_down += down

    # -- the control socket ------------------------------------------------------------------

    async def _accept(self, listener: UnixListener) -> None:
        await serve_contained(listener, self._handle, self._peer_failed)

    def _peer_failed(self, exc: BaseException) -> None:
        self.counters.peer_failures += 1

    async def _handle(self, conn: anyio.abc.SocketStream) -> None:
        async with conn, self._activity():
            allowed, uid = peer_allowed(conn, self.config.allowed_uid)
            if not allowed:
                self.counters.refused_peers += 1
                log(f"refused a connection from uid {uid}")
                # 5, the code an attached command exits with: not curl's 77 (--cacert).
                refusal = proto.error_frame(
                    "PermissionError", "not your session", int(ExitCode.NETWORK_UNREACHABLE)
                )
                await _refuse(conn, refusal)
                return
            decoder = proto.FrameDecoder()
            try:
                with anyio.fail_after(REQUEST_TIMEOUT):
                    frame = await _read_frame(conn, decoder)
                request = proto.parse_request(frame)
            except (proto.ProtocolError, TimeoutError, anyio.EndOfStream, OSError) as exc:
                await _refuse(conn, proto.error_frame("ProtocolError", str(exc), 70))
                return
            except anyio.BrokenResourceError:
                return
            self.counters.requests += 1
            try:
                await self._dispatch(conn, request, decoder)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return

    async def _dispatch(
        self, conn: anyio.abc.SocketStream, request: proto.Request, decoder: proto.FrameDecoder
    ) -> None:
        op = request.op
        if op == "status":
            if request.timeout > 0:
                try:
                    await self.current(request.timeout)
                except Exception as exc:
                    await conn.send(error_answer(exc, self.classify))
                    return
            await conn.send(proto.ok_frame(status=self.status()))
            return
        if op == "stop":
            await conn.send(proto.ok_frame())
            log("stop requested")
            self.stop()
            return
        try:
            if op == "resolve":
                addresses = await self.resolve(request.name)
                await conn.send(proto.ok_frame(addresses=addresses))
            elif op == "udp_exchange":
                reply = await self.udp_exchange(
                    request.host, request.port, request.payload, request.timeout
                )
                await conn.send(proto.ok_frame(reply))
            elif op == "open_http":
                await self._open_http(conn, request, decoder)
            else:
                stream = await self.open_tcp(request.host, request.port)
                async with stream:
                    remote = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
                    answer: dict[str, Any] = {"remote": list(remote) if remote else None}
                    if request.end_mark:
                        answer["end_mark"] = True
                    await conn.send(proto.ok_frame(**answer))
                    up, down = await splice(
                        conn, stream, decoder.rest(), self.counters, end_mark=request.end_mark
                    )
                    self._stream_hook(up, down)
                return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise
        except Exception as exc:
            await conn.send(error_answer(exc, self.classify))

    async def _open_http(
        self, conn: anyio.abc.SocketStream, request: proto.Request, decoder: proto.FrameDecoder
    ) -> None:
        """A warm connection to the origin if one idles (and the command allows it), else a
        new one; kept afterwards if the exchanges ended cleanly (session/warm.py)."""
        await self.current(self.config.boot_timeout)
        key = OriginKey(
            request.host,
            request.port,
            request.server_name,
            request.verify,
            ca_digest(request.cafile),
            self.generation,
        )
        await self.warm.expire(self.generation)
        warm = await self.warm.take(key) if request.reuse and not request.fresh else None
        reused = warm is not None
        times = (0.0, 0.0)
        if warm is None:
            warm, times = await self._connect_origin(request, key.ca_digest)
        answer: dict[str, Any] = {
            "remote": list(warm.remote) if warm.remote else None,
            "end_mark": True,
            "reused": reused,
            "tls_version": warm.tls_version,
            "tcp_s": round(times[0], 6),
            "tls_s": round(times[1], 6),
        }
        try:
            await conn.send(proto.ok_frame(**answer))
        except BaseException:  # the command gave up (its --connect-timeout) or went away
            if request.reuse and key.generation == self.generation:
                await self.warm.put(key, warm)  # unused and clean: the next command's
            else:
                await anyio.aclose_forcefully(warm.stream)
            raise
        watch = ExchangeWatch()
        self.counters.streams_open += 1
        self.counters.streams_total += 1
        try:
            up, down = await serve_exchanges(conn, warm, decoder.rest(), watch)
            self._stream_hook(up, down)
        finally:
            self.counters.streams_open -= 1
            if request.reuse and watch.reusable and key.generation == self.generation:
                await self.warm.put(key, warm)
            else:
                await anyio.aclose_forcefully(warm.stream)

    async def _connect_origin(
        self, request: proto.Request, digest: str
    ) -> tuple[Warm, tuple[float, float]]:
        """A new connection, and the seconds its TCP and its TLS handshake took.

        The TLS context is ready before the TCP handshake ends (the ClientHello follows
        the SYN-ACK at once), and the client's last flight waits for the request (Cork)."""
        from smolmix_cli.apps import tls

        context = None
        if request.server_name is not None:
            context = self.tls_contexts.get(request.verify, request.cafile, digest)
        started = time.monotonic()
        stream = await self.open_tcp(request.host, request.port)
        remote = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
        connected = time.monotonic()
        version = ""
        cork = None
        if request.server_name is not None and context is not None:
            cork = Cork(stream)
            stream = await tls.wrap_client(cork, request.server_name, context)
            cork.handshake_done()
            version = tls.negotiated(stream).get("tls_version", "")
        self.warm.opened += 1
        where = (str(remote[0]), int(remote[1])) if remote else None
        warm = Warm(stream, where, version, cork=cork if cork and cork.holding else None)
        return warm, (connected - started, time.monotonic() - connected)

    # -- status ------------------------------------------------------------------------------

    def _waiting_reason(self) -> str:
        if self._boot_error is not None:
            return f"boot failed: {self._boot_error}"
        if self._restart_error is not None:
            return f"restarting after: {self._restart_error}"
        return "booting" if self.generation == 0 else "restarting"

    def status(self) -> dict[str, Any]:
        booted = self.booted
        snap = booted.tunnel.snapshot() if booted is not None else None
        c = self.counters
        return {
            "protocol": proto.VERSION,
            "ops": list(proto.OPS),
            "pid": os.getpid(),
            "network": self.config.network_name,
            "socket": str(self.paths.socket),
            "socks5": _hostport(self.socks5_address),
            "state": snap.state if snap else "failed" if self._boot_error else "connecting",
            "reason": snap.reason if snap else self._waiting_reason(),
            "generation": self.generation,
            "last_failure": self.last_failure,
            "uptime_s": round(time.time() - self.started, 3),
            "tunnel_uptime_s": round(time.time() - self.ready_since, 3)
            if self.ready_since
            else None,
            "idle_timeout_s": self.config.idle_timeout,
            "tunnel_args": list(self.config.tunnel_args),
            "ca_pem": booted.ca_pem if booted is not None else None,
            "gateway": snap.gateway if snap else None,
            "exit": snap.exit if snap else None,
            "ipv4": snap.ipv4 if snap else None,
            "ipv6": snap.ipv6 if snap else None,
            "rtt_ms": snap.rtt_ms if snap else None,
            "origin_connections": self.warm.opened,
            "warm_reused": self.warm.reused,
            "warm_idle": len(self.warm),
            "bytes_up": c.bytes_up,
            "bytes_down": c.bytes_down,
            "packets_up": snap.packets_up if snap else 0,
            "packets_down": snap.packets_down if snap else 0,
            "sessions_started": snap.sessions_started if snap else 0,
            "exits_failed": list(snap.exits_failed) if snap else [],
            "gateways_skipped": list(snap.gateways_skipped) if snap else [],
            "gateways_tried": list(snap.gateways_tried) if snap else [],
            "exits_tried": list(snap.exits_tried) if snap else [],
            "streams_open": c.streams_open,
            "streams_total": c.streams_total,
            "udp_exchanges": c.udp_exchanges,
            "resolves": c.resolves,
            "requests": c.requests,
            "refused_peers": c.refused_peers,
            "peer_failures": c.peer_failures,
        }


async def _refuse(conn: anyio.abc.SocketStream, answer: bytes) -> None:
    """Send a last error frame and let the client read it: closing with its request
    unread would reset the connection and lose the answer."""
    with contextlib.suppress(Exception):
        await conn.send(answer)
        await conn.send_eof()
        with anyio.move_on_after(1.0):
            while await conn.receive():
                pass


async def _read_frame(
    conn: anyio.abc.ByteReceiveStream, decoder: proto.FrameDecoder
) -> proto.Frame:
    while True:
        frame = decoder.next_frame()
        if frame is not None:
            return frame
        decoder.feed(await conn.receive())


def error_answer(exc: BaseException, classify: Classifier) -> bytes:
    """An error frame with the failure's classified line and exit code (the client re-raises it
    so that it classifies the same; the type's name is for people reading the protocol)."""
    exc = first_failure(exc)
    error = classify(exc)
    return proto.error_frame(type(exc).__name__, str(error), int(error.code))


async def _exit_answers(tunnel: TunnelLike) -> bool:
    """An echo to the exit's own TUN address comes back (PROBES tries)."""
    from smolmix_cli.ipr.router_logic import TUN_IPV4
    from smolmix_cli.tunnel.errors import TunnelError

    ping = getattr(tunnel, "ping", None)  # a local Tunnel has it; a session's client does not
    if ping is None:
        return True  # nothing to ask with: never give a tunnel up on a guess
    for _ in range(PROBES):
        try:
            await ping(str(TUN_IPV4), timeout=PROBE_TIMEOUT_S)
            return True
        except (TunnelError, TimeoutError):
            continue
    return False


def _is_unavailable(exc: BaseException) -> bool:
    from smolmix_cli.tunnel.errors import TunnelUnavailable

    return isinstance(first_failure(exc), TunnelUnavailable)


def _short_stats(tunnel: TunnelLike) -> str:
    snap = tunnel.snapshot()
    return f"exit {snap.exit}, address {snap.ipv4}"


def _hostport(address: tuple[str, int] | None) -> str | None:
    if address is None:
        return None
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def log(text: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    print(f"{stamp} smolmix-session[{os.getpid()}]: {text}", file=sys.stderr, flush=True)
