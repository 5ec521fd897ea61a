"""Which Nym network a command talks to, and where local state lives.

`--network` (or `SMOLMIX_NETWORK`) is `mainnet` (the default: the real nym-api
URLs of spec 4.1), `testnet` (the local network in the state dir, started on
demand by the CLI), or the path of a network file, so a local network running
on another host can be used. The network file is JSON written by
`smolmix testnet up`; it is self-contained (the CA is inline), so it can be
copied to another machine.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smolmix_cli.mixnet.directory.api_urls import MAINNET_API_URLS, ApiUrl, make_ssl_context
from smolmix_cli.network_choice import APP, state_dir

if TYPE_CHECKING:
    import ssl

PID_FILE = "testnet.pid"
LOG_FILE = "testnet.log"
FILE_FORMAT = "smolmix-network"
FILE_VERSION = 1
MAINNET_MEAN_DELAY_MS = 50.0  # Nym's default average per-hop delay (spec 2.10)


class NetworkConfigError(Exception):
    """A network name or file that cannot be used."""


def runtime_dir() -> Path:
    """XDG runtime dir (0700) for sockets; falls back to the state dir."""
    import platformdirs

    try:
        path = platformdirs.user_runtime_path(APP)
    except Exception:  # platformdirs may not know one on this OS
        path = state_dir() / "run"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    node_id: int
    identity: str  # base58 ed25519
    ws_url: str


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """An exit gateway and the address of the IP packet router behind it."""

    node_id: int
    identity: str  # base58 ed25519 of the gateway
    ws_url: str
    ipr_address: str  # Recipient text: <id>.<enc>@<gateway id>


@dataclass(frozen=True, slots=True)
class DemoInfo:
    """The local network's demo origin as clients see it through the tunnel.

    `ipv4`/`ipv6` are what the zone's names resolve to; `ports` the service
    ports there (http, https, ws, wss, dns). The exits map those to the
    loopback servers at `loopback_host`:`loopback_ports` (for diagnostics).
    """

    zone: str
    ipv4: str
    ipv6: str
    ports: dict[str, int]
    loopback_host: str
    loopback_ports: dict[str, int]


@dataclass(frozen=True, slots=True)
class Network:
    """Everything a client needs to use one Nym network."""

    name: str
    api_urls: tuple[ApiUrl, ...]
    mean_delay_ms: float = MAINNET_MEAN_DELAY_MS
    ca_pem: str | None = None  # trust only this CA (local networks); None = certifi
    entry_gateway: GatewayInfo | None = None
    exit_gateway: GatewayInfo | None = None
    status_url: str | None = None
    file: Path | None = None
    exits: tuple[ExitInfo, ...] = ()  # local networks: every exit IPR (mainnet: discovered)
    dns_resolver: str | None = None  # "ip:port" to query through the tunnel (None: default)
    demo: DemoInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.name != "mainnet"

    def ssl_context(self) -> ssl.SSLContext:
        import ssl  # here: an attached command reads the network and never speaks TLS

        if self.ca_pem is None:
            return make_ssl_context(None)
        return ssl.create_default_context(cadata=self.ca_pem)


MAINNET = Network(name="mainnet", api_urls=MAINNET_API_URLS)


def network_file_json(
    *,
    directory_url: str,
    ca_pem: str,
    mean_delay_ms: float,
    entry_gateway: GatewayInfo | None,
    exit_gateway: GatewayInfo | None,
    status_url: str,
    exits: list[ExitInfo] | None = None,
    dns_resolver: str | None = None,
    demo: DemoInfo | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "directory_url": directory_url,
        "status_url": status_url,
        "mean_delay_ms": mean_delay_ms,
        "entry_gateway": None if entry_gateway is None else _gateway_json(entry_gateway),
        "exit_gateway": None if exit_gateway is None else _gateway_json(exit_gateway),
        "exits": [{**_gateway_json(e), "ipr_address": e.ipr_address} for e in exits or []],
        "dns_resolver": dns_resolver,
        "demo": None if demo is None else _demo_json(demo),
        "ca_pem": ca_pem,
        **(extra or {}),
    }


def _demo_json(d: DemoInfo) -> dict[str, Any]:
    return {
        "zone": d.zone,
        "ipv4": d.ipv4,
        "ipv6": d.ipv6,
        "ports": dict(d.ports),
        "loopback_host": d.loopback_host,
        "loopback_ports": dict(d.loopback_ports),
    }


def _exits(value: Any) -> tuple[ExitInfo, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise NetworkConfigError("exits: expected a list")
    out = []
    for index, item in enumerate(value):
        gateway = _gateway(item, f"exits[{index}]")
        if gateway is None:
            raise NetworkConfigError(f"exits[{index}]: expected an object")
        address = item.get("ipr_address")
        if not isinstance(address, str):
            raise NetworkConfigError(f"exits[{index}]: missing ipr_address")
        out.append(ExitInfo(gateway.node_id, gateway.identity, gateway.ws_url, address))
    return tuple(out)


def _ports(value: Any, where: str) -> dict[str, int]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        raise NetworkConfigError(f"{where}: expected an object of port numbers")
    return dict(value)


def _demo(value: Any) -> DemoInfo | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise NetworkConfigError("demo: expected an object")
    texts = [value.get(k) for k in ("zone", "ipv4", "ipv6", "loopback_host")]
    if not all(isinstance(t, str) for t in texts):
        raise NetworkConfigError("demo: zone, ipv4, ipv6 and loopback_host must be strings")
    zone, ipv4, ipv6, host = (str(t) for t in texts)
    return DemoInfo(
        zone,
        ipv4,
        ipv6,
        _ports(value.get("ports"), "demo.ports"),
        host,
        _ports(value.get("loopback_ports"), "demo.loopback_ports"),
    )


def _gateway_json(g: GatewayInfo | ExitInfo) -> dict[str, Any]:
    return {"node_id": g.node_id, "identity": g.identity, "ws_url": g.ws_url}


def _gateway(value: Any, where: str) -> GatewayInfo | None:
    """A pinned gateway, or None: without a pin the client chooses from the directory."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise NetworkConfigError(f"{where}: expected an object")
    try:
        node_id, identity, ws_url = value["node_id"], value["identity"], value["ws_url"]
    except KeyError as exc:
        raise NetworkConfigError(f"{where}: missing {exc.args[0]!r}") from None
    if not isinstance(node_id, int) or not isinstance(identity, str) or not isinstance(ws_url, str):
        raise NetworkConfigError(f"{where}: bad field types")
    return GatewayInfo(node_id, identity, ws_url)


