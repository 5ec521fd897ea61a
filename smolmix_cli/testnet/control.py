"""Chaos controls for a running local network: node churn, unlisting, key rotation, reshuffles.

Mainnet nodes crash, restart, drop out of the directory, and every epoch the rewarded set
changes while every few epochs all Sphinx keys rotate. `NetworkControl` does each of these to a
running `LocalNetwork` on demand (in-process, or over the directory's control endpoints with the
network's token) or on a schedule, so a chaos test needs no hand-made network.

The directory keeps the invariant nym's contract keeps (initial epoch 0): the key rotation id is
`absolute_epoch_id // validity_epochs`, so key-rotation-info predicts the next rotation
(nym `common/cosmwasm-smart-contracts/mixnet-contract/src/key_rotation.rs`). Nodes keep the
previous rotation's key as secondary (`PacketNode.rotate_keys`), as nym-node does for one more
epoch, so packets built just before a rotation still pass.

With `--processes`, a node may run in a worker process: the operations on one node go there
as requests (workers.py) and run the same `*_here` functions below, so a node behaves the
same under chaos wherever it runs; the directory and the decisions stay with the controls.
"""

from __future__ import annotations

import enum
import hmac
import json
import random
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import anyio

from smolmix_cli.config import write_private_json
from smolmix_cli.mixnet.gateway.gateway_connection import GatewayRegistry
from smolmix_cli.mixnet.keys import X25519KeyPair
from smolmix_cli.mixnet.topology.topology import NodeRole, Topology
from smolmix_cli.testnet.directory import CORS_HEADERS, Answer, DirectoryNode, DirectoryState
from smolmix_cli.testnet.exit.ipr import ExitIpr
from smolmix_cli.testnet.nodes.gateway import GatewayNode
from smolmix_cli.testnet.nodes.mixnode import MixNode
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from smolmix_cli.testnet.workers import Placement, Worker, WorkerError

CONTROL_PREFIX = "/smolmix/control/"
TOKEN_FILE = "control.json"
NODE_ACTIONS = ("stop", "kill", "start", "restart", "unlist", "list")
STOP_TIMEOUT = 10.0
MAX_DOWN_S = 600.0


