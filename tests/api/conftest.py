"""One in-process local network per test module, on an event loop of its own.

The network runs in a thread (an anyio blocking portal) so that async tests,
blocking code (`connect_sync`, httpx.Client) and the README's examples all
reach it the same way: by its network file. Each module's tunnels boot
in-process (a private runtime dir, so no developer's session is attached to).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions


@dataclass
class LocalNet:
    local: LocalNetwork
    file: Path
    portal: BlockingPortal


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    state = tmp_path_factory.mktemp("net")
    with (
        pytest.MonkeyPatch.context() as env,
        tempfile.TemporaryDirectory(prefix="smx-api-", dir="/tmp") as run,
        start_blocking_portal() as portal,
    ):
        env.setenv("SMOLMIX_RUNTIME_DIR", run)
        env.setenv("XDG_STATE_HOME", str(state / "xdg"))
        for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION", "SMOLMIX_NO_SESSION"):
            env.delenv(name, raising=False)
        local = LocalNetwork(LocalNetworkOptions(state / "testnet", mean_delay_ms=0.0, seed=19))
        future, _network = portal.start_task(local.serve)
        try:
            yield LocalNet(local, local.network_file, portal)
        finally:
            future.cancel()
