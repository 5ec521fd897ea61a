"""The mixnet as a client sees it: nodes, the rewarded set, and the key rotation (spec 4.2).

Built from the nym-api JSON bodies (`skimmed` node pages, `rewarded-set`,
`key-rotation-info`); fetching them is someone else's job. Parsing is strict
about types (the official client rejects a numeric `performance`, so do we) and
every problem raises TopologyError naming the field. A node list tolerates odd
nodes: one node that cannot be routed (no IPs, an unknown role, a bad key, ...)
is skipped and counted by reason, as the Rust client skips a node whose
`RoutingNode` conversion fails (nym `common/topology/src/node.rs`), so a
mainnet page with a few odd nodes among hundreds stays usable. Only a
malformed document (metadata, pagination, the list itself) fails the page.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.mixnet.packet.size import SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import RouteHop

DEFAULT_MIN_PERFORMANCE = 50  # percent, Nym's minimum mixnode/gateway performance


ROTATION_REFRESH_MARGIN = 60.0
"""Seconds after a predicted key-rotation boundary before refreshing (nym-api's caches
need a moment to serve the new rotation's keys)."""

LOW_PERFORMANCE = "performance below the minimum"


class TopologyError(MalformedData):
    """A directory answer that does not have the shape nym-api gives."""


class BadNode(TopologyError):
    """One node the client cannot route; `reason` is the short label it is counted under."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


class NoUsableRoute(MixnetError):
    """The topology cannot provide a route (an empty layer, unknown egress)."""


NO_USABLE_ROUTE = "the directory's topology has an empty mix layer or no gateway"
"""Why a fresh topology is unusable (`not Topology.is_usable`); ping and the tunnel say it."""


class NodeRole(enum.Enum):
    MIXNODE = "Mixnode"
    ENTRY_GATEWAY = "EntryGateway"
    EXIT_GATEWAY = "ExitGateway"
    STANDBY = "Standby"
    INACTIVE = "Inactive"


@dataclass(frozen=True, slots=True)
class SupportedRoles:
    mixnode: bool = False
    entry: bool = False
    exit_nr: bool = False
    exit_ipr: bool = False

    @property
    def exit(self) -> bool:
        return self.exit_nr and self.exit_ipr


@dataclass(frozen=True, slots=True)
class EntryDetails:
    """How clients reach a gateway's WebSocket."""

    hostname: str | None
    ws_port: int
    wss_port: int | None


@dataclass(frozen=True, slots=True)
class Node:
    node_id: int
    identity: bytes
    sphinx_key: bytes
    ip_addresses: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]
    mix_port: int
    role: NodeRole
    layer: int | None = None
    performance: Decimal = Decimal(1)
    supported_roles: SupportedRoles = field(default_factory=SupportedRoles)
    entry: EntryDetails | None = None

    @property
    def address(self) -> NodeAddress:
        """Sphinx address: the first IP with the mix port."""
        return NodeAddress(self.ip_addresses[0], self.mix_port)

    @property
    def route_hop(self) -> RouteHop:
        return RouteHop(self.address.to_bytes(), self.sphinx_key)

    @property
    def performance_percent(self) -> int:
        """floor(performance * 100), as Nym's `Percent::round_to_integer`."""
        return math.floor(self.performance * 100)


@dataclass(frozen=True, slots=True)
class RewardedSet:
    epoch_id: int
    entry_gateways: tuple[int, ...] = ()
    exit_gateways: tuple[int, ...] = ()
    layer1: tuple[int, ...] = ()
    layer2: tuple[int, ...] = ()
    layer3: tuple[int, ...] = ()
    standby: tuple[int, ...] = ()

    def layer(self, number: int) -> tuple[int, ...]:
        return {1: self.layer1, 2: self.layer2, 3: self.layer3}[number]


