"""A whole local Nym network in one task group: directory, mix layers, gateways, exits.

`LocalNetwork.serve` starts every node on loopback (free ports), then the
directory built from the nodes' bound specs, then one exit IPR behind each
exit gateway (its address published in the directory's `described` answer)
and the demo origin, then writes the network file clients select with
`--network`. Node keys, IPR keys and gateway registrations are kept in the
state dir, so a restarted network keeps its identities, its IPR addresses and
the clients registered with its gateways.

Demo addresses: the demo zone hands out 198.18.0.1 / 2001:2::1 (the
benchmarking ranges, never routed on the internet); every exit maps them to
the loopback servers: port 80 HTTP, 443 HTTPS (also DoH at /dns-query), 8080
ws, 8443 wss, 53 DNS (UDP and TCP), 853 DNS over TLS. Through the tunnel the
resolver is 198.18.0.1:53.

`LocalNetworkOptions.shape` says how many faulty real nodes and listed-but-absent
decoys run beside the healthy ones (shape.py, decoys.py); the lab shape has none.

`LocalNetworkOptions.processes` > 1 spreads the nodes and exit IPRs over that many
processes (workers.py, worker.py); the directory, the demo origin and the control
endpoints stay in this one, and chaos on a worker's node goes there as requests
(control.py). The network's identities, files and answers are the same.
"""

from __future__ import annotations

import json
import os
import random
import ssl
import time
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from smolmix_cli.config import (
    DemoInfo,
    ExitInfo,
    GatewayInfo,
    Network,
    load_network_file,
    network_file_json,
    write_private_json,
)
from smolmix_cli.mixnet.client.key_store import KeyStore
from smolmix_cli.mixnet.directory.api_urls import ApiUrl
from smolmix_cli.mixnet.directory.nym_api import NymApiClient
from smolmix_cli.mixnet.gateway.gateway_connection import GatewayRegistry
from smolmix_cli.mixnet.topology.topology import NodeRole, Topology
from smolmix_cli.network_choice import NETWORK_FILE
from smolmix_cli.testnet.ca import create_ca, load_or_create_ca, server_hosts
from smolmix_cli.testnet.control import NetworkControl, Schedules
from smolmix_cli.testnet.decoys import dead_ports, decoy_nodes
from smolmix_cli.testnet.directory import (
    STATUS_PATH,
    Answer,
    DirectoryNode,
    DirectoryServer,
    DirectoryState,
)
from smolmix_cli.testnet.exit.ipr import ExitIpr, ExitIprOptions
from smolmix_cli.testnet.exit.nat import AddressMap
from smolmix_cli.testnet.exit.policy import ExitPolicy
from smolmix_cli.testnet.nodes.gateway import MAX_CLIENTS, GatewayNode
from smolmix_cli.testnet.nodes.mixnode import MixNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec, NodeSpecError
from smolmix_cli.testnet.nodes.replay import DEFAULT_CAPACITY as DEFAULT_REPLAY_CAPACITY
from smolmix_cli.testnet.origin.dns import ZONE
from smolmix_cli.testnet.origin.origin import DemoOrigin
from smolmix_cli.testnet.shape import (
    ENTRY_ID,
    EXIT_ID,
    LAB,
    MAINNET,
    MAINNET_EXITS,
    MAINNET_MIX_NODES,
    V10_BUILD_VERSION,
    Fault,
    NetworkShape,
    PlannedNode,
    plan,
)
from smolmix_cli.testnet.workers import Placement, Unit, open_workers, place, watch

