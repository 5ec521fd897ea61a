"""The global options, each written once: a field of `GlobalOptions` plus its command line.

`smolmix [GLOBAL OPTIONS] fetch|ws|resolve ...`: the network, the exit, the
gateway, traffic shaping and the tunnel's tuning knobs. Every field carries its
spellings in its metadata, and everything else is read from there: the click
options (cli/options.py) with their environment variables and config file
keys (cli/config_defaults.py), `from_params` (click's values back into the
dataclass), `to_args` (the words that give a background session the same
options) and `tunnel_changes` (what the field changes in the TunnelOptions).
So a new global option is one field here. No click in this module: the session
layer imports it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

# The boot's three phases, in turn, each with its own bound inside this one: the directory
# (bootstrap.py DIRECTORY_TIMEOUT per read), the entry gateway (mixnet/client/client.py
# GATEWAY_BUDGET, 30 s: up to 10 gateways, 6 s each) and the exit walk (tunnel/options.py
# exit_phase_budget, 36 s: 15 exits raced 5 at a time, 12 s per v10+v9 attempt).
# tests/tunnel/test_budgets.py keeps them nested.
DEFAULT_BOOT_TIMEOUT = 90.0
_META = "smolmix.option"


class Spelling(NamedTuple):
    """One way to write an option; cli/options.py turns it into a click option.

    NamedTuples, not dataclasses, as OptionSpec: every command builds these two classes
    at start, and a frozen dataclass costs about 1 ms to build."""

    name: str  # "--mtu"
    help: str
    sets: object = None  # not None: a flag without a value, setting the field to this
    multiple: bool = False  # repeatable; the field holds a tuple of the values
    metavar: str | None = None
    number: type[int] | type[float] | None = None  # a range type, from `low` to `high`
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    envvar: str | None = None  # named in `help`; others get `variable`, shown by click
    cli_default: object = None  # the default click shows, when not the field's
    show_default: bool = False

    @property
    def is_flag(self) -> bool:
        return self.sets is not None

    @property
    def variable(self) -> str:
        """Its environment variable: `envvar`, else SMOLMIX_ and its name (SMOLMIX_DNS_SERVER)."""
        return self.envvar or "SMOLMIX_" + self.name.lstrip("-").replace("-", "_").upper()

    def param(self, field: str) -> str:
        """Click's parameter name: the field's, or the flag's own (`--no-cover`: no_cover)."""
        return self.name.lstrip("-").replace("-", "_") if self.is_flag else field


class OptionSpec(NamedTuple):
    spellings: tuple[Spelling, ...]
    tunnel: str | None  # the TunnelOptions field this option sets, if any
    shapes_tunnel: bool  # part of a background session's identity (`tunnel_args`)


def option(
    default: object,
    *spellings: Spelling,
    tunnel: str | None = None,
    shapes_tunnel: bool | None = None,
) -> Any:
    """A GlobalOptions field with its command line (typed Any so any field type accepts it)."""
    spec = OptionSpec(
        spellings, tunnel, shapes_tunnel if shapes_tunnel is not None else tunnel is not None
    )
    return dataclasses.field(default=default, metadata={_META: spec})


