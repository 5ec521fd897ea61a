"""The one place commands get a tunnel: booted in-process, or a background session's.

`--session auto` (the default) attaches to this network's running session if
one answers on its socket, else boots in-process (and a stale socket left by a
killed session is removed on the way); `--session start` starts a background
session first if there is none (one boot shared by concurrent callers, under
the boot lock) and leaves it running until its idle timeout; `--no-session`
always boots in-process. Either way the command gets a `Session` whose
`tunnel` is a Connector with `resolve` and `stats`, so its output is the same.
The factory also owns what the tunnel's users must trust: on a local network
the network's CA, so `https://demo.smolmix.test/` verifies without `-k`.

Heavy imports (the tunnel, the mixnet) happen only on the in-process path, so
attaching stays cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smolmix_cli.config import GatewayInfo, Network
from smolmix_cli.options import GlobalOptions, session_args, tunnel_args, tunnel_changes
from smolmix_cli.session.ca_bundle import CaBundle

if TYPE_CHECKING:
    from smolmix_cli.apps.dns_transports import DnsServer
    from smolmix_cli.session.remote import RemoteTunnel
    from smolmix_cli.tunnel.options import TunnelOptions
    from smolmix_cli.tunnel.tunnel import Tunnel

PhaseCallback = Callable[[str], None]
StatusLine = Callable[[], AbstractContextManager[PhaseCallback | None]]
"""A transient status line the command draws while the boot waits (cli/status_line.py)."""
SPAWN_TIMEOUT = 20.0  # a new session process must listen within this (imports + bind)


class OptionError(Exception):
    """A global option the chosen network cannot honour (a usage error, exit 2)."""


def check_options(options: GlobalOptions) -> None:
    """`--ipr` and `--gateway` must parse before anything starts (exit 2, one line).

    The parsers come with the mixnet's key code, so they are imported only when needed."""
    from smolmix_cli.mixnet.errors import MixnetError

    if options.ipr:
        from smolmix_cli.mixnet.address import Recipient

        try:
            Recipient.parse(options.ipr)
        except (MixnetError, ValueError) as exc:
            raise OptionError(f"bad --ipr address: {exc}") from None
    if options.gateway:
        from smolmix_cli.mixnet.keys import decode_key_base58

        try:
            decode_key_base58(options.gateway, "--gateway")
        except (MixnetError, ValueError) as exc:
            raise OptionError(f"bad --gateway identity: {exc}") from None


def notice(text: str) -> None:
    """A line the user should see whatever the command's verbosity (as the CLI's errors)."""
    print(f"smolmix: {text}", file=sys.stderr, flush=True)


def load_network(options: GlobalOptions, on_phase: PhaseCallback = notice) -> Network:
    """The network behind `--network`, starting the local one on demand (as `ping`);
    `on_phase` hears about that start (the CLI prints it, the Python API passes it on)."""
    from smolmix_cli.network_select import select_network

    check_options(options)
    network = select_network(options.network, on_phase=on_phase)
    if options.gateway:
        if not network.is_local:
            raise OptionError("--gateway is only supported on local networks for now")
        network = dataclasses.replace(
            network, entry_gateway=GatewayInfo(node_id=0, identity=options.gateway, ws_url="")
        )
    return network


def tunnel_options(network: Network, options: GlobalOptions) -> TunnelOptions:
    """The network's defaults, changed by the options given (see options.tunnel_changes)."""
    from smolmix_cli.tunnel.options import for_network

    return for_network(network).replace(**tunnel_changes(options))


UPSTREAM_RESOLVER = "1.1.1.1"
"""The DNS server when neither --dns-server nor the network names one (upstream smolmix-dns's)."""


def dns_server(options: GlobalOptions, network: Network) -> DnsServer:
    """The first --dns-server, else the network's resolver (local networks name one), else
    1.1.1.1: `smolmix resolve` without @SERVER and `Tunnel.resolve` without `server`."""
    from smolmix_cli.apps.dns_transports import parse_server

    if options.dns_servers:
        return parse_server(options.dns_servers[0])
    return parse_server(network.dns_resolver or UPSTREAM_RESOLVER)


