"""The one place commands get a tunnel.

For now every command boots its own tunnel in-process (0.2 s on the local
network, seconds on mainnet); a background session that keeps one warm will
plug in here without the commands changing. The factory also owns what the
tunnel's users must trust: on a local network the network's CA, so
`https://demo.smolmix.test/` verifies without `-k`.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from smolmix_cli.apps.errors import CaFileError
from smolmix_cli.cli.options import GlobalOptions
from smolmix_cli.config import GatewayInfo, Network
from smolmix_cli.tunnel.options import TunnelOptions, for_local_network
from smolmix_cli.tunnel.tunnel import Tunnel

PhaseCallback = Callable[[str], None]


class SessionError(Exception):
    """A global option the chosen network cannot honour (exit 2)."""

    exit_code = 2


def check_options(options: GlobalOptions) -> None:
    """`--ipr` and `--gateway` must parse before anything starts (exit 2, one line)."""
    from smolmix_cli.mixnet.address import Recipient
    from smolmix_cli.mixnet.errors import MixnetError
    from smolmix_cli.mixnet.keys import decode_key_base58

    if options.ipr:
        try:
            Recipient.parse(options.ipr)
        except (MixnetError, ValueError) as exc:
            raise SessionError(f"bad --ipr address: {exc}") from None
    if options.gateway:
        try:
            decode_key_base58(options.gateway, "--gateway")
        except (MixnetError, ValueError) as exc:
            raise SessionError(f"bad --gateway identity: {exc}") from None


def load_network(options: GlobalOptions) -> Network:
    """The network behind `--network`, starting the local one on demand (as `ping`)."""
    from smolmix_cli.cli.testnet import resolve_network

    check_options(options)
    network = resolve_network(options.network)
    if options.gateway:
        if not network.is_local:
            raise SessionError("--gateway is only supported on local networks for now")
        network = dataclasses.replace(
            network, entry_gateway=GatewayInfo(node_id=0, identity=options.gateway, ws_url="")
        )
    return network


def tunnel_options(network: Network, options: GlobalOptions) -> TunnelOptions:
    base = for_local_network() if network.is_local else TunnelOptions()
    changes: dict[str, object] = {}
    if options.ipr:
        changes["ipr"] = options.ipr
    if options.cover is not None:
        changes["cover"] = options.cover
    if options.poisson is not None:
        changes["poisson"] = options.poisson
    if options.mix_delay_ms is not None:
        changes["mean_delay_ms"] = options.mix_delay_ms
    if options.dns_servers:  # else the tunnel asks the network's resolver (or mainnet's)
        changes["dns_servers"] = options.dns_servers
    for name, target in (
        ("tcp_buffer_size", "tcp_buffer_size"),
        ("mtu", "mtu"),
        ("open_surbs", "open_reply_surbs"),
        ("data_surbs", "data_reply_surbs"),
        ("tcp_connect_timeout", "tcp_connect_timeout"),
    ):
        value = getattr(options, name)
        if value is not None:
            changes[target] = value
    return base.replace(**changes)


@dataclass
class Session:
    """A ready tunnel plus what its users need to know about the network behind it."""

    network: Network
    tunnel: Tunnel
    boot_seconds: float = 0.0
    _tmp: Path | None = field(default=None, repr=False)

    def cafile(self, user_cacert: str | None) -> str | None:
        """A CA bundle: the network's own CA (local networks) plus the user's `--cacert`."""
        if self.network.ca_pem is None:
            return user_cacert
        if self._tmp is None:
            raise CaFileError("session closed")
        extra = ""
        if user_cacert is not None:
            try:
                extra = Path(user_cacert).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise CaFileError(f"cannot read CA file {user_cacert}: {exc}") from None
        path = self._tmp / f"ca-{abs(hash(user_cacert))}.pem"
        if not path.exists():
            path.write_text(self.network.ca_pem + "\n" + extra)
        return str(path)

    def describe(self) -> dict[str, object]:
        stats = self.tunnel.stats()
        return {"network": self.network.name, "exit": stats.get("exit"), "ipv4": stats.get("ipv4")}


@asynccontextmanager
async def open_tunnel(
    options: GlobalOptions,
    *,
    network: Network | None = None,
    on_phase: PhaseCallback | None = None,
) -> AsyncIterator[Session]:
    """Boot a tunnel (bounded by `--boot-timeout`) and yield it ready; closed on exit."""
    if network is None:
        network = load_network(options)
    topts = tunnel_options(network, options)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smolmix-") as tmp:
        os.chmod(tmp, 0o700)
        async with Tunnel.open(network, topts) as tunnel:
            if on_phase is not None:
                on_phase(f"booting the tunnel on {network.name}")
            await _wait_ready(tunnel, options.boot_timeout, on_phase)
            session = Session(network, tunnel, time.monotonic() - start, Path(tmp))
            if on_phase is not None:
                on_phase(
                    f"tunnel ready in {session.boot_seconds:.3f} s "
                    f"(exit {tunnel.exit.key if tunnel.exit else '?'}, address {tunnel.stats()['ipv4']})"
                )
            try:
                yield session
            finally:
                session._tmp = None


async def _wait_ready(tunnel: Tunnel, timeout: float, on_phase: PhaseCallback | None) -> None:
    """The ready gate, reporting each phase the tunnel passes through (for -v)."""
    if on_phase is None:
        await tunnel.wait_ready(timeout)
        return
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            last = ""
            while True:
                if tunnel.reason != last:
                    last = tunnel.reason
                    on_phase(f"tunnel: {last}")
                await anyio.sleep(0.05)

        tg.start_soon(watch)
        try:
            await tunnel.wait_ready(timeout)
        finally:
            tg.cancel_scope.cancel()
