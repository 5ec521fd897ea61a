"""The mixnet as a client sees it: nodes, the rewarded set, and the key rotation (spec 4.2).

Built from the nym-api JSON bodies (`skimmed` node pages, `rewarded-set`,
`key-rotation-info`); fetching them is someone else's job. Parsing is strict
about types (the official client rejects a numeric `performance`, so do we) and
every problem raises TopologyError naming the field.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.mixnet.packet.size import SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import RouteHop

DEFAULT_MIN_PERFORMANCE = 50  # percent, Nym's minimum mixnode/gateway performance


class TopologyError(MalformedData):
    """A directory answer that does not have the shape nym-api gives."""


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


@dataclass(frozen=True, slots=True)
class KeyRotationInfo:
    validity_epochs: int
    initial_epoch_id: int
    current_absolute_epoch_id: int
    current_key_rotation_id: int


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
            raise TopologyError(f"{where}: unknown role {value!r}") from None
        if role is NodeRole.MIXNODE:
            raise TopologyError(f"{where}: a mixnode role needs its layer")
        return role, None
    obj = _obj(value, where)
    if set(obj) != {"Mixnode"}:
        raise TopologyError(f"{where}: unknown role object")
    layer = _int(_get(_obj(obj["Mixnode"], where), "layer", where), f"{where}.layer", 1, 3)
    return NodeRole.MIXNODE, layer


def parse_node(value: Any, where: str = "node") -> Node:
    """A `SkimmedNodeV1` object."""
    obj = _obj(value, where)
    ips_raw = _get(obj, "ip_addresses", where)
    if not isinstance(ips_raw, list) or not ips_raw:
        raise TopologyError(f"{where}.ip_addresses: expected a non-empty list")
    ips = []
    for i, ip_text in enumerate(ips_raw):
        try:
            ips.append(ipaddress.ip_address(_str(ip_text, f"{where}.ip_addresses[{i}]")))
        except ValueError:
            raise TopologyError(f"{where}.ip_addresses[{i}]: not an IP address") from None
    role_raw = obj.get("role", obj.get("epoch_role"))
    if role_raw is None:
        raise TopologyError(f"{where}: missing field 'role'")
    role, layer = _role(role_raw, f"{where}.role")
    roles_raw = obj.get("supported_roles")
    roles = SupportedRoles()
    if roles_raw is not None:
        r = _obj(roles_raw, f"{where}.supported_roles")
        roles = SupportedRoles(
            *(
                _bool(r.get(name, False), f"{where}.supported_roles.{name}")
                for name in ("mixnode", "entry", "exit_nr", "exit_ipr")
            )
        )
    entry_raw = obj.get("entry")
    entry = None
    if entry_raw is not None:
        e = _obj(entry_raw, f"{where}.entry")
        hostname = e.get("hostname")
        entry = EntryDetails(
            None if hostname is None else _str(hostname, f"{where}.entry.hostname"),
            _int(_get(e, "ws_port", f"{where}.entry"), f"{where}.entry.ws_port", 0, 0xFFFF),
            _opt_int(e.get("wss_port"), f"{where}.entry.wss_port", 0xFFFF),
        )
    return Node(
        node_id=_int(_get(obj, "node_id", where), f"{where}.node_id"),
        identity=_key(_get(obj, "ed25519_identity_pubkey", where), f"{where}.identity"),
        sphinx_key=_key(_get(obj, "x25519_sphinx_pubkey", where), f"{where}.x25519_sphinx_pubkey"),
        ip_addresses=tuple(ips),
        mix_port=_int(_get(obj, "mix_port", where), f"{where}.mix_port", 0, 0xFFFF),
        role=role,
        layer=layer,
        performance=_performance(_get(obj, "performance", where), f"{where}.performance"),
        supported_roles=roles,
        entry=entry,
    )


def parse_nodes_page(body: Any) -> NodesPage:
    """`PaginatedCachedNodesResponseV2<SkimmedNodeV1>` (skimmed mixnodes / entry-gateways)."""
    obj = _obj(body, "response")
    meta = _obj(_get(obj, "metadata", "response"), "metadata")
    nodes = _obj(_get(obj, "nodes", "response"), "nodes")
    pagination = _obj(_get(nodes, "pagination", "nodes"), "nodes.pagination")
    data = _get(nodes, "data", "nodes")
    if not isinstance(data, list):
        raise TopologyError("nodes.data: expected a list")
    return NodesPage(
        absolute_epoch_id=_int(_get(meta, "absolute_epoch_id", "metadata"), "absolute_epoch_id"),
        rotation_id=_int(_get(meta, "rotation_id", "metadata"), "metadata.rotation_id"),
        refreshed_at=_str(_get(meta, "refreshed_at", "metadata"), "metadata.refreshed_at"),
        total=_int(_get(pagination, "total", "pagination"), "pagination.total"),
        page=_int(_get(pagination, "page", "pagination"), "pagination.page"),
        size=_int(_get(pagination, "size", "pagination"), "pagination.size"),
        nodes=tuple(parse_node(n, f"nodes.data[{i}]") for i, n in enumerate(data)),
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
    )


@dataclass(frozen=True, slots=True)
class Topology:
    """Known nodes by id plus the layer assignment and key rotation they belong to."""

    rewarded_set: RewardedSet
    nodes: Mapping[int, Node]
    rotation_id: int = 0

    @classmethod
    def from_directory(
        cls,
        rewarded_set: RewardedSet,
        pages: Iterable[NodesPage],
        min_performance: int = DEFAULT_MIN_PERFORMANCE,
    ) -> Topology:
        """Merge node pages (all must agree on epoch and rotation); drop low performers."""
        nodes: dict[int, Node] = {}
        rotation: int | None = None
        epoch: int | None = None
        for page in pages:
            if rotation is None:
                rotation, epoch = page.rotation_id, page.absolute_epoch_id
            elif (page.rotation_id, page.absolute_epoch_id) != (rotation, epoch):
                raise TopologyError("directory pages disagree on epoch or key rotation")
            for node in page.nodes:
                if node.performance_percent >= min_performance:
                    nodes[node.node_id] = node
        return cls(rewarded_set, nodes, rotation or 0)

    @property
    def key_rotation(self) -> SphinxKeyRotation:
        return SphinxKeyRotation.from_rotation_id(self.rotation_id)

    def layer(self, number: int) -> list[Node]:
        """Known nodes of mix layer 1, 2 or 3 (ids without details are skipped)."""
        return [self.nodes[i] for i in self.rewarded_set.layer(number) if i in self.nodes]

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