@dataclass(frozen=True, slots=True)
class NodesPage:
    """One page of `skimmed` nodes plus the metadata all pages must agree on."""

    absolute_epoch_id: int
    rotation_id: int
    refreshed_at: str
    total: int
    page: int
    size: int
    nodes: tuple[Node, ...]
    skipped: Counter[str] = field(default_factory=Counter, compare=False)
    """Nodes of this page left out, by reason (`BadNode.reason`)."""

    @property
    def received(self) -> int:
        """Nodes the page carried, usable or not (what `pagination.total` counts)."""
        return len(self.nodes) + self.skipped.total()


@dataclass(frozen=True, slots=True)
class KeyRotationInfo:
    validity_epochs: int
    initial_epoch_id: int
    current_absolute_epoch_id: int
    current_key_rotation_id: int
    current_epoch_start: float | None = None  # Unix seconds, when the answer carries it
    epoch_duration: float | None = None  # seconds

    def next_rotation_at(self) -> float | None:
        """When the next key rotation starts (Unix seconds), or None if unknown.

        The next rotation's first epoch is `initial + validity * (rotation + 1)`
        (nym `common/cosmwasm-smart-contracts/mixnet-contract/src/key_rotation.rs`,
        `next_rotation_starting_epoch_id`); it starts that many epochs after the
        current epoch's start. A stuck epoch only makes the answer lie in the past.
        """
        if self.current_epoch_start is None or not self.epoch_duration:
            return None
        if self.validity_epochs <= 0:
            return None
        passed = max(0, self.current_absolute_epoch_id - self.initial_epoch_id)
        rotation = passed // self.validity_epochs
        next_start = self.initial_epoch_id + self.validity_epochs * (rotation + 1)
        epochs_away = next_start - self.current_absolute_epoch_id
        return self.current_epoch_start + epochs_away * self.epoch_duration


# --- JSON helpers -----------------------------------------------------------------------


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TopologyError(f"{where}: expected a JSON object")
    return value


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise TopologyError(f"{where}: missing field {key!r}")
    return obj[key]


def _int(value: Any, where: str, low: int = 0, high: int = 0xFFFFFFFF) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TopologyError(f"{where}: expected an integer in {low}..{high}")
    return value


def _opt_int(value: Any, where: str, high: int) -> int | None:
    return None if value is None else _int(value, where, 0, high)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise TopologyError(f"{where}: expected true or false")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TopologyError(f"{where}: expected a string")
    return value