@dataclass
class Session:
    """A ready tunnel plus what its users need to know about the network behind it."""

    network: Network
    tunnel: Tunnel | RemoteTunnel
    boot_seconds: float = 0.0
    reused: bool = False  # True: attached to a background session (nothing booted here)
    _ca: CaBundle = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ca = CaBundle(self.network.ca_pem)

    @property
    def ca_pem(self) -> str | None:
        """The network's own CA (local networks; None on mainnet)."""
        return self.network.ca_pem

    def close(self) -> None:
        self._ca.close()

    def cafile(self, user_cacert: str | None) -> str | None:
        """A CA bundle: the network's own CA (local networks) plus the user's `--cacert`."""
        return self._ca.path(user_cacert)

    def describe(self) -> dict[str, object]:
        snap = self.tunnel.snapshot()
        return {"network": self.network.name, "exit": snap.exit, "ipv4": snap.ipv4}


@asynccontextmanager
async def open_tunnel(
    options: GlobalOptions,
    *,
    network: Network | None = None,
    on_phase: PhaseCallback | None = None,
    status_line: StatusLine | None = None,
) -> AsyncIterator[Session]:
    """A ready tunnel for this command, per `--session` (see the module docstring).

    `on_phase` gets every phase (-v); without it, `status_line` (if given) shows
    them while the boot waits, and is gone once the tunnel is up.
    """
    if network is None:
        network = load_network(options)
    mode = getattr(options, "session", "auto")
    if mode in ("auto", "start"):
        remote = await _attach(options, network, start=mode == "start", status_line=status_line)
        if remote is not None:
            async with _attached(network, remote) as session:
                yield session
            return
    async with boot_in_process(
        options, network=network, on_phase=on_phase, status_line=status_line
    ) as session:
        yield session


@asynccontextmanager
async def boot_in_process(
    options: GlobalOptions,
    *,
    network: Network | None = None,
    on_phase: PhaseCallback | None = None,
    status_line: StatusLine | None = None,
) -> AsyncIterator[Session]:
    """Boot a tunnel (bounded by `--boot-timeout`) and yield it ready; closed on exit."""
    from smolmix_cli.tunnel.tunnel import Tunnel

    if network is None:
        network = load_network(options)
    topts = tunnel_options(network, options)
    start = time.monotonic()
    async with Tunnel.open(network, topts) as tunnel:
        if on_phase is not None:
            on_phase(f"booting the tunnel on {network.name}")
        with _status(None if on_phase is not None else status_line) as spin:
            await wait_ready_reporting(tunnel, options.boot_timeout, on_phase or spin)
        session = Session(network, tunnel, time.monotonic() - start)
        if on_phase is not None:
            on_phase(
                f"tunnel ready in {session.boot_seconds:.3f} s "
                f"(exit {tunnel.exit.key if tunnel.exit else '?'}, address {tunnel.snapshot().ipv4})"
            )
        try:
            yield session
        finally:
            session.close()


@asynccontextmanager
async def _attached(network: Network, remote: RemoteTunnel) -> AsyncIterator[Session]:
    session = Session(network, remote, 0.0, reused=True)
    try:
        yield session
    finally:
        session.close()