NODES_FILE = "nodes.json"
MAX_EXITS = 150  # healthy exits; with the faulty ones and entry gateways ids stay <= 199
DEMO_IPV4 = IPv4Address("198.18.0.1")
DEMO_IPV6 = IPv6Address("2001:2::1")
DEMO_PORTS = {"http": 80, "https": 443, "ws": 8080, "wss": 8443, "dns": 53, "dot": 853}
DEMO_NAMES = (ZONE, f"www.{ZONE}", f"alias.{ZONE}", f"*.{ZONE}")
IPR_BUILD_VERSION = "1.31.0"  # what the exits' directory entries show (v9 for the client)
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
    exits: int = 1  # exit gateways, each with an exit IPR
    exit_ipr: bool = True
    demo_origin: bool = True
    exit_policy: str | None = None  # torrc-style text; None = the local network's policy
    ipr_build_version: str = IPR_BUILD_VERSION
    schedules: Schedules = field(default_factory=Schedules)  # rotations, reshuffles (off)
    shape: NetworkShape = field(default=LAB)
    replay_capacity: int = DEFAULT_REPLAY_CAPACITY  # replay tags per node and Sphinx key
    processes: int = 1  # > 1: nodes spread over this many processes (this one included)

    @classmethod
    def mainnet(cls, state_dir: Path, **changes: Any) -> LocalNetworkOptions:
        """The mainnet shape with its defaults (healthy exits, two mix nodes per layer)."""
        values: dict[str, Any] = {
            "exits": MAINNET_EXITS,
            "mix_nodes": MAINNET_MIX_NODES,
            "shape": MAINNET,
        }
        return cls(state_dir=state_dir, **{**values, **changes})

    def planned(self) -> list[PlannedNode]:
        return plan(self.shape, self.exits, self.mix_nodes)

    def __post_init__(self) -> None:
        if self.mean_delay_ms < 0:
            raise ValueError("mean delay must be >= 0")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("loss must be in [0, 1)")
        if self.mix_nodes < 3:
            raise ValueError("a network needs at least 3 mix nodes (one per layer)")
        if not 1 <= self.exits <= MAX_EXITS:
            raise ValueError(f"exits must be 1..{MAX_EXITS}")
        if self.processes < 1:
            raise ValueError("processes must be >= 1")
        self.planned()  # ValueError when the shape's nodes do not fit the id scheme


def exit_ids(exits: int) -> list[int]:
    """The healthy exits' ids (faulty exits follow them)."""
    return [EXIT_ID + i for i in range(exits)]


def _layout(specs: list[NodeSpec]) -> list[tuple[int, NodeRole]]:
    """Which node has which role (mix layers may have been reshuffled since: kept)."""
    return [(s.node_id, s.role) for s in specs]