@dataclass(frozen=True, slots=True)
class GlobalOptions:
    network: str | None = option(
        None,
        Spelling(
            "--network",
            metavar="mainnet|testnet|FILE",
            envvar="SMOLMIX_NETWORK",
            cli_default="mainnet",
            show_default=True,
            help="Nym network to use: the real one, the local test network (started on demand), "
            "or a network file written by `smolmix testnet up`. Env: SMOLMIX_NETWORK. "
            "Example: --network testnet",
        ),
    )
    ipr: str | None = option(
        None,
        Spelling(
            "--ipr",
            metavar="ADDRESS",
            help="Pin the exit: the Nym address of its IP packet router (no discovery, no "
            "failover). Example: --ipr 8zVq...@Fw2d...",
        ),
        tunnel="ipr",
    )
    exit_race: int | None = option(
        None,
        Spelling(
            "--exit-race",
            metavar="N",
            number=int,
            low=1,
            high=15,
            help="Discovered exits tried at once (first ready wins, the others are released; "
            "1: one after another; default 5). Example: --exit-race 1",
        ),
        tunnel="exit_race",
    )
    gateway: str | None = option(
        None,
        Spelling(
            "--gateway",
            metavar="ID",
            help="Entry gateway identity (base58 ed25519) to connect through, instead of the "
            "network's choice (local networks only for now). Example: --gateway 4yRf...",
        ),
        shapes_tunnel=True,  # applied to the network (session.factory.load_network)
    )
    cover: bool | None = option(  # None: the network's default (local: off, mainnet: on)
        None,
        Spelling(
            "--no-cover",
            sets=False,
            help="Send no loop cover traffic (less bandwidth, weaker unlinkability). "
            "Example: --no-cover",
        ),
        tunnel="cover",
    )
    poisson: bool | None = option(
        None,
        Spelling(
            "--no-poisson",
            sets=False,
            help="Send real messages at once instead of at Poisson-paced intervals (faster, "
            "reveals timing). Example: --no-poisson",
        ),
        tunnel="poisson",
    )
    mix_delay_ms: float | None = option(
        None,
        Spelling(
            "--mix-delay-ms",
            number=float,
            low=0.0,
            help="Mean per-hop mix delay to choose, in ms (default: the network's). "
            "Example: --mix-delay-ms 0",
        ),
        tunnel="mean_delay_ms",
    )
    boot_timeout: float = option(
        DEFAULT_BOOT_TIMEOUT,
        Spelling(
            "--boot-timeout",
            number=float,
            low=0.1,
            show_default=True,
            help="Seconds allowed for the tunnel to come up: the directory, then at most "
            "30 s for the entry gateway (up to 10 tried, 6 s each), then the exits (up to 15, "
            "raced 5 at a time, 12 s each). Example: --boot-timeout 90",
        ),
    )
    dns_servers: tuple[str, ...] = option(
        (),
        Spelling(
            "--dns-server",
            metavar="IP[:PORT]",
            multiple=True,
            help="Resolver (queried through the tunnel) for destination names; repeatable "
            "(default: the network's, mainnet 8.8.8.8 then 1.1.1.1). "
            "Example: --dns-server 9.9.9.9",
        ),
        tunnel="dns_servers",
    )
    tcp_buffer_size: int | None = option(
        None,
        Spelling(
            "--tcp-buffer-size",
            number=int,
            low=1,
            high=0xFFFF,
            help="TCP window/buffer per direction and stream, bytes. "
            "Example: --tcp-buffer-size 32768",
        ),
        tunnel="tcp_buffer_size",
    )
    mtu: int | None = option(
        None,
        Spelling(
            "--mtu",
            number=int,
            low=576,
            high=9000,
            help="Tunnel MTU (default: what the exit reports). Example: --mtu 1420",
        ),
        tunnel="mtu",
    )
    open_surbs: int | None = option(
        None,
        Spelling(
            "--open-surbs",
            number=int,
            low=0,
            high=1000,
            help="Reply SURBs sent with the exit handshake. Example: --open-surbs 20",
        ),
        tunnel="open_reply_surbs",
    )
    data_surbs: int | None = option(
        None,
        Spelling(
            "--data-surbs",
            number=int,
            low=0,
            high=100,
            help="Most reply SURBs on one data message, where they fit its packet. "
            "Example: --data-surbs 4",
        ),
        tunnel="data_reply_surbs",
    )
    tcp_connect_timeout: float | None = option(
        None,
        Spelling(
            "--tcp-connect-timeout",
            number=float,
            low=0.1,
            help="Seconds one TCP open through the tunnel may take. "
            "Example: --tcp-connect-timeout 30",
        ),
        tunnel="tcp_connect_timeout",
    )
    session: str = option(  # "auto" | "start" | "off" (--no-session)
        "auto",
        Spelling(
            "--session",
            choices=("auto", "start"),
            envvar="SMOLMIX_SESSION",
            show_default=True,
            help="Background session use (like ssh's ControlMaster): auto = attach to this "
            "network's running session, else boot in-process; start = also start one on first "
            "use (it stops after its idle timeout). Env: SMOLMIX_SESSION. "
            "Example: --session start",
        ),
        Spelling(
            "--no-session",
            sets="off",
            envvar="SMOLMIX_NO_SESSION",
            help="Always boot a tunnel in-process for this command; never attach to or start a "
            "background session. Env: SMOLMIX_NO_SESSION=1. Example: --no-session",
        ),
    )
    config: str | None = option(  # None: SMOLMIX_CONFIG's, else the XDG one; "": none
        None,
        Spelling(
            "--config",
            metavar="FILE",
            envvar="SMOLMIX_CONFIG",
            help="Read defaults from this TOML file instead of "
            "$XDG_CONFIG_HOME/smolmix/config.toml (`smolmix config show` shows what it sets). "
            "Env: SMOLMIX_CONFIG. Example: --config ./smolmix.toml",
        ),
        Spelling("--no-config", sets="", help="Read no config file. Example: --no-config"),
    )
    fresh_connections: bool = option(
        False,
        Spelling(
            "--fresh-connections",
            sets=True,
            envvar="SMOLMIX_FRESH_CONNECTIONS",
            help="Take no warm connection from the background session and leave none behind: "
            "every command opens its own TCP and TLS to the origin, so no two commands share "
            "one (by default the session keeps a finished command's HTTP connection to an "
            "origin for 30 s and hands it to the next command to the same origin, which "
            "saves two mixnet round trips but lets the origin link the two requests). "
            "Env: SMOLMIX_FRESH_CONNECTIONS=1. Example: --fresh-connections",
        ),
        shapes_tunnel=False,
    )