async def _attach(
    options: GlobalOptions,
    network: Network,
    *,
    start: bool,
    status_line: StatusLine | None = None,
) -> RemoteTunnel | None:
    """This network's background session, ready (starting one if `start`); None: boot here.

    Waiting for the session's tunnel counts against `--boot-timeout`, and a
    boot failure in the session is raised here as the in-process boot raises it.
    """
    from smolmix_cli.session.paths import (
        SessionPathError,
        SessionPaths,
        boot_lock,
        clear_stale,
        probe,
    )
    from smolmix_cli.session.remote import RemoteTunnel
    from smolmix_cli.session.remote_errors import SessionUnavailable

    try:
        paths = SessionPaths.for_network(options.network)
    except SessionPathError:
        if start:
            raise
        return None
    for _attempt in range(2):
        alive = probe(paths.socket)
        if not alive:
            if not start:
                if alive is False and paths.socket.exists():
                    with boot_lock(paths, options.boot_timeout):
                        clear_stale(paths)
                return None
            with boot_lock(paths, options.boot_timeout):
                if not probe(paths.socket):
                    clear_stale(paths)
                    import anyio.to_thread

                    await anyio.to_thread.run_sync(
                        lambda: spawn_session(options, paths, idle_timeout=None, socks5=None)
                    )
        remote = RemoteTunnel(paths.socket, reuse=not options.fresh_connections)
        try:
            status = await remote.status()
            theirs = status.get("tunnel_args")
            if theirs != tunnel_args(options):
                # another exit, gateway or shaping than asked for: never hand that out silently
                if start:
                    raise OptionError(
                        f"the running {paths.name} session was started with other tunnel "
                        f"options ({' '.join(map(str, theirs or [])) or 'none'}); stop it "
                        f"(`smolmix session stop`) or use --no-session"
                    )
                return None
            if status.get("state") != "ready":  # a warm session answers one status, not two
                await wait_attached(remote, options.boot_timeout, status_line)
        except SessionUnavailable:
            continue  # it went away between the probe and the request: look again
        return remote
    if start:
        raise SessionUnavailable(f"the background session on {paths.socket} does not answer")
    return None


def _status(status_line: StatusLine | None) -> AbstractContextManager[PhaseCallback | None]:
    return status_line() if status_line is not None else contextlib.nullcontext(None)


async def wait_attached(
    remote: RemoteTunnel, timeout: float, status_line: StatusLine | None = None
) -> dict[str, Any]:
    """The session's status once its tunnel is ready (its boot's phases on `status_line`)."""
    import anyio

    deadline = time.monotonic() + timeout
    with _status(status_line) as spin:
        if spin is not None:
            last = ""
            while time.monotonic() < deadline:
                report = await remote.status()
                if report.get("state") != "connecting":
                    break
                if report.get("reason") != last:
                    last = str(report.get("reason"))
                    spin(f"session tunnel: {last}")
                await anyio.sleep(0.1)
        return await remote.status(wait=max(0.1, deadline - time.monotonic()))


def spawn_session(
    options: GlobalOptions,
    paths: Any,
    *,
    idle_timeout: float | None,
    socks5: str | None,
    timeout: float = SPAWN_TIMEOUT,
) -> int:
    """Start `smolmix session start --foreground` detached; return its pid once it listens."""
    from smolmix_cli.session.paths import probe
    from smolmix_cli.session.remote_errors import SessionUnavailable
    from smolmix_cli.spawn import SMOLMIX, SpawnFailed, spawn_detached

    command = [*SMOLMIX, *session_args(options), "session", "start", "--foreground"]
    if idle_timeout is not None:
        command += ["--idle-timeout", f"{idle_timeout:g}"]
    if socks5 is not None:
        command += ["--socks5", socks5]
    try:
        pid, _ = spawn_detached(
            command, paths.log_file, lambda: probe(paths.socket) or None, timeout=timeout, poll=0.02
        )
    except SpawnFailed as exc:
        if exc.returncode is None:
            raise SessionUnavailable(
                f"the background session did not listen within {timeout:g} s"
            ) from None
        raise SessionUnavailable(
            f"the background session exited at start (status {exc.returncode}): "
            f"{exc.last_log_line()}"
        ) from None
    return pid


async def wait_ready_reporting(
    tunnel: Tunnel, timeout: float, on_phase: PhaseCallback | None
) -> None:
    """The ready gate, reporting each phase the tunnel passes through (for -v)."""
    if on_phase is None:
        await tunnel.wait_ready(timeout)
        return
    import anyio

    last, seen = "", 0

    def report() -> None:
        """New trail lines (each gateway and exit tried, how it ended), then a new phase."""
        nonlocal last, seen
        new = min(tunnel.trail_total - seen, len(tunnel.trail))
        for line in list(tunnel.trail)[len(tunnel.trail) - new :]:
            on_phase(f"tunnel: {line}")
        seen = tunnel.trail_total
        if tunnel.reason != last:
            last = tunnel.reason
            on_phase(f"tunnel: {last}")

    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            while True:
                report()
                await anyio.sleep(0.05)

        tg.start_soon(watch)
        try:
            await tunnel.wait_ready(timeout)
        finally:
            tg.cancel_scope.cancel()
            report()
