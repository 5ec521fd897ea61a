"""A whole local Nym network in one task group: directory, mix layers, two gateways.

`LocalNetwork.serve` starts every node on loopback (free ports), then the
directory built from the nodes' bound specs, then writes the network file
clients select with `--network`. Node keys and gateway registrations are kept
in the state dir, so a restarted network keeps its identities and the
clients registered with its gateways.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from smolmix_cli.config import (
    NETWORK_FILE,
    GatewayInfo,
    Network,
    load_network_file,
    network_file_json,
    write_private_json,
)
from smolmix_cli.mixnet.gateway_session import GatewayRegistry
from smolmix_cli.mixnet.topology import NodeRole
from smolmix_cli.testnet.ca import load_or_create_ca, server_hosts
from smolmix_cli.testnet.directory import (
    STATUS_PATH,
    DirectoryNode,
    DirectoryServer,
    DirectoryState,
)
from smolmix_cli.testnet.gateway import GatewayNode
from smolmix_cli.testnet.mixnode import MixNode
from smolmix_cli.testnet.node_spec import NodeSpec, NodeSpecError

NODES_FILE = "nodes.json"
ENTRY_ID = 1
EXIT_ID = 2
FIRST_MIX_ID = 11
VALIDITY_EPOCHS = 10
DEFAULT_MEAN_DELAY_MS = 10.0


@dataclass(frozen=True, slots=True)
class LocalNetworkOptions:
    state_dir: Path
    mean_delay_ms: float = DEFAULT_MEAN_DELAY_MS
    loss: float = 0.0
    mix_nodes: int = 3  # spread over layers 1..3, at least one each
    host: str = "127.0.0.1"
    directory_port: int = 0
    tls: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.mean_delay_ms < 0:
            raise ValueError("mean delay must be >= 0")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("loss must be in [0, 1)")
        if self.mix_nodes < 3:
            raise ValueError("a network needs at least 3 mix nodes (one per layer)")


def _layer_of(index: int) -> int:
    return index % 3 + 1


def _fresh_specs(mix_nodes: int, host: str) -> list[NodeSpec]:
    specs = [
        NodeSpec.generate(ENTRY_ID, NodeRole.ENTRY_GATEWAY, host=host),
        NodeSpec.generate(EXIT_ID, NodeRole.EXIT_GATEWAY, host=host),
    ]
    specs += [
        NodeSpec.generate(FIRST_MIX_ID + i, NodeRole.MIXNODE, layer=_layer_of(i), host=host)
        for i in range(mix_nodes)
    ]
    return specs


def load_or_create_specs(state_dir: Path, mix_nodes: int, host: str) -> list[NodeSpec]:
    """The node keys of earlier runs if they fit this shape, else new ones (saved 0600)."""
    path = state_dir / NODES_FILE
    try:
        data = json.loads(path.read_text())
        specs = [NodeSpec.from_json(d) for d in data["nodes"]]
        mixes = [s for s in specs if s.role is NodeRole.MIXNODE]
        if len(mixes) == mix_nodes and len(specs) == mix_nodes + 2 and specs[0].host == host:
            return specs
    except (OSError, ValueError, KeyError, TypeError, NodeSpecError):
        pass
    specs = _fresh_specs(mix_nodes, host)
    write_private_json(path, {"nodes": [s.to_json(private=True) for s in specs]})
    return specs


class LocalNetwork:
    """Start with `network = await tg.start(LocalNetwork(options).serve)`; `stop()` ends it."""

    def __init__(self, options: LocalNetworkOptions) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.mixnodes: dict[int, MixNode] = {}
        self.gateways: dict[int, GatewayNode] = {}
        self.specs: dict[int, NodeSpec] = {}
        self.directory: DirectoryServer | None = None
        self.network: Network | None = None
        self.started_at = 0.0
        self._tg: anyio.abc.TaskGroup | None = None
        self._scope: anyio.CancelScope | None = None
        self._finished: dict[int, anyio.Event] = {}

    @property
    def state_dir(self) -> Path:
        return self.options.state_dir

    @property
    def network_file(self) -> Path:
        return self.state_dir / NETWORK_FILE

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[Network] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        opts = self.options
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        certs = load_or_create_ca(self.state_dir, server_hosts(opts.host))
        specs = load_or_create_specs(self.state_dir, opts.mix_nodes, opts.host)
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for spec in specs:
                    if spec.role is NodeRole.MIXNODE:
                        await self._start_mixnode(spec)
                for spec in specs:
                    if spec.is_gateway:
                        await self._start_gateway(spec)
                state = DirectoryState(
                    [DirectoryNode.from_spec(self.specs[s.node_id]) for s in specs],
                    absolute_epoch_id=specs[0].rotation_id * VALIDITY_EPOCHS,
                    rotation_id=specs[0].rotation_id,
                    validity_epochs=VALIDITY_EPOCHS,
                    status_provider=self.status,
                )
                directory = DirectoryServer(
                    state,
                    host=opts.host,
                    port=opts.directory_port,
                    ssl_context=certs.server_context() if opts.tls else None,
                )
                await tg.start(directory.serve)
                self.directory = directory
                self.started_at = time.time()
                write_private_json(self.network_file, self._network_json(certs.ca_cert.read_text()))
                self.network = load_network_file(self.network_file, name="testnet")
                task_status.started(self.network)
                await anyio.sleep_forever()

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    def _network_json(self, ca_pem: str) -> dict[str, Any]:
        assert self.directory is not None
        base = self.directory.base_url
        root = base[: -len("api/")]
        return network_file_json(
            directory_url=base,
            ca_pem=ca_pem,
            mean_delay_ms=self.options.mean_delay_ms,
            entry_gateway=self._gateway_info(ENTRY_ID),
            exit_gateway=self._gateway_info(EXIT_ID),
            status_url=root + STATUS_PATH.lstrip("/"),
            extra={
                "pid": os.getpid(),
                "loss": self.options.loss,
                "nodes": [self.specs[i].to_json() for i in sorted(self.specs)],
            },
        )

    def _gateway_info(self, node_id: int) -> GatewayInfo:
        spec = self.specs[node_id]
        url = spec.ws_url()
        assert url is not None
        return GatewayInfo(node_id, spec.identity.public_base58(), url + "/")

    # --- nodes ---------------------------------------------------------------------------

    async def _start_node(self, node: MixNode | GatewayNode) -> NodeSpec:
        assert self._tg is not None
        started: NodeSpec = await self._tg.start(self._run_node, node)
        self.specs[started.node_id] = started
        return started

    async def _run_node(
        self,
        node: MixNode | GatewayNode,
        *,
        task_status: anyio.abc.TaskStatus[NodeSpec] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        done = anyio.Event()
        self._finished[node.spec.node_id] = done
        try:
            await node.serve(task_status=task_status)
        finally:
            done.set()

    async def _start_mixnode(self, spec: NodeSpec) -> None:
        node = MixNode(spec, loss=self.options.loss, rng=random.Random(self.rng.random()))
        self.mixnodes[spec.node_id] = node
        await self._start_node(node)

    async def _start_gateway(self, spec: NodeSpec, registry: GatewayRegistry | None = None) -> None:
        node = GatewayNode(
            spec,
            registry=registry,
            state_path=self._gateway_state(spec.node_id),
            loss=0.0,
            rng=random.Random(self.rng.random()),
        )
        self.gateways[spec.node_id] = node
        await self._start_node(node)

    def _gateway_state(self, node_id: int) -> Path:
        return self.state_dir / f"gateway-{node_id}.json"

    async def restart_gateway(self, node_id: int, down_for: float = 0.0) -> None:
        """Stop a gateway and start it again on the same ports with the same registrations."""
        old = self.gateways[node_id]
        spec = self.specs[node_id]  # the bound ports
        old.save_state()
        old.stop()
        with anyio.fail_after(10):
            await self._finished[node_id].wait()
        await anyio.sleep(down_for)
        await self._start_gateway(spec, registry=old.registry)

    # --- observation -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        nodes = []
        for node_id in sorted(self.specs):
            spec = self.specs[node_id]
            node: MixNode | GatewayNode = (
                self.mixnodes[node_id] if node_id in self.mixnodes else self.gateways[node_id]
            )
            nodes.append(
                {
                    "node_id": node_id,
                    "role": spec.to_json()["role"],
                    "layer": spec.layer,
                    "host": spec.host,
                    "mix_port": spec.mix_port,
                    "ws_port": spec.ws_port,
                    "counters": {k: int(v) for k, v in node.counters.items()},
                }
            )
        return {
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0,
            "mean_delay_ms": self.options.mean_delay_ms,
            "loss": self.options.loss,
            "directory": {
                "url": self.directory.base_url if self.directory else None,
                "counters": dict(self.directory.counters) if self.directory else {},
            },
            "nodes": nodes,
        }
