"""Run the official client (tests/interop/driver.mjs) against a LocalNetwork.

Shared by the interop test and bench/interop.py. The network runs in this
process; the driver (node + playwright-core + Debian chromium) is a child
process that prints one JSON line per stage.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from smolmix_cli.config import Network
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = HERE / "node_modules"
PACKAGE = NODE_MODULES / "@nymproject" / "mix-tunnel" / "dist" / "esm" / "index.js"
BIG = 1024 * 1024
WS_MESSAGE = "hello from the official client"


def missing_prerequisites() -> str | None:
    """Why the interop test cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} missing (tests/interop/setup.sh installs Debian's chromium)"
    if shutil.which("node") is None:
        return "node missing"
    if not PACKAGE.exists() or not (NODE_MODULES / "playwright-core").exists():
        return "tests/interop/node_modules missing (run tests/interop/setup.sh: npm ci)"
    return None


@dataclass
class Interop:
    local: LocalNetwork
    network: Network
    state_dir: Path

    def driver_config(self, log_file: Path, **overrides: Any) -> dict[str, Any]:
        directory = self.local.directory
        assert directory is not None
        return driver_config(self.network, directory.port, log_file, **overrides)


def driver_config(
    net: Network, directory_port: int, log_file: Path, **overrides: Any
) -> dict[str, Any]:
    """driver.mjs's config for this local network (cover and Poisson off unless overridden)."""
    demo = net.demo
    assert demo is not None  # pins are optional: the mainnet shape has none
    cfg: dict[str, Any] = {
        "chromium": str(CHROMIUM),
        "directoryPort": directory_port,
        "gateway": None if net.entry_gateway is None else net.entry_gateway.identity,
        "ipr": net.exits[0].ipr_address if net.exits else None,
        "dns": net.dns_resolver,
        "dnsName": demo.zone,
        "pageUrl": f"http://{demo.zone}/",
        "bigUrl": f"http://{demo.zone}/bytes/{BIG}",
        "wsUrl": f"ws://{demo.zone}:{demo.ports['ws']}/",
        "wsMessage": WS_MESSAGE,
        "disableCoverTraffic": True,
        "disablePoissonTraffic": True,
        "logFile": str(log_file),
    }
    cfg.update(overrides)
    return cfg


@asynccontextmanager
async def interop_network(
    state_dir: Path, *, mainnet_shape: bool = False, **options: Any
) -> AsyncIterator[Interop]:
    """A LocalNetwork with the demo origin on loopback for the official client: one exit, or
    the mainnet shape (hundreds of listed nodes, faulty ones among the real, nothing pinned)."""
    values = {"mean_delay_ms": 0.0, **options}
    shaped = LocalNetworkOptions.mainnet if mainnet_shape else LocalNetworkOptions
    local = LocalNetwork(shaped(state_dir, **values))
    async with anyio.create_task_group() as tg:
        network = await tg.start(local.serve)
        try:
            yield Interop(local, network, state_dir)
        finally:
            tg.cancel_scope.cancel()


async def run_driver(
    cfg: dict[str, Any],
    config_path: Path,
    timeout: float,
    on_line: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> list[dict[str, Any]]:
    """Run driver.mjs with this config; its stage lines (a killed driver gives what it printed).
    `on_line` hears each line as it comes (with `announceStages`, a stage's start too)."""
    config_path.write_text(json.dumps(cfg))
    lines: list[dict[str, Any]] = []
    async with await anyio.open_process(
        ["node", str(HERE / "driver.mjs"), str(config_path)], cwd=HERE
    ) as proc:
        assert proc.stdout is not None
        buffer = b""
        with anyio.move_on_after(timeout):
            async for chunk in proc.stdout:
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if on_line is not None:
                        await on_line(record)
                    if "stage" in record:
                        lines.append(record)
        if proc.returncode is None:
            proc.kill()
    return lines
