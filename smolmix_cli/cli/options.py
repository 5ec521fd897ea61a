"""Options every tunnel command shares: given before the subcommand, kept in one dataclass.

`smolmix [GLOBAL OPTIONS] fetch|ws|resolve ...`: the network, the exit, the
gateway, traffic shaping and the tunnel's tuning knobs. They live on the group
so one spelling works for every command (and for the background session a
later issue adds); each command reads them through `global_options(ctx)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

DEFAULT_BOOT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    network: str | None = None
    ipr: str | None = None
    gateway: str | None = None
    cover: bool | None = None  # None: the network's default (local: off, mainnet: on)
    poisson: bool | None = None
    mix_delay_ms: float | None = None
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT
    dns_servers: tuple[str, ...] = ()
    tcp_buffer_size: int | None = None
    mtu: int | None = None
    open_surbs: int | None = None
    data_surbs: int | None = None
    tcp_connect_timeout: float | None = None
    session: str = "auto"  # "auto" | "start" | "off" (--no-session)


F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--network",
        metavar="mainnet|testnet|FILE",
        envvar="SMOLMIX_NETWORK",
        default="mainnet",
        show_default=True,
        help="Nym network to use: the real one, the local test network (started on demand), "
        "or a network file written by `smolmix testnet up`. Env: SMOLMIX_NETWORK. "
        "Example: --network testnet",
    ),
    click.option(
        "--ipr",
        metavar="ADDRESS",
        default=None,
        help="Pin the exit: the Nym address of its IP packet router (no discovery, no "
        "failover). Example: --ipr 8zVq...@Fw2d...",
    ),
    click.option(
        "--gateway",
        metavar="ID",
        default=None,
        help="Entry gateway identity (base58 ed25519) to connect through, instead of the "
        "network's choice (local networks only for now). Example: --gateway 4yRf...",
    ),
    click.option(
        "--no-cover",
        "no_cover",
        is_flag=True,
        help="Send no loop cover traffic (less bandwidth, weaker unlinkability). "
        "Example: --no-cover",
    ),
    click.option(
        "--no-poisson",
        "no_poisson",
        is_flag=True,
        help="Send real messages at once instead of at Poisson-paced intervals (faster, "
        "reveals timing). Example: --no-poisson",
    ),
    click.option(
        "--mix-delay-ms",
        type=click.FloatRange(min=0.0),
        default=None,
        help="Mean per-hop mix delay to choose, in ms (default: the network's). "
        "Example: --mix-delay-ms 0",
    ),
    click.option(
        "--boot-timeout",
        type=click.FloatRange(min=0.1),
        default=DEFAULT_BOOT_TIMEOUT,
        show_default=True,
        help="Seconds allowed for the tunnel to come up (directory, gateway, exit "
        "handshake). Example: --boot-timeout 90",
    ),
    click.option(
        "--dns-server",
        "dns_servers",
        metavar="IP[:PORT]",
        multiple=True,
        help="Resolver (queried through the tunnel) for destination names; repeatable "
        "(default: the network's, mainnet 8.8.8.8 then 1.1.1.1). Example: --dns-server 9.9.9.9",
    ),
    click.option(
        "--tcp-buffer-size",
        type=click.IntRange(min=1, max=0xFFFF),
        default=None,
        help="TCP window/buffer per direction and stream, bytes. Example: --tcp-buffer-size 32768",
    ),
    click.option(
        "--mtu",
        type=click.IntRange(min=576, max=9000),
        default=None,
        help="Tunnel MTU (default: what the exit reports). Example: --mtu 1420",
    ),
    click.option(
        "--open-surbs",
        type=click.IntRange(min=0, max=1000),
        default=None,
        help="Reply SURBs sent with the exit handshake. Example: --open-surbs 20",
    ),
    click.option(
        "--data-surbs",
        type=click.IntRange(min=0, max=100),
        default=None,
        help="Reply SURBs attached to every data message. Example: --data-surbs 4",
    ),
    click.option(
        "--tcp-connect-timeout",
        type=click.FloatRange(min=0.1),
        default=None,
        help="Seconds one TCP open through the tunnel may take. Example: --tcp-connect-timeout 30",
    ),
    click.option(
        "--session",
        "session",
        type=click.Choice(["auto", "start"]),
        envvar="SMOLMIX_SESSION",
        default="auto",
        show_default=True,
        help="Background session use (like ssh's ControlMaster): auto = attach to this "
        "network's running session, else boot in-process; start = also start one on first "
        "use (it stops after its idle timeout). Env: SMOLMIX_SESSION. Example: --session start",
    ),
    click.option(
        "--no-session",
        "no_session",
        is_flag=True,
        envvar="SMOLMIX_NO_SESSION",
        help="Always boot a tunnel in-process for this command; never attach to or start a "
        "background session. Env: SMOLMIX_NO_SESSION=1. Example: --no-session",
    ),
]


def global_option_decorators(func: F) -> F:
    """Apply the shared options (in `--help` order) to the group callback."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def from_params(params: dict[str, Any]) -> GlobalOptions:
    return GlobalOptions(
        network=params.get("network"),
        ipr=params.get("ipr"),
        gateway=params.get("gateway"),
        cover=False if params.get("no_cover") else None,
        poisson=False if params.get("no_poisson") else None,
        mix_delay_ms=params.get("mix_delay_ms"),
        boot_timeout=params.get("boot_timeout") or DEFAULT_BOOT_TIMEOUT,
        dns_servers=tuple(params.get("dns_servers") or ()),
        tcp_buffer_size=params.get("tcp_buffer_size"),
        mtu=params.get("mtu"),
        open_surbs=params.get("open_surbs"),
        data_surbs=params.get("data_surbs"),
        tcp_connect_timeout=params.get("tcp_connect_timeout"),
        session="off" if params.get("no_session") else (params.get("session") or "auto"),
    )


def global_options(ctx: click.Context) -> GlobalOptions:
    """The group's options from any subcommand's context (defaults when run standalone)."""
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and isinstance(obj.get("globals"), GlobalOptions):
        return obj["globals"]  # type: ignore[no-any-return]
    return GlobalOptions()
