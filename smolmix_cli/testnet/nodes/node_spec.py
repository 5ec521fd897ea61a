"""What the local network knows about one node: role, keys, where it listens.

A `NodeSpec` is the single description both the node (private keys, ports to bind)
and the directory (public keys, addresses, roles) read, so they cannot disagree.
Private keys are in it: serialise with `to_json(private=True)` only into files the
network owns (0600), never into directory answers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from smolmix_cli.mixnet.address import NodeAddress
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.keys import Ed25519KeyPair, X25519KeyPair, decode_key_base58
from smolmix_cli.mixnet.packet.size import SphinxKeyRotation
from smolmix_cli.mixnet.packet.sphinx import RouteHop
from smolmix_cli.mixnet.topology.topology import EntryDetails, Node, NodeRole, SupportedRoles

DEFAULT_ROTATION_ID = 1
_ROLES = {
    NodeRole.MIXNODE: "mixnode",
    NodeRole.ENTRY_GATEWAY: "entry",
    NodeRole.EXIT_GATEWAY: "exit",
}


class NodeSpecError(MalformedData):
    """A node description that is inconsistent or does not parse."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node of the local network.

    `sphinx` is the key of rotation `rotation_id` (the directory's current rotation);
    `sphinx_secondary`, if set, is the key of the other parity (previous or next
    rotation), which the node keeps accepting like nym-node does around a rotation.
    Port 0 means "any free port"; a started node's `.spec` carries the bound ports.
    """

    node_id: int
    role: NodeRole
    identity: Ed25519KeyPair
    sphinx: X25519KeyPair
    host: str = "127.0.0.1"
    mix_port: int = 0
    layer: int | None = None
    ws_port: int | None = None
    wss_port: int | None = None
    hostname: str | None = None
    performance: Decimal = Decimal(1)
    rotation_id: int = DEFAULT_ROTATION_ID
    sphinx_secondary: X25519KeyPair | None = None

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise NodeSpecError(f"unsupported role {self.role.value} for a testnet node")
        if self.role is NodeRole.MIXNODE:
            if self.layer not in (1, 2, 3):
                raise NodeSpecError(f"a mix node needs layer 1..3, got {self.layer}")
        elif self.layer is not None:
            raise NodeSpecError("only mix nodes have a layer")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise NodeSpecError(f"host must be an IP address, got {self.host!r}") from None
        for name in ("mix_port", "ws_port", "wss_port"):
            port = getattr(self, name)
            if port is not None and not 0 <= port <= 0xFFFF:
                raise NodeSpecError(f"{name} out of range: {port}")
        if not Decimal(0) <= self.performance <= Decimal(1):
            raise NodeSpecError(f"performance must be in [0, 1], got {self.performance}")
        if not 0 <= self.rotation_id <= 0xFFFFFFFF:
            raise NodeSpecError(f"rotation id out of range: {self.rotation_id}")

    # -- construction

    @classmethod
    def generate(
        cls,
        node_id: int,
        role: NodeRole,
        *,
        layer: int | None = None,
        host: str = "127.0.0.1",
        mix_port: int = 0,
        ws_port: int | None = None,
        wss_port: int | None = None,
        hostname: str | None = None,
        performance: Decimal = Decimal(1),
        rotation_id: int = DEFAULT_ROTATION_ID,
    ) -> NodeSpec:
        """Fresh identity and Sphinx keys; gateways default to ws port 0 (any free)."""
        if role is not NodeRole.MIXNODE and ws_port is None:
            ws_port = 0
        return cls(
            node_id=node_id,
            role=role,
            identity=Ed25519KeyPair.generate(),
            sphinx=X25519KeyPair.generate(),
            host=host,
            mix_port=mix_port,
            layer=layer,
            ws_port=ws_port,
            wss_port=wss_port,
            hostname=hostname,
            performance=performance,
            rotation_id=rotation_id,
        )

    def with_ports(
        self,
        *,
        mix_port: int | None = None,
        ws_port: int | None = None,
        wss_port: int | None = None,
    ) -> NodeSpec:
        """A copy with bound ports filled in (what a started node reports)."""
        return replace(
            self,
            mix_port=self.mix_port if mix_port is None else mix_port,
            ws_port=self.ws_port if ws_port is None else ws_port,
            wss_port=self.wss_port if wss_port is None else wss_port,
        )

    # -- derived views

    @property
    def is_gateway(self) -> bool:
        return self.role is not NodeRole.MIXNODE

    @property
    def mix_address(self) -> NodeAddress:
        """The Sphinx routing address (`NymNodeRoutingAddress`) of this node."""
        return NodeAddress.from_host_port(self.host, self.mix_port)

    @property
    def key_rotation(self) -> SphinxKeyRotation:
        """The frame label of the primary Sphinx key (parity of `rotation_id`)."""
        return SphinxKeyRotation.from_rotation_id(self.rotation_id)

    @property
    def route_hop(self) -> RouteHop:
        return RouteHop(self.mix_address.to_bytes(), self.sphinx.public_bytes)

    @property
    def supported_roles(self) -> SupportedRoles:
        if self.role is NodeRole.MIXNODE:
            return SupportedRoles(mixnode=True)
        exit_capable = self.role is NodeRole.EXIT_GATEWAY
        return SupportedRoles(entry=True, exit_nr=exit_capable, exit_ipr=exit_capable)

    @property
    def entry(self) -> EntryDetails | None:
        if not self.is_gateway or self.ws_port is None:
            return None
        return EntryDetails(self.hostname, self.ws_port, self.wss_port)

    def ws_url(self) -> str | None:
        """Client URL per spec 3.1: wss with hostname when both are announced, else ws."""
        entry = self.entry
        if entry is None:
            return None
        if entry.wss_port is not None and entry.hostname is not None:
            return f"wss://{entry.hostname}:{entry.wss_port}"
        host = entry.hostname or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"ws://{host}:{entry.ws_port}"

    def to_topology_node(self) -> Node:
        """The node as a client's `Topology` holds it (for routes in tests and tools)."""
        return Node(
            node_id=self.node_id,
            identity=self.identity.public_bytes,
            sphinx_key=self.sphinx.public_bytes,
            ip_addresses=(ipaddress.ip_address(self.host),),
            mix_port=self.mix_port,
            role=self.role,
            layer=self.layer,
            performance=self.performance,
            supported_roles=self.supported_roles,
            entry=self.entry,
        )

    # -- serialisation (state files of the local network)

    def to_json(self, *, private: bool = False) -> dict[str, Any]:
        """JSON-ready dict; with `private=True` it includes the private keys."""
        out: dict[str, Any] = {
            "node_id": self.node_id,
            "role": _ROLES[self.role],
            "layer": self.layer,
            "host": self.host,
            "mix_port": self.mix_port,
            "ws_port": self.ws_port,
            "wss_port": self.wss_port,
            "hostname": self.hostname,
            "performance": str(self.performance),
            "rotation_id": self.rotation_id,
            "identity_key": self.identity.public_base58(),
            "sphinx_key": self.sphinx.public_base58(),
        }
        if private:
            out["identity_private"] = b58encode(self.identity.private_bytes)
            out["sphinx_private"] = b58encode(self.sphinx.private_bytes)
            if self.sphinx_secondary is not None:
                out["sphinx_secondary_private"] = b58encode(self.sphinx_secondary.private_bytes)
        return out

    @classmethod
    def from_json(cls, data: Any) -> NodeSpec:
        """Inverse of `to_json(private=True)`; NodeSpecError on anything malformed."""
        if not isinstance(data, dict):
            raise NodeSpecError("node spec must be a JSON object")
        try:
            role = {v: k for k, v in _ROLES.items()}[data["role"]]
            identity = Ed25519KeyPair.from_private_bytes(
                decode_key_base58(data["identity_private"], "identity private key")
            )
            sphinx = X25519KeyPair.from_private_bytes(
                decode_key_base58(data["sphinx_private"], "sphinx private key")
            )
            secondary_text = data.get("sphinx_secondary_private")
            secondary = (
                None
                if secondary_text is None
                else X25519KeyPair.from_private_bytes(
                    decode_key_base58(secondary_text, "secondary sphinx private key")
                )
            )
            spec = cls(
                node_id=_int(data["node_id"]),
                role=role,
                identity=identity,
                sphinx=sphinx,
                host=str(data["host"]),
                mix_port=_int(data["mix_port"]),
                layer=_opt_int(data.get("layer")),
                ws_port=_opt_int(data.get("ws_port")),
                wss_port=_opt_int(data.get("wss_port")),
                hostname=_opt_str(data.get("hostname")),
                performance=Decimal(str(data.get("performance", "1"))),
                rotation_id=_int(data.get("rotation_id", DEFAULT_ROTATION_ID)),
                sphinx_secondary=secondary,
            )
        except NodeSpecError:
            raise
        except (KeyError, TypeError, InvalidOperation, MixnetError) as exc:
            raise NodeSpecError(f"bad node spec: {exc!r}") from None
        for field_name, key in (("identity_key", identity), ("sphinx_key", sphinx)):
            if field_name in data and data[field_name] != key.public_base58():
                raise NodeSpecError(f"{field_name} does not match the private key")
        return spec


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise NodeSpecError(f"expected an integer, got {value!r}")
    return value


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise NodeSpecError(f"expected a string, got {value!r}")