class NodeState(enum.StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"  # gracefully: a gateway saved its registrations
    KILLED = "killed"  # abruptly: sockets dropped, nothing saved


class ControlError(Exception):
    """An operation the network refuses; `status` is the HTTP status the endpoint answers."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Schedules:
    """Periodic key rotations and rewarded-set reshuffles (seconds; None = off)."""

    rotate_every: float | None = None
    reshuffle_every: float | None = None

    def __post_init__(self) -> None:
        for period in (self.rotate_every, self.reshuffle_every):
            if period is not None and not period > 0:
                raise ValueError("schedule periods must be > 0 seconds")

    def epoch_seconds(self, validity_epochs: int, default: int = 3600) -> int:
        """The epoch length to announce, so clients' rotation predictions roughly hold.

        A reshuffle starts an epoch; without reshuffles a rotation spans `validity_epochs`.
        """
        if self.reshuffle_every is not None:
            return max(1, round(self.reshuffle_every))
        if self.rotate_every is not None:
            return max(1, round(self.rotate_every / validity_epochs))
        return default


class ControlledNetwork(Protocol):
    """What the controls need of a running network (`LocalNetwork` has it)."""

    specs: dict[int, NodeSpec]
    mixnodes: dict[int, MixNode]  # the nodes and exit IPRs of this process
    gateways: dict[int, GatewayNode]
    exits: dict[int, ExitIpr]
    directory_state: DirectoryState | None
    placement: Placement

    @property
    def state_dir(self) -> Path: ...

    async def relaunch(self, node_id: int, registry: GatewayRegistry | None = None) -> None: ...

    async def wait_stopped(self, node_id: int, timeout: float = ...) -> None: ...

    async def start_exit(self, node_id: int, topology: Topology | None = None) -> None: ...

    async def stop_exit(self, node_id: int) -> None: ...

    def save_specs(self) -> None: ...

    def has_exit(self, node_id: int) -> bool: ...


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_answer(status: int, value: Any) -> Answer:
    body = json.dumps(value, separators=(",", ":")).encode()
    return Answer(status, (("Content-Type", "application/json"), *CORS_HEADERS), body)


class NetworkControl:
    """The chaos operations on one `LocalNetwork` (created by it; usable once it serves)."""

    def __init__(
        self,
        network: ControlledNetwork,
        *,
        schedules: Schedules | None = None,
        seed: int | None = None,
    ) -> None:
        self.network = network
        self.schedules = schedules or Schedules()
        self.states: dict[int, NodeState] = {}
        self.unlisted: dict[int, DirectoryNode] = {}
        self.rng = random.Random(seed)
        self.counters: dict[str, int] = {}
        self._token: str | None = None
        self._lock: anyio.Lock | None = None

    # --- the token ---------------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The secret the control endpoints want, kept 0600 in the state dir across restarts."""
        if self._token is None:
            path = self.network.state_dir / TOKEN_FILE
            try:
                token = json.loads(path.read_text())["token"]
                if not isinstance(token, str) or len(token) < 32:
                    raise ValueError("short token")
            except (OSError, ValueError, KeyError, TypeError):
                token = secrets.token_urlsafe(32)
                write_private_json(path, {"token": token})
            self._token = token
        return self._token

    def network_file_entry(self, root: str) -> dict[str, str]:
        """What the (0600) network file says about the control endpoints."""
        return {"url": root + CONTROL_PREFIX.lstrip("/"), "token": self.token}

    # --- observation -------------------------------------------------------------------------

    def _directory(self) -> DirectoryState:
        state = self.network.directory_state
        if state is None:
            raise ControlError("the network is not serving yet", 503)
        return state

    def _require_node(self, node_id: int) -> None:
        if node_id not in self.network.specs:
            raise ControlError(f"no node {node_id} in this network", 404)

    def _worker(self, kind: str, node_id: int) -> Worker | None:
        """The worker process running node (or exit IPR) `node_id`; None: this one."""
        return self.network.placement.worker_of((kind, node_id))

    def _mix_ids(self) -> list[int]:
        return sorted(i for i, s in self.network.specs.items() if s.role is NodeRole.MIXNODE)

    def state(self, node_id: int) -> NodeState:
        self._require_node(node_id)
        return self.states.get(node_id, NodeState.RUNNING)

    def node_status(self, node_id: int) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state(node_id).value, "listed": True}
        if node_id in self.unlisted:
            out["listed"] = False
        elif (
            self.network.directory_state is not None
            and self.network.specs[node_id].role is NodeRole.MIXNODE
        ):
            entry = next(n for n in self.network.directory_state.nodes if n.node_id == node_id)
            out["standby"] = entry.role is NodeRole.STANDBY
        return out

    def status(self) -> dict[str, Any]:
        state = self.network.directory_state
        if state is None:
            return {}
        schedules = self.schedules
        return {
            "rotation_id": state.rotation_id,
            "epoch_id": state.absolute_epoch_id,
            "schedules": {
                "rotate_every_s": schedules.rotate_every,
                "reshuffle_every_s": schedules.reshuffle_every,
            },
            "control": dict(self.counters),
        }

    # --- node lifecycle ----------------------------------------------------------------------

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """One operation at a time: a rotation must not land between a node's stop and start."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            yield

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    async def stop(self, node_id: int) -> None:
        """Graceful stop (a gateway saves its registrations); the node stays listed."""
        async with self._locked():
            await self._halt(node_id, kill=False)

    async def kill(self, node_id: int) -> None:
        """Abrupt stop: every socket dropped at once, no close frames, no state saved."""
        async with self._locked():
            await self._halt(node_id, kill=True)

    async def start(self, node_id: int) -> None:
        """Start a stopped or killed node again on its ports with its (current) keys."""
        async with self._locked():
            await self._resume(node_id)

    async def restart(self, node_id: int, *, kill: bool = False, down_for: float = 0.0) -> None:
        """Stop (or kill) a running node, wait `down_for`, start it; a down node just starts."""
        if not 0 <= down_for <= MAX_DOWN_S:
            raise ControlError(f"down time must be 0..{MAX_DOWN_S:g} s", 400)
        async with self._locked():
            if self.state(node_id) is NodeState.RUNNING:  # else it is down already
                await self._halt(node_id, kill=kill)
                await anyio.sleep(down_for)
            await self._resume(node_id)

    async def _halt(self, node_id: int, *, kill: bool) -> None:
        state = self.state(node_id)
        if state is not NodeState.RUNNING:
            raise ControlError(f"node {node_id} is {state.value}")
        net = self.network
        is_exit = net.has_exit(node_id)
        if is_exit and not kill:
            await self._stop_exit(node_id)  # the IPR first, as nym-node shuts down its tasks
        worker = self._worker("node", node_id)
        if worker is None:
            stopped = await halt_here(net, node_id, kill=kill)
        else:
            stopped = await worker.call("halt", node_id, kill)
        if not stopped:
            raise ControlError(f"node {node_id} did not stop in {STOP_TIMEOUT:g} s", 500)
        if is_exit and kill:
            await self._stop_exit(node_id)
        self.states[node_id] = NodeState.KILLED if kill else NodeState.STOPPED
        self._count("kills" if kill else "stops")

    async def _resume(self, node_id: int) -> None:
        state = self.state(node_id)
        if state is NodeState.RUNNING:
            raise ControlError(f"node {node_id} is already running")
        net = self.network
        # a killed gateway reloads what it last saved; a stopped one keeps its registry
        keep = state is NodeState.STOPPED
        worker = self._worker("node", node_id)
        try:
            if worker is None:
                await relaunch_here(net, net.specs[node_id], keep_registry=keep)
            else:  # the spec from here: keys rotated while it was down
                spec = net.specs[node_id].to_json(private=True)
                net.specs[node_id] = NodeSpec.from_json(await worker.call("relaunch", spec, keep))
        except (OSError, WorkerError) as exc:
            raise ControlError(f"node {node_id} cannot listen again: {exc}", 500) from None
        self.states[node_id] = NodeState.RUNNING
        if net.has_exit(node_id):
            await net.start_exit(node_id)
        self._count("starts")

    # --- the directory -----------------------------------------------------------------------

    def _update_listing(self, node_id: int, **changes: Any) -> None:
        """Change a node's directory entry, listed or not (an unlisted one keeps up to date)."""
        if node_id in self.unlisted:
            self.unlisted[node_id] = replace(self.unlisted[node_id], **changes)
        else:
            self._directory().update_node(node_id, **changes)

    def _listings(self) -> list[DirectoryNode]:
        return [*self._directory().nodes, *self.unlisted.values()]

    async def unlist(self, node_id: int) -> None:
        """Drop a node from every directory answer (skimmed, described, rewarded set); it runs on."""
        self._require_node(node_id)
        state = self._directory()
        if node_id in self.unlisted:
            raise ControlError(f"node {node_id} is already unlisted")
        entry = next(n for n in state.nodes if n.node_id == node_id)
        state.nodes.remove(entry)
        self.unlisted[node_id] = entry
        self._count("unlists")

    async def relist(self, node_id: int) -> None:
        self._require_node(node_id)
        state = self._directory()
        if node_id not in self.unlisted:
            raise ControlError(f"node {node_id} is listed")
        state.nodes.append(self.unlisted.pop(node_id))
        state.nodes.sort(key=lambda n: n.node_id)
        self._count("relists")

    async def rotate(self) -> dict[str, Any]:
        """Start the next key rotation now: every node takes a fresh Sphinx key."""
        async with self._locked():
            state = self._directory()
            await self._enter_epoch((state.rotation_id + 1) * state.validity_epochs)
            self.network.save_specs()
        return self.status()

    async def reshuffle(self, *, standby: int | None = None) -> dict[str, Any]:
        """A new epoch whose rewarded set puts the mix nodes on other layers.

        `standby` mix nodes (default: as many as now) leave the layers for the standby set.
        Every mix node is real and forwards whatever reaches it, whichever layer it was on.
        """
        async with self._locked():
            state = self._directory()
            mix_ids = self._mix_ids()
            roles = {n.node_id: n for n in self._listings() if n.node_id in mix_ids}
            current = {i: (roles[i].role, roles[i].layer) for i in mix_ids}
            count = (
                sum(role is NodeRole.STANDBY for role, _ in current.values())
                if standby is None
                else standby
            )
            if not 0 <= count <= len(mix_ids) - 3:
                raise ControlError(
                    f"standby must be 0..{len(mix_ids) - 3} (each layer keeps a node)", 400
                )
            order = list(mix_ids)
            self.rng.shuffle(order)
            assignment = _assign(order, count)
            if assignment == current and len(order) - count > 1:
                assignment = _assign(order[1:] + order[:1], count)
            for node_id, (role, layer) in assignment.items():
                self._update_listing(node_id, role=role, layer=layer)
                if layer is not None:
                    await self._set_layer(node_id, layer)
            await self._enter_epoch(state.absolute_epoch_id + 1)
            self.network.save_specs()
            self._count("reshuffles")
        return self.status()

    async def _set_layer(self, node_id: int, layer: int) -> None:
        worker = self._worker("node", node_id)
        if worker is None:
            set_layer_here(self.network, node_id, layer)
        else:
            self.network.specs[node_id] = replace(self.network.specs[node_id], layer=layer)
            await worker.call("set_layer", node_id, layer)

    async def _stop_exit(self, node_id: int) -> None:
        worker = self._worker("exit", node_id)
        if worker is None:
            await self.network.stop_exit(node_id)
        else:
            await worker.call("stop_exit", node_id)

    async def _enter_epoch(self, epoch: int) -> None:
        """Move the directory to `epoch`, rotating keys when it starts a new rotation."""
        state = self._directory()
        rotation = epoch // state.validity_epochs
        if rotation != state.rotation_id:
            await self._rotate_keys(rotation)
        state.absolute_epoch_id = epoch
        state.rotation_id = rotation
        state.epoch_start = state.refreshed_at = _now_rfc3339()

    async def _rotate_keys(self, rotation_id: int) -> None:
        net = self.network
        for node_id, spec in list(net.specs.items()):
            key = X25519KeyPair.generate()
            worker = self._worker("node", node_id)
            if self.state(node_id) is not NodeState.RUNNING:
                # it takes the keys when started again (nym-node derives them on start)
                net.specs[node_id] = replace(
                    spec, sphinx=key, sphinx_secondary=spec.sphinx, rotation_id=rotation_id
                )
            elif worker is None:
                rotate_here(net, node_id, key, rotation_id)
            else:
                answer = await worker.call("rotate", node_id, key.private_bytes, rotation_id)
                net.specs[node_id] = NodeSpec.from_json(answer)
            self._update_listing(node_id, sphinx_key=key.public_bytes)
        self._count("rotations")

    # --- schedules ---------------------------------------------------------------------------

    async def run_schedules(self) -> None:
        """Rotate and reshuffle periodically as the network's options say (in its task group)."""
        schedules = self.schedules
        async with anyio.create_task_group() as tg:
            if schedules.rotate_every is not None:
                tg.start_soon(self._every, schedules.rotate_every, self.rotate)
            if schedules.reshuffle_every is not None:
                tg.start_soon(self._every, schedules.reshuffle_every, self.reshuffle)

    @staticmethod
    async def _every(period: float, action: Callable[[], Awaitable[Any]]) -> None:
        while True:
            await anyio.sleep(period)
            await action()

    # --- the control endpoints ---------------------------------------------------------------

    async def node_action(
        self, node_id: int, action: str, *, down_for: float = 0.0, kill: bool = False
    ) -> None:
        """One of NODE_ACTIONS; `restart` stops (or with `kill`, kills) and starts again."""
        if action == "stop":
            await self.stop(node_id)
        elif action == "kill":
            await self.kill(node_id)
        elif action == "start":
            await self.start(node_id)
        elif action == "restart":
            await self.restart(node_id, kill=kill, down_for=down_for)
        elif action == "unlist":
            await self.unlist(node_id)
        elif action == "list":
            await self.relist(node_id)
        else:
            raise ControlError(f"unknown action {action!r} (one of {', '.join(NODE_ACTIONS)})", 404)

    def authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        expected = f"Bearer {self.token}".encode()
        for name, value in headers:
            if name.lower() == b"authorization" and hmac.compare_digest(value, expected):
                return True
        return False

    async def answer(
        self, method: str, target: str, headers: list[tuple[bytes, bytes]]
    ) -> Answer | None:
        """The directory's hook: control requests get JSON answers; others are not ours."""
        parts = urlsplit(target)
        if not (parts.path + "/").startswith(CONTROL_PREFIX) or method == "OPTIONS":
            return None
        if method != "POST":
            return _json_answer(405, {"message": "control endpoints take POST"})
        if not self.authorized(headers):
            return _json_answer(403, {"message": "control token missing or wrong"})
        params = parse_qs(parts.query)
        words = parts.path[len(CONTROL_PREFIX) :].strip("/").split("/")
        try:
            if words == ["rotate"]:
                await self.rotate()
            elif words == ["reshuffle"]:
                standby = _param(params, "standby", int)
                await self.reshuffle(standby=None if standby is None else int(standby))
            elif len(words) == 3 and words[0] == "nodes" and words[1].isdigit():
                down = _param(params, "down", float)
                kill = params.get("kill", ["0"])[-1] not in ("", "0", "false")
                node_id = int(words[1])
                await self.node_action(node_id, words[2], down_for=down or 0.0, kill=kill)
                return _json_answer(200, {"node_id": node_id, **self.node_status(node_id)})
            else:
                return _json_answer(404, {"message": f"no control endpoint {parts.path}"})
        except ControlError as exc:
            return _json_answer(exc.status, {"message": str(exc)})
        return _json_answer(200, self.status())