def load_network_file(path: Path, name: str | None = None) -> Network:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NetworkConfigError(f"no network file at {path}") from None
    except (OSError, ValueError) as exc:
        raise NetworkConfigError(f"cannot read network file {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise NetworkConfigError(f"{path} is not a smolmix network file")
    if data.get("version") != FILE_VERSION:
        raise NetworkConfigError(
            f"{path}: unsupported network file version {data.get('version')!r}"
        )
    url = data.get("directory_url")
    ca = data.get("ca_pem")
    delay = data.get("mean_delay_ms", 0.0)
    if not isinstance(url, str) or not (ca is None or isinstance(ca, str)):
        raise NetworkConfigError(f"{path}: bad directory_url or ca_pem")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise NetworkConfigError(f"{path}: mean_delay_ms must be a non-negative number")
    from smolmix_cli.mixnet.directory.api_urls import DirectoryUnavailable

    try:
        api = ApiUrl(url)
    except DirectoryUnavailable:
        raise NetworkConfigError(f"{path}: bad directory_url {url!r}") from None
    status = data.get("status_url")
    resolver = data.get("dns_resolver")
    if resolver is not None and not isinstance(resolver, str):
        raise NetworkConfigError(f"{path}: dns_resolver must be a string")
    return Network(
        name=name or str(path),
        api_urls=(api,),
        mean_delay_ms=float(delay),
        ca_pem=ca,
        entry_gateway=_gateway(data.get("entry_gateway"), "entry_gateway"),
        exit_gateway=_gateway(data.get("exit_gateway"), "exit_gateway"),
        status_url=status if isinstance(status, str) else None,
        file=path,
        exits=_exits(data.get("exits")),
        dns_resolver=resolver,
        demo=_demo(data.get("demo")),
        extra={k: v for k, v in data.items() if k not in _KNOWN},
    )


_KNOWN = {
    "format",
    "version",
    "directory_url",
    "status_url",
    "mean_delay_ms",
    "entry_gateway",
    "exit_gateway",
    "ca_pem",
    "exits",
    "dns_resolver",
    "demo",
}


def write_private_json(path: Path, data: Any) -> None:
    """Write JSON atomically, 0600 (network files hold no private keys, state files may)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(tmp, path)
