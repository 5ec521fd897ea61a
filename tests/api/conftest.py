"""One local network per test module, and the environment its tunnels boot in.

`net` runs the network in-process, on an event loop in a thread of its own (an
anyio blocking portal), so async tests, blocking code (`connect_sync`,
httpx.Client) and the README's examples all reach it by its network file.
`net_process` runs it as `smolmix testnet up` instead, for the modules that
measure the client's memory with tracemalloc (which traces every thread of a
process, the network's nodes included). Either way tunnels boot in-process:
the runtime dir is private, so no developer's session is attached to.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from anyio.from_thread import start_blocking_portal

from smolmix_cli.config import load_network_file
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from tests.e2e.cli_net import start_network


@dataclass
class LocalNet:
    file: Path
    ports: dict[str, int]
    """The demo origin's loopback listeners (http, https, ws, dns...)."""

    def loopback(self, scheme: str = "http") -> str:
        """The demo origin on 127.0.0.1: a real server the exit connects to by address."""
        return f"{scheme}://127.0.0.1:{self.ports[scheme]}"

    @classmethod
    def of(cls, file: Path) -> LocalNet:
        demo = load_network_file(file).demo
        assert demo is not None
        return cls(file, dict(demo.loopback_ports))


@contextmanager
def private_env(state: Path) -> Iterator[None]:
    with (
        pytest.MonkeyPatch.context() as env,
        tempfile.TemporaryDirectory(prefix="smx-api-", dir="/tmp") as run,
    ):
        env.setenv("SMOLMIX_RUNTIME_DIR", run)
        env.setenv("XDG_STATE_HOME", str(state / "xdg"))
        for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION", "SMOLMIX_NO_SESSION"):
            env.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    state = tmp_path_factory.mktemp("net")
    with private_env(state), start_blocking_portal() as portal:
        local = LocalNetwork(LocalNetworkOptions(state / "testnet", mean_delay_ms=0.0, seed=19))
        future, _network = portal.start_task(local.serve)
        try:
            yield LocalNet.of(local.network_file)
        finally:
            future.cancel()


@pytest.fixture(scope="module")
def net_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNet]:
    state = tmp_path_factory.mktemp("net")
    with private_env(state):
        running = start_network(state / "testnet")
        try:
            yield LocalNet.of(next(running))
        finally:
            running.close()