# --- what one node's process does (this one's, or a worker's on request) ---------------------


def _node(net: ControlledNetwork, node_id: int) -> MixNode | GatewayNode:
    return net.mixnodes[node_id] if node_id in net.mixnodes else net.gateways[node_id]


async def halt_here(net: ControlledNetwork, node_id: int, *, kill: bool) -> bool:
    """Stop (a gateway saves its registrations) or kill a node; False if it did not stop."""
    node = _node(net, node_id)
    if kill:
        node.kill()
    else:
        if isinstance(node, GatewayNode):
            node.save_state()
        node.stop()
    try:
        await net.wait_stopped(node_id, STOP_TIMEOUT)
    except TimeoutError:
        return False
    return True


async def relaunch_here(net: ControlledNetwork, spec: NodeSpec, *, keep_registry: bool) -> None:
    """Start a stopped node again from `spec`; a gracefully stopped gateway keeps its registry."""
    node_id = spec.node_id
    net.specs[node_id] = spec
    registry = None
    if keep_registry and node_id in net.gateways:
        registry = net.gateways[node_id].registry
    await net.relaunch(node_id, registry)


def rotate_here(
    net: ControlledNetwork, node_id: int, key: X25519KeyPair, rotation_id: int
) -> NodeSpec:
    """A running node enters rotation `rotation_id` with `key`; its new spec."""
    node = _node(net, node_id)
    node.rotate_keys(key, rotation_id)
    net.specs[node_id] = node.spec
    return node.spec


def set_layer_here(net: ControlledNetwork, node_id: int, layer: int) -> None:
    net.specs[node_id] = replace(net.specs[node_id], layer=layer)
    node = net.mixnodes[node_id]
    node.spec = replace(node.spec, layer=layer)


def _param(params: dict[str, list[str]], name: str, kind: type[int] | type[float]) -> float | None:
    values = params.get(name)
    if not values:
        return None
    try:
        return kind(values[-1])
    except ValueError:
        raise ControlError(f"{name} must be a number", 400) from None


def _assign(order: list[int], standby: int) -> dict[int, tuple[NodeRole, int | None]]:
    """Standby for the first `standby` ids, then layers 1, 2, 3, 1, ... for the rest."""
    out: dict[int, tuple[NodeRole, int | None]] = {
        i: (NodeRole.STANDBY, None) for i in order[:standby]
    }
    for index, node_id in enumerate(order[standby:]):
        out[node_id] = (NodeRole.MIXNODE, index % 3 + 1)
    return out
