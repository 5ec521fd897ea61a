"""The mixnet half of every boot: directory -> topology -> key store -> gateway -> client.

The tunnel and `smolmix ping` start their mixnet client by the same rules: the
network's directory (a local network's own CA trusted), a topology with a
route through every layer, keys from the data dir (fresh ones without one), a
local network's entry gateway pinned (mainnet: the client's choice), and the
traffic settings the caller's TunnelOptions give for this network. The client
re-reads the topology every `ClientConfig.topology_refresh_interval` and just
after each predicted key rotation, so a long session follows the network.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

from smolmix_cli.config import Network
from smolmix_cli.mixnet.client.client import ClientConfig, MixnetClient
from smolmix_cli.mixnet.client.key_store import KeyStore
from smolmix_cli.mixnet.directory.nym_api import LARGE_TIMEOUT, NymApiClient
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.mixnet.topology.topology import NO_USABLE_ROUTE, NoUsableRoute, Topology

DIRECTORY_TIMEOUT = 10.0  # per directory URL, when no phase timeout divides one among them
REFRESH_TIMEOUT = 120.0  # one background topology refresh, all URLs together


@dataclass(frozen=True)
class Mixnet:
    """A started client and where it came from (the tunnel discovers exits through `api`)."""

    api: NymApiClient
    topology: Topology
    client: MixnetClient


def directory_client(network: Network, phase_timeout: float | None = None) -> NymApiClient:
    """The network's nym-api; with a phase timeout, each URL gets its share of it."""
    per_url, large = DIRECTORY_TIMEOUT, LARGE_TIMEOUT
    if phase_timeout is not None:
        share = phase_timeout / max(1, len(network.api_urls))
        per_url = max(1.0, min(DIRECTORY_TIMEOUT, share))
        large = max(per_url, min(LARGE_TIMEOUT, share))
    return NymApiClient(
        network.api_urls, ssl_context=network.ssl_context(), timeout=per_url, large_timeout=large
    )


async def fetch_topology(
    network: Network, timeout: float | None = None, *, api: NymApiClient | None = None
) -> Topology:
    """The network's topology, within `timeout` for all directory URLs together."""
    if api is None:
        api = directory_client(network, timeout)
    with anyio.fail_after(timeout):
        topology = await api.topology()
    if not topology.is_usable:
        raise NoUsableRoute(NO_USABLE_ROUTE)
    return topology


@asynccontextmanager
async def start_client(
    network: Network,
    topology: Topology,
    config: ClientConfig,
    *,
    data_dir: Path | None = None,
    gateway: bytes | None = None,
    topology_source: Callable[[], Awaitable[Topology]] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> AsyncIterator[MixnetClient]:
    """A started client: keys from `data_dir`, on `gateway` or a local network's entry."""
    store = KeyStore.open(data_dir / "client") if data_dir is not None else KeyStore.ephemeral()
    if gateway is None and network.is_local and network.entry_gateway is not None:
        gateway = decode_key_base58(network.entry_gateway.identity, "entry gateway identity")
    async with MixnetClient.start(
        topology,
        gateway=gateway,
        key_store=store,
        ssl_context=network.ssl_context() if network.is_local else None,
        config=config,
        topology_source=topology_source,
        on_phase=on_phase,
    ) as client:
        yield client


@asynccontextmanager
async def boot_mixnet(
    network: Network,
    config: ClientConfig,
    *,
    data_dir: Path | None = None,
    phase_timeout: float | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> AsyncIterator[Mixnet]:
    """Directory, then gateway (each within `phase_timeout`, if given); the client while open."""
    report = on_phase if on_phase is not None else (lambda _text: None)
    api = directory_client(network, phase_timeout)
    report("reading the directory")
    topology = await fetch_topology(network, phase_timeout, api=api)
    # One line: a tunnel shows only its latest phase, and the gateway's follows at once.
    report(f"directory: {topology.summary()}; connecting to the gateway")

    async def refresh() -> Topology:
        return await fetch_topology(network, REFRESH_TIMEOUT, api=api)

    with anyio.fail_after(phase_timeout) as gateway_phase:
        async with start_client(
            network,
            topology,
            config,
            data_dir=data_dir,
            topology_source=refresh,
            on_phase=report,
        ) as client:
            gateway_phase.deadline = math.inf  # up: the caller's own work is not bounded here
            yield Mixnet(api, topology, client)
