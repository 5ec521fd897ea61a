"""A local network (zero mix delay) with the test exit; tunnels open against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

from smolmix_cli.bootstrap import fetch_topology
from smolmix_cli.config import Network
from smolmix_cli.ipr.router_logic import RouterConfig
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.testnet.shape import EXIT_ID
from smolmix_cli.tunnel.options import TunnelOptions, for_local_network
from tests.tunnel.exit_fixture import LocalExit


@dataclass
class Harness:
    local: LocalNetwork
    network: Network
    exit: LocalExit
    ipr: str

    def options(self, **changes: object) -> TunnelOptions:
        changes.setdefault("ipr", self.ipr)
        return for_local_network(**changes)


@asynccontextmanager
async def harness(
    tmp_path: Path,
    *,
    loss: float = 0.0,
    router_config: RouterConfig | None = None,
    publish: bool = True,
    setup: Callable[[LocalExit], None] | None = None,
) -> AsyncIterator[Harness]:
    local = LocalNetwork(
        LocalNetworkOptions(
            tmp_path / "net",
            mean_delay_ms=0.0,
            loss=loss,
            seed=5,
            exit_ipr=False,
            demo_origin=False,
        )
    )
    async with anyio.create_task_group() as tg:
        network = await tg.start(local.serve)
        topology = await fetch_topology(network, 10)
        exit_ = LocalExit(network, topology, router_config=router_config or RouterConfig())
        if setup is not None:
            setup(exit_)
        address = await tg.start(exit_.serve)
        if publish:
            assert local.directory is not None
            local.directory.state.update_node(EXIT_ID, ipr_address=str(address))
        try:
            yield Harness(local, network, exit_, str(address))
        finally:
            tg.cancel_scope.cancel()