def option_fields() -> list[tuple[dataclasses.Field[Any], OptionSpec]]:
    """The table: every GlobalOptions field with its spec, in `--help` order."""
    return [(f, f.metadata[_META]) for f in dataclasses.fields(GlobalOptions)]


def from_params(params: Mapping[str, Any]) -> GlobalOptions:
    """The options from click's parameter values (absent ones: the field's default)."""
    values: dict[str, Any] = {}
    for field, spec in option_fields():
        value = field.default
        for spelling in spec.spellings:  # a flag after the value spelling wins (--no-session)
            given = params.get(spelling.param(field.name))
            if spelling.is_flag:
                if given:
                    value = spelling.sets
            elif spelling.multiple:
                value = tuple(given or ())
            elif given is not None:
                value = given
        values[field.name] = value
    return GlobalOptions(**values)


def ranked(params: Mapping[str, Any], source_rank: Callable[[str], int]) -> dict[str, Any]:
    """`params` without the spellings of an option that a higher source overrides.

    `source_rank(name)` says where a parameter's value came from (0 typed, 1 its
    environment variable, 2 the config file, 3 built in: cli/config_defaults.py `rank`).
    `--session start` typed beats `no-session = true` in the file, as any typed value
    beats the file; from the same source the flag still wins (`from_params`).
    """
    out = dict(params)
    for field, spec in option_fields():
        names = [s.param(field.name) for s in spec.spellings]
        ranks = {name: _rank(params.get(name), source_rank, name) for name in names}
        best = min(ranks.values())
        out.update({name: None for name, rank in ranks.items() if rank > best})
    return out


def _rank(value: Any, source_rank: Callable[[str], int], name: str) -> int:
    if value is None or value is False or value == ():
        return 9  # not said at all
    return source_rank(name)


def to_args(options: GlobalOptions, *, tunnel_only: bool = False) -> list[str]:
    """Command-line words that parse back into `options` (defaults are left out)."""
    args: list[str] = []
    for field, spec in option_fields():
        if tunnel_only and not spec.shapes_tunnel:
            continue
        args += _words(getattr(options, field.name), field.default, spec.spellings)
    return args


def _words(value: Any, default: Any, spellings: tuple[Spelling, ...]) -> list[str]:
    for spelling in spellings:
        if spelling.is_flag and type(value) is type(spelling.sets) and value == spelling.sets:
            return [spelling.name]
    if value is None or value == default:
        return []
    for spelling in spellings:
        if spelling.multiple:
            return [word for item in value for word in (spelling.name, str(item))]
        if not spelling.is_flag:
            return [spelling.name, str(value)]
    return []  # a value only the default can have (cover=True): nothing to say


def tunnel_args(options: GlobalOptions) -> list[str]:
    """The options that shape a tunnel, as words: a background session's identity."""
    return to_args(options, tunnel_only=True)


def session_args(options: GlobalOptions) -> list[str]:
    """The global options of a background session process: the same tunnel, booted there."""
    return to_args(dataclasses.replace(options, session="off"))


def tunnel_changes(options: GlobalOptions) -> dict[str, object]:
    """The TunnelOptions fields the given options change (unset ones keep the network's)."""
    changes: dict[str, object] = {}
    for field, spec in option_fields():
        value = getattr(options, field.name)
        if spec.tunnel is not None and value is not None and value != field.default:
            changes[spec.tunnel] = value
    return changes