def _ids(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise TopologyError(f"{where}: expected a list of node ids")
    return tuple(_int(v, f"{where}[{i}]") for i, v in enumerate(value))


def _key(value: Any, where: str) -> bytes:
    try:
        return decode_key_base58(_str(value, where), where)
    except TopologyError:
        raise
    except MixnetError as exc:
        raise TopologyError(f"{where}: {exc}") from exc


def _performance(value: Any, where: str) -> Decimal:
    text = _str(value, where)  # the official client rejects a JSON number here
    try:
        perf = Decimal(text)
    except InvalidOperation:
        raise TopologyError(f"{where}: {text!r} is not a decimal") from None
    if not perf.is_finite() or not Decimal(0) <= perf <= Decimal(1):
        raise TopologyError(f"{where}: performance {text!r} outside [0, 1]")
    return perf


def _role(value: Any, where: str) -> tuple[NodeRole, int | None]:
    if isinstance(value, str):
        try:
            role = NodeRole(value)
        except ValueError:
            raise BadNode("unknown role", f"{where}: unknown role {value!r}") from None
        if role is NodeRole.MIXNODE:
            raise BadNode("unknown role", f"{where}: a mixnode role needs its layer")
        return role, None
    obj = _obj(value, where)
    if set(obj) != {"Mixnode"}:
        raise BadNode("unknown role", f"{where}: unknown role object")
    layer_raw = _get(_obj(obj["Mixnode"], where), "layer", where)
    try:
        layer = _int(layer_raw, f"{where}.layer", 1, 3)
    except TopologyError as exc:
        # Rust accepts any u8 here, but the layer a node claims is only informational
        # (the rewarded set assigns layers); one outside 1..3 marks an inconsistent node.
        raise BadNode("layer out of range", str(exc)) from None
    return NodeRole.MIXNODE, layer


def _field(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise BadNode(f"missing {key}", f"{where}: missing field {key!r}")
    return obj[key]


def _labelled(reason: str, parse: Any, *args: Any) -> Any:
    """`parse(*args)`, its TopologyError relabelled as one BadNode reason."""
    try:
        return parse(*args)
    except BadNode:
        raise
    except TopologyError as exc:
        raise BadNode(reason, str(exc)) from None


def _ip_addresses(
    value: Any, where: str
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    if not isinstance(value, list):
        raise BadNode("bad ip_addresses", f"{where}: expected a list")
    if not value:
        # nym common/topology/src/node.rs: NoIpAddressesProvided, the node is left out
        raise BadNode("empty ip_addresses", f"{where}: expected a non-empty list")
    ips = []
    for i, ip_text in enumerate(value):
        try:
            ips.append(ipaddress.ip_address(_str(ip_text, f"{where}[{i}]")))
        except (ValueError, TopologyError):
            raise BadNode("bad ip_addresses", f"{where}[{i}]: not an IP address") from None
    return tuple(ips)


def _supported_roles(value: Any, where: str) -> SupportedRoles:
    if value is None:
        return SupportedRoles()
    r = _obj(value, where)
    return SupportedRoles(
        *(
            _bool(r.get(name, False), f"{where}.{name}")
            for name in ("mixnode", "entry", "exit_nr", "exit_ipr")
        )
    )


def _entry(value: Any, where: str) -> EntryDetails | None:
    if value is None:
        return None  # not a gateway clients connect to (fine for a mixnode or an exit)
    e = _obj(value, where)
    hostname = e.get("hostname")
    return EntryDetails(
        None if hostname is None else _str(hostname, f"{where}.hostname"),
        _int(_get(e, "ws_port", where), f"{where}.ws_port", 0, 0xFFFF),
        _opt_int(e.get("wss_port"), f"{where}.wss_port", 0xFFFF),
    )


def parse_node(value: Any, where: str = "node") -> Node:
    """A `SkimmedNodeV1` object; BadNode (a TopologyError) says why it cannot be used."""
    if not isinstance(value, dict):
        raise BadNode("not an object", f"{where}: expected a JSON object")
    obj: Mapping[str, Any] = value
    ips = _ip_addresses(_field(obj, "ip_addresses", where), f"{where}.ip_addresses")
    role_raw = obj.get("role", obj.get("epoch_role"))
    if role_raw is None:
        raise BadNode("missing role", f"{where}: missing field 'role'")
    role, layer = _labelled("unknown role", _role, role_raw, f"{where}.role")
    return Node(
        node_id=_labelled("bad node_id", _int, _field(obj, "node_id", where), f"{where}.node_id"),
        identity=_labelled(
            "bad key", _key, _field(obj, "ed25519_identity_pubkey", where), f"{where}.identity"
        ),
        sphinx_key=_labelled(
            "bad key",
            _key,
            _field(obj, "x25519_sphinx_pubkey", where),
            f"{where}.x25519_sphinx_pubkey",
        ),
        ip_addresses=ips,
        mix_port=_labelled(
            "bad mix_port", _int, _field(obj, "mix_port", where), f"{where}.mix_port", 0, 0xFFFF
        ),
        role=role,
        layer=layer,
        performance=_labelled(
            "bad performance",
            _performance,
            _field(obj, "performance", where),
            f"{where}.performance",
        ),
        supported_roles=_labelled(
            "bad supported_roles",
            _supported_roles,
            obj.get("supported_roles"),
            f"{where}.supported_roles",
        ),
        entry=_labelled("bad entry", _entry, obj.get("entry"), f"{where}.entry"),
    )


def parse_nodes(
    values: Iterable[Any], where: str = "nodes.data"
) -> tuple[list[Node], Counter[str]]:
    """The usable nodes of a node list, and how many were skipped for which reason."""
    nodes: list[Node] = []
    skipped: Counter[str] = Counter()
    for i, value in enumerate(values):
        try:
            nodes.append(parse_node(value, f"{where}[{i}]"))
        except BadNode as exc:
            skipped[exc.reason] += 1
    return nodes, skipped


def parse_nodes_page(body: Any) -> NodesPage:
    """`PaginatedCachedNodesResponseV2<SkimmedNodeV1>` (skimmed mixnodes / entry-gateways)."""
    obj = _obj(body, "response")
    meta = _obj(_get(obj, "metadata", "response"), "metadata")
    nodes = _obj(_get(obj, "nodes", "response"), "nodes")
    pagination = _obj(_get(nodes, "pagination", "nodes"), "nodes.pagination")
    data = _get(nodes, "data", "nodes")
    if not isinstance(data, list):
        raise TopologyError("nodes.data: expected a list")
    nodes_ok, skipped = parse_nodes(data)
    return NodesPage(
        absolute_epoch_id=_int(_get(meta, "absolute_epoch_id", "metadata"), "absolute_epoch_id"),
        rotation_id=_int(_get(meta, "rotation_id", "metadata"), "metadata.rotation_id"),
        refreshed_at=_str(_get(meta, "refreshed_at", "metadata"), "metadata.refreshed_at"),
        total=_int(_get(pagination, "total", "pagination"), "pagination.total"),
        page=_int(_get(pagination, "page", "pagination"), "pagination.page"),
        size=_int(_get(pagination, "size", "pagination"), "pagination.size"),
        nodes=tuple(nodes_ok),
        skipped=skipped,
    )


def parse_rewarded_set(body: Any) -> RewardedSet:
    """`GET v1/nym-nodes/rewarded-set`."""
    obj = _obj(body, "rewarded set")
    return RewardedSet(
        epoch_id=_int(_get(obj, "epoch_id", "rewarded set"), "epoch_id"),
        **{
            name: _ids(obj.get(name, []), name)
            for name in (
                "entry_gateways",
                "exit_gateways",
                "layer1",
                "layer2",
                "layer3",
                "standby",
            )
        },
    )


def parse_key_rotation_info(body: Any) -> KeyRotationInfo:
    """`GET v1/epoch/key-rotation-info` (required by the official client)."""
    obj = _obj(body, "key rotation info")
    state = _obj(_get(obj, "key_rotation_state", "key rotation info"), "key_rotation_state")
    progress = _obj(_get(obj, "progress", "key rotation info"), "progress")
    return KeyRotationInfo(
        validity_epochs=_int(_get(state, "validity_epochs", "state"), "validity_epochs"),
        initial_epoch_id=_int(_get(state, "initial_epoch_id", "state"), "initial_epoch_id"),
        current_absolute_epoch_id=_int(
            _get(obj, "current_absolute_epoch_id", "key rotation info"),
            "current_absolute_epoch_id",
        ),
        current_key_rotation_id=_int(
            _get(progress, "current_key_rotation_id", "progress"), "current_key_rotation_id"
        ),
        current_epoch_start=_opt_time(obj.get("current_epoch_start"), "current_epoch_start"),
        epoch_duration=_opt_duration(obj.get("epoch_duration"), "epoch_duration"),
    )


def _opt_time(value: Any, where: str) -> float | None:
    """An RFC 3339 time as Unix seconds (None when absent)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(_str(value, where))
    except ValueError:
        raise TopologyError(f"{where}: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise TopologyError(f"{where}: {value!r} has no time zone")
    return moment.timestamp()


def _opt_duration(value: Any, where: str) -> float | None:
    """A serde `Duration` ({"secs", "nanos"}) as seconds (None when absent)."""
    if value is None:
        return None
    obj = _obj(value, where)
    secs = _int(_get(obj, "secs", where), f"{where}.secs", 0, 2**53)
    nanos = _int(obj.get("nanos", 0), f"{where}.nanos", 0, 999_999_999)
    return secs + nanos / 1e9


@dataclass(frozen=True, slots=True)
class Topology:
    """Known nodes by id plus the layer assignment and key rotation they belong to."""

    rewarded_set: RewardedSet
    nodes: Mapping[int, Node]
    rotation_id: int = 0
    skipped: Counter[str] = field(default_factory=Counter, compare=False)
    """Nodes the directory listed that this topology left out, by reason."""
    next_rotation_at: float | None = field(default=None, compare=False)
    """When key-rotation-info predicts the next key rotation (Unix seconds)."""
    avoid: frozenset[int] = field(default=frozenset(), compare=False)
    """Mix node ids new routes leave out (health.NodeHealth's suspects), unless a layer
    would be left empty."""

    @classmethod
    def from_directory(
        cls,
        rewarded_set: RewardedSet,
        pages: Iterable[NodesPage],
        min_performance: int = DEFAULT_MIN_PERFORMANCE,
        *,
        next_rotation_at: float | None = None,
    ) -> Topology:
        """Merge node pages (all must agree on epoch and rotation); drop low performers."""
        nodes: dict[int, Node] = {}
        skipped: Counter[str] = Counter()
        rotation: int | None = None
        epoch: int | None = None
        for page in pages:
            if rotation is None:
                rotation, epoch = page.rotation_id, page.absolute_epoch_id
            elif (page.rotation_id, page.absolute_epoch_id) != (rotation, epoch):
                raise TopologyError("directory pages disagree on epoch or key rotation")
            skipped.update(page.skipped)
            for node in page.nodes:
                if node.performance_percent >= min_performance:
                    nodes[node.node_id] = node
                else:
                    skipped[LOW_PERFORMANCE] += 1
        return cls(rewarded_set, nodes, rotation or 0, skipped, next_rotation_at)

    def summary(self) -> str:
        """One line for -v: how many nodes are known and how many were left out, and why."""
        text = f"{len(self.nodes)} nodes"
        total = self.skipped.total()
        if total:
            reasons = ", ".join(f"{why}: {n}" for why, n in self.skipped.most_common())
            text += f", {total} skipped ({reasons})"
        return text

    def refresh_delay(self, interval: float, now: float) -> float:
        """Seconds until the next refresh: `interval`, or sooner to follow a key rotation.

        `now` is Unix time (the rotation prediction is wall-clock).
        """
        if self.next_rotation_at is None:
            return interval
        due = self.next_rotation_at + ROTATION_REFRESH_MARGIN - now
        return due if 0 < due < interval else interval

    @property
    def key_rotation(self) -> SphinxKeyRotation:
        return SphinxKeyRotation.from_rotation_id(self.rotation_id)

    def layer(self, number: int) -> list[Node]:
        """Known nodes of mix layer 1, 2 or 3 (ids without details are skipped)."""
        known = [self.nodes[i] for i in self.rewarded_set.layer(number) if i in self.nodes]
        if self.avoid:
            return [n for n in known if n.node_id not in self.avoid] or known
        return known

    def avoiding(self, node_ids: frozenset[int]) -> Topology:
        """The same topology with routes leaving out `node_ids` where a layer allows."""
        return self if node_ids == self.avoid else dataclasses.replace(self, avoid=node_ids)

    def gateways(self) -> list[Node]:
        ids = dict.fromkeys(self.rewarded_set.entry_gateways + self.rewarded_set.exit_gateways)
        return [self.nodes[i] for i in ids if i in self.nodes]

    def node_by_identity(self, identity: bytes) -> Node:
        """Any known node with that identity can be an egress (Nym's default)."""
        for node in self.nodes.values():
            if node.identity == identity:
                return node
        raise NoUsableRoute(f"no known node has identity {identity.hex()}")

    @property
    def is_usable(self) -> bool:
        return all(self.layer(n) for n in (1, 2, 3)) and bool(self.gateways())