def load_or_create_specs(
    state_dir: Path,
    mix_nodes: int,
    host: str,
    exits: int = 1,
    shape: NetworkShape = LAB,
) -> list[NodeSpec]:
    """The node keys of earlier runs if they fit this shape, else new ones (saved 0600)."""
    path = state_dir / NODES_FILE
    wanted = plan(shape, exits, mix_nodes)
    try:
        data = json.loads(path.read_text())
        specs = [NodeSpec.from_json(d) for d in data["nodes"]]
        if _layout(specs) == [(p.node_id, p.role) for p in wanted] and all(
            s.host == host for s in specs
        ):
            return specs
    except (OSError, ValueError, KeyError, TypeError, NodeSpecError):
        pass
    specs = [NodeSpec.generate(p.node_id, p.role, layer=p.layer, host=host) for p in wanted]
    for stale in state_dir.glob("gateway-*.json"):
        stale.unlink()  # registrations at gateways whose keys are gone (they name the old key)
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
        self.directory_state: DirectoryState | None = None
        self.exits: dict[int, ExitIpr] = {}
        self.origin: DemoOrigin | None = None
        self.network: Network | None = None
        self.started_at = 0.0
        self._tg: anyio.abc.TaskGroup | None = None
        self._scope: anyio.CancelScope | None = None
        self._finished: dict[int, anyio.Event] = {}
        self._gateway_tls: ssl.SSLContext | None = None
        self._rogue_tls: ssl.SSLContext | None = None
        self.faults: dict[int, Fault] = {
            p.node_id: p.fault for p in options.planned() if p.fault is not None
        }
        self._client_tls: ssl.SSLContext | None = None
        self._exit_scopes: dict[int, tuple[anyio.CancelScope, anyio.Event]] = {}
        self.control = NetworkControl(self, schedules=options.schedules, seed=options.seed)
        self.directory_url: str | None = None
        self.origin_ports: dict[str, int] | None = None
        # --processes: which process runs what, and what the workers last reported
        self.placement = Placement()
        self.remote_exits: dict[int, str] = {}  # node id -> IPR address, exits in workers
        self.worker_status: dict[int, dict[str, Any]] = {}  # worker index -> its status

    @property
    def state_dir(self) -> Path:
        return self.options.state_dir

    @property
    def network_file(self) -> Path:
        return self.state_dir / NETWORK_FILE

    def _load_tls(self) -> Any:
        """The network's CA and the TLS contexts its gateways and exits use."""
        opts = self.options
        hosts = server_hosts(opts.host) + (DEMO_NAMES if opts.demo_origin else ())
        certs = load_or_create_ca(self.state_dir, hosts)
        # Gateways also listen for wss with a certificate from the network's CA. They
        # announce no hostname, so clients (ours and the official one) keep ws unless told.
        self._gateway_tls = certs.server_context() if opts.tls else None
        if Fault.BAD_CERT in self.faults.values():
            # A CA no client trusts: the bad-cert gateways announce wss with it.
            self._rogue_tls = create_ca(
                self.state_dir / "rogue-ca", ("localhost",)
            ).server_context()
        self._client_tls = certs.client_context()
        return certs

    def _place(self, specs: list[NodeSpec]) -> None:
        """Which process runs each exit IPR and node (heaviest first; see workers.place)."""
        ipr = self.options.exit_ipr
        exits: list[Unit] = [
            ("exit", s.node_id)
            for s in specs
            if ipr
            and s.role is NodeRole.EXIT_GATEWAY
            and self.faults.get(s.node_id) is not Fault.NR_ONLY
        ]
        gateways: list[Unit] = [("node", s.node_id) for s in specs if s.is_gateway]
        mixes: list[Unit] = [("node", s.node_id) for s in specs if s.role is NodeRole.MIXNODE]
        self.placement = Placement(place(exits + gateways + mixes, self.options.processes))

    def host_in(self, tg: anyio.abc.TaskGroup) -> None:
        """Run nodes in `tg` on request (a worker process's side of --processes)."""
        self._tg = tg
        self._load_tls()

    async def start_here(self, spec: NodeSpec) -> NodeSpec:
        """Start one node in this process (a worker's request); its spec with bound ports."""
        if spec.role is NodeRole.MIXNODE:
            await self._start_mixnode(spec)
        else:
            await self._start_gateway(spec)
        return self.specs[spec.node_id]

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[Network] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        opts = self.options
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        certs = self._load_tls()
        specs = load_or_create_specs(
            self.state_dir, opts.mix_nodes, opts.host, opts.exits, opts.shape
        )
        self._place(specs)
        with dead_ports(opts.host) as dead, anyio.CancelScope() as scope:
            self._scope = scope
            async with (
                open_workers(opts.processes - 1, opts) as workers,
                anyio.create_task_group() as tg,
            ):
                self.placement.started(workers)
                for worker in workers:
                    tg.start_soon(watch, worker)
                self._tg = tg
                for spec in specs:
                    if spec.role is NodeRole.MIXNODE:
                        await self._start_mixnode(spec)
                for spec in specs:
                    if spec.is_gateway:
                        await self._start_gateway(spec)
                listed = [self._listed(self.specs[s.node_id]) for s in specs]
                decoys = decoy_nodes(opts.shape, random.Random(self.rng.random()), dead)
                state = DirectoryState(
                    listed + decoys,
                    absolute_epoch_id=specs[0].rotation_id * VALIDITY_EPOCHS,
                    rotation_id=specs[0].rotation_id,
                    validity_epochs=VALIDITY_EPOCHS,
                    epoch_seconds=opts.schedules.epoch_seconds(VALIDITY_EPOCHS),
                    status_provider=self.status,
                    paginate=opts.shape.paginate,
                )
                directory = DirectoryServer(
                    state,
                    host=opts.host,
                    port=opts.directory_port,
                    ssl_context=certs.server_context() if opts.tls else None,
                    control=self._answer,
                )
                await tg.start(directory.serve)
                self.directory = directory
                self.directory_state = state
                self.directory_url = directory.base_url
                if opts.demo_origin:
                    self.origin = await self._start_origin(certs.server_context())
                    self.origin_ports = self.origin.ports()
                if opts.exit_ipr:
                    await self._start_exits()
                tg.start_soon(self.control.run_schedules)
                self.started_at = time.time()
                write_private_json(self.network_file, self._network_json(certs.ca_cert.read_text()))
                self.network = load_network_file(self.network_file, name="testnet")
                task_status.started(self.network)
                await anyio.sleep_forever()

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    def _listed(self, spec: NodeSpec) -> DirectoryNode:
        """How a real node shows in the directory, faults included."""
        node = DirectoryNode.from_spec(spec)
        fault = self.faults.get(spec.node_id)
        if fault is Fault.NR_ONLY:
            return replace(node, supported_roles=replace(node.supported_roles, exit_ipr=False))
        if fault is Fault.UNROUTABLE:  # exit-providers-only: not an entry gateway
            return replace(node, supported_roles=replace(node.supported_roles, entry=False))
        return node

    def _network_json(self, ca_pem: str) -> dict[str, Any]:
        assert self.directory is not None
        base = self.directory.base_url
        root = base[: -len("api/")]
        pinned = self.options.shape.pinned
        return network_file_json(
            directory_url=base,
            ca_pem=ca_pem,
            mean_delay_ms=self.options.mean_delay_ms,
            entry_gateway=self._gateway_info(ENTRY_ID) if pinned else None,
            exit_gateway=self._gateway_info(EXIT_ID) if pinned else None,
            status_url=root + STATUS_PATH.lstrip("/"),
            exits=[self._exit_info(i) for i in exit_ids(self.options.exits) if self.has_exit(i)]
            if pinned
            else [],
            dns_resolver=f"{DEMO_IPV4}:53" if self.origin is not None else None,
            demo=self._demo_info(),
            extra={
                "pid": os.getpid(),
                "loss": self.options.loss,
                "shape": self.options.shape.describe(),
                "nodes": [
                    {**self.specs[i].to_json(), "fault": self._fault_name(i)}
                    for i in sorted(self.specs)
                ],
                "control": self.control.network_file_entry(root),
                "processes": self._processes(),
            },
        )

    def _gateway_info(self, node_id: int) -> GatewayInfo:
        spec = self.specs[node_id]
        url = spec.ws_url()
        assert url is not None
        return GatewayInfo(node_id, spec.identity.public_base58(), url + "/")

    def has_exit(self, node_id: int) -> bool:
        return node_id in self.exits or node_id in self.remote_exits

    def _exit_address(self, node_id: int) -> str:
        if node_id in self.remote_exits:
            return self.remote_exits[node_id]
        address = self.exits[node_id].address
        assert address is not None
        return str(address)

    def _exit_info(self, node_id: int) -> ExitInfo:
        gateway = self._gateway_info(node_id)
        return ExitInfo(
            gateway.node_id, gateway.identity, gateway.ws_url, self._exit_address(node_id)
        )

    def _processes(self) -> list[dict[str, Any]]:
        return self.placement.table(["directory", "origin", "control"])

    def _demo_info(self) -> DemoInfo | None:
        origin = self.origin
        if origin is None:
            return None
        return DemoInfo(
            zone=ZONE,
            ipv4=str(DEMO_IPV4),
            ipv6=str(DEMO_IPV6),
            ports=dict(DEMO_PORTS),
            loopback_host=origin.host,
            loopback_ports=origin.ports(),
        )

    # --- the exits and the demo origin -------------------------------------------------------

    async def _start_origin(self, ssl_context: ssl.SSLContext) -> DemoOrigin:
        assert self._tg is not None
        origin = DemoOrigin(
            host="127.0.0.1", ssl_context=ssl_context, ipv4=[str(DEMO_IPV4)], ipv6=[str(DEMO_IPV6)]
        )
        started = anyio.Event()

        async def run() -> None:
            async with origin:
                started.set()
                await anyio.sleep_forever()

        self._tg.start_soon(run)
        await started.wait()
        return origin

    def address_map(self) -> AddressMap:
        """Demo addresses to the loopback servers (what every exit of this network does)."""
        amap = AddressMap()
        targets = self.origin_ports
        for address in (DEMO_IPV4, DEMO_IPV6):
            amap.map_address(address, "127.0.0.1")
            if targets is None:
                continue
            for service, port in DEMO_PORTS.items():
                if targets[service]:
                    amap.map_port(address, port, "127.0.0.1", targets[service])
        return amap

    def _exit_policy(self) -> ExitPolicy:
        if self.options.exit_policy is not None:
            return ExitPolicy.parse(self.options.exit_policy)
        return ExitPolicy.local_network()

    async def _start_exits(self) -> None:
        topology = await self.fetch_topology()
        for node_id, spec in sorted(self.specs.items()):
            if spec.role is NodeRole.EXIT_GATEWAY and self.faults.get(node_id) is not Fault.NR_ONLY:
                await self.start_exit(node_id, topology)  # a network-requester-only exit: no IPR

    async def fetch_topology(self) -> Topology:
        """The directory's current topology, as a client reads it."""
        assert self.directory_url is not None
        api = NymApiClient([ApiUrl(self.directory_url)], ssl_context=self._client_tls, timeout=5)
        return await api.topology()

    async def start_exit(self, node_id: int, topology: Topology | None = None) -> None:
        """Run the exit IPR behind gateway `node_id`; its key store keeps its address."""
        assert self.directory_state is not None
        worker = self.placement.worker_of(("exit", node_id))
        if worker is None:
            address = str(await self.serve_exit(node_id, topology))
        else:
            gateway = self.specs[node_id].to_json(private=True)
            address = await worker.call(
                "start_exit", gateway, self.directory_url, self.origin_ports
            )
            self.remote_exits[node_id] = address
        if node_id not in self.control.unlisted:
            fault = self.faults.get(node_id)
            build = V10_BUILD_VERSION if fault is Fault.V9_ONLY else self.options.ipr_build_version
            self.directory_state.update_node(node_id, ipr_address=address, build_version=build)

    async def serve_exit(self, node_id: int, topology: Topology | None = None) -> Any:
        """Run the exit IPR behind gateway `node_id` in this process; its address."""
        assert self._tg is not None
        fault = self.faults.get(node_id)
        source = self.fetch_topology
        if fault is Fault.UNROUTABLE:
            # an exit-providers-only gateway is not in entry-gateways: its own IPR still
            # knows it (nym-node's IPR runs inside the node)
            spec = self.specs[node_id]

            async def source() -> Topology:
                return _with_node(await self.fetch_topology(), spec)

        exit_ipr = ExitIpr(
            await source() if topology is None or fault is Fault.UNROUTABLE else topology,
            self.specs[node_id].identity.public_bytes,
            key_store=KeyStore.open(self.state_dir / f"exit-ipr-{node_id}"),
            ssl_context=self._client_tls,
            options=ExitIprOptions(
                policy=self._exit_policy(),
                address_map=self.address_map(),
                silent=fault is Fault.SILENT,
                v9_only=fault is Fault.V9_ONLY,
                connect_delay=self.options.shape.slow_delay_s if fault is Fault.SLOW else 0.0,
            ),
            rng=random.Random(self.rng.random()) if self.options.seed is not None else None,
            topology_source=source,
        )
        address = await self._tg.start(self._run_exit, node_id, exit_ipr)
        self.exits[node_id] = exit_ipr
        return address

    async def _run_exit(
        self,
        node_id: int,
        exit_ipr: ExitIpr,
        *,
        task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        done = anyio.Event()
        with anyio.CancelScope() as scope:
            self._exit_scopes[node_id] = (scope, done)
            try:
                await exit_ipr.serve(task_status=task_status)
            finally:
                done.set()

    async def stop_exit(self, node_id: int) -> None:
        """End the exit IPR behind gateway `node_id` (its gateway keeps running)."""
        scope, done = self._exit_scopes[node_id]
        scope.cancel()
        with anyio.fail_after(10):
            await done.wait()

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

    async def _start_remote(self, spec: NodeSpec) -> bool:
        """Start `spec`'s node in its worker, if it has one (True then)."""
        worker = self.placement.worker_of(("node", spec.node_id))
        if worker is None:
            return False
        started = await worker.call("start_node", spec.to_json(private=True))
        self.specs[spec.node_id] = NodeSpec.from_json(started)
        return True

    async def _start_mixnode(self, spec: NodeSpec) -> None:
        if await self._start_remote(spec):
            return
        node = MixNode(
            spec,
            loss=self.options.loss,
            rng=random.Random(self.rng.random()),
            replay_capacity=self.options.replay_capacity,
        )
        self.mixnodes[spec.node_id] = node
        await self._start_node(node)

    async def _start_gateway(self, spec: NodeSpec, registry: GatewayRegistry | None = None) -> None:
        if await self._start_remote(spec):
            return
        fault = self.faults.get(spec.node_id)
        tls = self._gateway_tls
        if fault is Fault.BAD_CERT:
            # announced as wss://localhost with a certificate from a CA nobody trusts
            spec, tls = replace(spec, hostname="localhost"), self._rogue_tls
        node = GatewayNode(
            spec,
            registry=registry,
            ssl_context=tls,
            state_path=self._gateway_state(spec.node_id),
            loss=0.0,
            rng=random.Random(self.rng.random()),
            enforce_zk_nyms=fault is Fault.ZK_NYM,
            close_after_hello=fault is Fault.CLOSE_AFTER_HELLO,
            max_clients=0 if fault is Fault.FULL else MAX_CLIENTS,
            replay_capacity=self.options.replay_capacity,
        )
        self.gateways[spec.node_id] = node
        await self._start_node(node)

    async def relaunch(self, node_id: int, registry: GatewayRegistry | None = None) -> None:
        """Start a stopped node again from its current spec: same ports, current keys."""
        spec = self.specs[node_id]
        if node_id in self.mixnodes:
            await self._start_mixnode(spec)
        else:
            await self._start_gateway(spec, registry=registry)

    async def wait_stopped(self, node_id: int, timeout: float = 10.0) -> None:
        with anyio.fail_after(timeout):
            await self._finished[node_id].wait()

    def save_specs(self) -> None:
        """The nodes' current keys and layers to nodes.json (ports left to the next start)."""
        specs = [
            replace(s, mix_port=0, ws_port=None if s.ws_port is None else 0, wss_port=None)
            for _, s in sorted(self.specs.items())
        ]
        write_private_json(
            self.state_dir / NODES_FILE, {"nodes": [s.to_json(private=True) for s in specs]}
        )

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

    async def _answer(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]]
    ) -> Answer | None:
        """The directory's hook: fresh worker counters before a status answer, then control."""
        if self.placement.workers and target.split("?")[0] == STATUS_PATH:
            for worker in self.placement.workers:
                self.worker_status[worker.index] = await worker.call("status")
        return await self.control.answer(method, target, headers)

    def local_status(self) -> dict[str, Any]:
        """The counters of the nodes and exit IPRs this process runs."""
        nodes = {**self.mixnodes, **self.gateways}
        return {
            "nodes": {i: {k: int(v) for k, v in n.counters.items()} for i, n in nodes.items()},
            "exits": {i: e.stats() for i, e in self.exits.items()},
        }

    def status(self) -> dict[str, Any]:
        here = self.local_status()
        counters, exit_stats = dict(here["nodes"]), dict(here["exits"])
        for answer in self.worker_status.values():
            counters.update(answer["nodes"])
            exit_stats.update(answer["exits"])
        nodes = []
        for node_id in sorted(self.specs):
            spec = self.specs[node_id]
            nodes.append(
                {
                    "node_id": node_id,
                    "role": spec.to_json()["role"],
                    "fault": self._fault_name(node_id),
                    **self.control.node_status(node_id),
                    "layer": spec.layer,
                    "host": spec.host,
                    "mix_port": spec.mix_port,
                    "ws_port": spec.ws_port,
                    "counters": counters.get(node_id, {}),
                }
            )
            if self.has_exit(node_id):
                nodes[-1]["ipr_address"] = self._exit_address(node_id)
                nodes[-1]["ipr_counters"] = exit_stats.get(node_id, {})
        return {
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0,
            "mean_delay_ms": self.options.mean_delay_ms,
            "loss": self.options.loss,
            "shape": self.options.shape.describe(),
            **self.control.status(),
            "directory": {
                "url": self.directory.base_url if self.directory else None,
                "counters": dict(self.directory.counters) if self.directory else {},
            },
            "nodes": nodes,
            "processes": self._processes(),
        }

    def _fault_name(self, node_id: int) -> str | None:
        fault = self.faults.get(node_id)
        return None if fault is None else str(fault)


def _with_node(topology: Topology, spec: NodeSpec) -> Topology:
    """`topology` plus one node the directory's client lists leave out."""
    return replace(topology, nodes={**topology.nodes, spec.node_id: spec.to_topology_node()})
