"""Listed-but-absent nodes: what most of mainnet's directory looks like to a client.

Mainnet lists ~750 nodes; a client can use a fraction of them. Decoys give the
local directory that crowd without running it: standby and inactive mix nodes,
gateways with `entry: null`, IPv6-first addresses, performance "0" and mixed
values, `described` entries of 2-3 KB (network requester, authenticator,
wireguard, Lewes protocol), network-requester-only gateways, old builds, and
exits whose gateway is missing from the entry-gateways list. The client's
filters must remove every one of them.

Dead decoys (`Fault.DEAD_GATEWAY`, `Fault.DEAD_EXIT`) pass those filters on
purpose: a dead mainnet gateway. Their addresses are loopback ports held
bound but never listening (`DeadPorts`), so a connect is refused at once and
no other socket can take the port. Decoys are never in a mix layer
(standby/inactive only), so every route crosses real nodes only; a rewarded-set
schedule must not promote ids from FIRST_DECOY_ID on into the layers.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.keys import Ed25519KeyPair, X25519KeyPair
from smolmix_cli.mixnet.topology.topology import EntryDetails, NodeRole, SupportedRoles
from smolmix_cli.testnet.directory import DirectoryNode
from smolmix_cli.testnet.shape import FIRST_DECOY_ID, Fault, NetworkShape

LP_KEMS = ("mlkem768", "mceliece")  # the official client 0.2.1 rejects "xwing" and "x25519"
LP_HASHES = ("blake3", "shake128", "shake256", "sha256")
DEAD_PORTS = 4  # shared by all dead decoys (mix and ws ports)
COUNTRIES = ("DE", "NL", "US", "FR", "FI", "CH", "SG", "CA", "GB", "PL", "RO", "JP")
# (kind, weight): the filtered decoys, roughly mainnet's proportions of unusable nodes
FILTERED_KINDS = (
    ("standby-mix", 30),  # standby mix node, mixed performance
    ("inactive-mix", 15),  # inactive, performance "0"
    ("nr-only", 12),  # standby gateway running only the network requester
    ("old-build", 12),  # inactive exit with an IPR and a build before 1.30.0
    ("unroutable", 12),  # exit-providers-only: an IPR, but not in entry-gateways
    ("low-performance", 12),  # rewarded gateway with performance below 50 %
    ("entry-null", 7),  # standby gateway declaring entry with `entry: null`
)
GOOD_PERFORMANCE = ("1", "0.99", "0.97", "0.95", "0.9", "0.85", "0.78", "0.66")
LOW_PERFORMANCE = ("0", "0", "0.1", "0.3", "0.42", "0.49")
OLD_BUILDS = ("1.1.12", "1.2.4", "1.10.0", "1.19.1", "1.24.0", "1.29.1")
CURRENT_BUILDS = ("1.30.0", "1.31.0", "1.33.2", "1.35.0", "1.36.1")


class DeadPorts:
    """TCP ports on `host` that refuse connections: bound (without SO_REUSEADDR, so nothing
    else can bind them) but never listening. Close them when the network stops."""

    def __init__(self, host: str, count: int = DEAD_PORTS) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self._sockets: list[socket.socket] = []
        try:
            for _ in range(count):
                sock = socket.socket(family, socket.SOCK_STREAM)
                self._sockets.append(sock)
                sock.bind((host, 0))
        except OSError:
            self.close()
            raise
        self.ports = [int(s.getsockname()[1]) for s in self._sockets]

    def port(self, index: int) -> int:
        return self.ports[index % len(self.ports)]

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


@contextmanager
def dead_ports(host: str, count: int = DEAD_PORTS) -> Iterator[DeadPorts]:
    ports = DeadPorts(host, count)
    try:
        yield ports
    finally:
        ports.close()


def _ed25519(rng: random.Random) -> Ed25519KeyPair:
    return Ed25519KeyPair.from_private_bytes(rng.randbytes(32))


def _x25519(rng: random.Random) -> X25519KeyPair:
    return X25519KeyPair.from_private_bytes(rng.randbytes(32))


def _recipient(rng: random.Random, gateway: bytes) -> str:
    return str(Recipient(_ed25519(rng).public_bytes, _x25519(rng).public_bytes, gateway))


def _described_extra(
    rng: random.Random, node_id: int, identity: bytes, *, provider: bool
) -> dict[str, Any]:
    """The fields that make a mainnet `described` entry 2-3 KB."""
    extra: dict[str, Any] = {
        "host_information": {"hostname": f"nym-{node_id}.node.example.net"},
        "auxiliary_details": {
            "location": rng.choice(COUNTRIES),
            "announce_ports": {"verloc_port": 1790, "mix_port": 1789},
            "accepted_operator_terms_and_conditions": True,
        },
        "build_information": {
            "binary_name": "nym-node",
            "build_timestamp": "2026-05-14T09:12:44.000000000Z",
            "commit_sha": rng.randbytes(20).hex(),
            "commit_timestamp": "2026-05-13T17:02:19.000000000+02:00",
            "commit_branch": "HEAD",
            "rustc_version": "1.86.0",
            "rustc_channel": "stable",
            "cargo_profile": "release",
            "cargo_triple": "x86_64-unknown-linux-gnu",
        },
        # Signed, as the official client (0.2.1) requires: without `content` it rejects the
        # whole described page ("missing field `content`"). Upstream: nym-api-requests
        # LewesProtocolDetailsV1 {content, signature}; kem_keys are hex digests per KEM and
        # hash function (nym-api-requests models/described: LPKEM, LPHashFunction; 0.2.1
        # knows the KEMs mlkem768 and mceliece only), and they make up much of an entry's size.
        "lewes_protocol": {
            "content": {
                "enabled": provider,
                "control_port": 41264,
                "data_port": 51264,
                "x25519": b58encode(_x25519(rng).public_bytes),
                "kem_keys": {
                    kem: {h: rng.randbytes(32).hex() for h in LP_HASHES} for kem in LP_KEMS
                },
            },
            "signature": b58encode(rng.randbytes(64)),
        },
    }
    if provider:
        extra["network_requester"] = {
            "address": _recipient(rng, identity),
            "uses_exit_policy": True,
        }
        extra["authenticator"] = {"address": _recipient(rng, identity)}
        extra["wireguard"] = {
            "port": 51822,
            "tunnel_port": 51821,
            "metadata_endpoint_port": 51830,
            "public_key": b58encode(_x25519(rng).public_bytes),
        }
    return extra


def _kinds(count: int, rng: random.Random) -> list[str]:
    """`count` filtered kinds in mainnet-like proportions (each kind at least once when
    there is room), shuffled."""
    total = sum(w for _, w in FILTERED_KINDS)
    kinds = [k for k, w in FILTERED_KINDS for _ in range(max(1, count * w // total))]
    while len(kinds) < count:
        kinds.append(rng.choices([k for k, _ in FILTERED_KINDS], [w for _, w in FILTERED_KINDS])[0])
    kinds = kinds[:count]
    rng.shuffle(kinds)
    return kinds


def _filtered(node_id: int, kind: str, rng: random.Random, dead: DeadPorts) -> DirectoryNode:
    identity = _ed25519(rng).public_bytes
    v6 = f"2001:db8:{node_id:x}::1"  # documentation prefix: never routed
    ips = (
        (v6, f"192.0.2.{node_id % 250 + 1}")
        if rng.random() < 0.7
        else (f"192.0.2.{node_id % 250 + 1}",)
    )
    ws = EntryDetails(None, dead.port(node_id), None)
    build = rng.choice(CURRENT_BUILDS)
    perf = rng.choice(GOOD_PERFORMANCE)
    role = NodeRole.STANDBY
    roles = SupportedRoles(mixnode=True)
    entry: EntryDetails | None = None
    ipr: str | None = None
    layer = None
    if kind == "inactive-mix":
        role, perf, build = NodeRole.INACTIVE, "0", rng.choice(OLD_BUILDS + CURRENT_BUILDS)
    elif kind == "nr-only":
        roles, entry = SupportedRoles(entry=True, exit_nr=True), ws
    elif kind == "old-build":
        role, build = NodeRole.INACTIVE, rng.choice(OLD_BUILDS)
        roles, entry = SupportedRoles(entry=True, exit_nr=True, exit_ipr=True), ws
        ipr = _recipient(rng, identity)
    elif kind == "unroutable":
        role, entry = NodeRole.EXIT_GATEWAY, ws
        roles = SupportedRoles(exit_nr=True, exit_ipr=True)  # exit-providers-only
        ipr = _recipient(rng, identity)
    elif kind == "low-performance":
        exit_ = rng.random() < 0.5
        role = NodeRole.EXIT_GATEWAY if exit_ else NodeRole.ENTRY_GATEWAY
        roles = SupportedRoles(entry=True, exit_nr=exit_, exit_ipr=exit_)
        entry, perf = ws, rng.choice(LOW_PERFORMANCE)
        ipr = _recipient(rng, identity) if exit_ else None
    elif kind == "entry-null":
        roles = SupportedRoles(entry=True, exit_nr=True, exit_ipr=True)
    elif kind == "standby-mix":
        perf = rng.choice(GOOD_PERFORMANCE + LOW_PERFORMANCE)
    return DirectoryNode(
        node_id=node_id,
        identity=identity,
        sphinx_key=_x25519(rng).public_bytes,
        ip=ips[0],
        more_ips=ips[1:],
        mix_port=1789,
        role=role,
        layer=layer,
        entry=entry,
        supported_roles=roles,
        performance=perf,
        ipr_address=ipr,
        build_version=build,
        described_extra=_described_extra(rng, node_id, identity, provider=roles.exit_nr),
    )


def _dead(node_id: int, kind: Fault, rng: random.Random, dead: DeadPorts) -> DirectoryNode:
    """A gateway the client's filters keep: listed, rewarded, good performance; refused."""
    identity = _ed25519(rng).public_bytes
    exit_ = kind is Fault.DEAD_EXIT
    return DirectoryNode(
        node_id=node_id,
        identity=identity,
        sphinx_key=_x25519(rng).public_bytes,
        ip=dead.host,
        mix_port=dead.port(node_id),
        role=NodeRole.EXIT_GATEWAY if exit_ else NodeRole.ENTRY_GATEWAY,
        entry=EntryDetails(None, dead.port(node_id + 1), None),
        supported_roles=SupportedRoles(entry=True, exit_nr=exit_, exit_ipr=exit_),
        performance=str(Decimal(rng.choice(GOOD_PERFORMANCE[:6]))),
        ipr_address=_recipient(rng, identity) if exit_ else None,
        build_version=rng.choice(CURRENT_BUILDS),
        described_extra=_described_extra(rng, node_id, identity, provider=exit_),
    )


def decoy_nodes(shape: NetworkShape, rng: random.Random, dead: DeadPorts) -> list[DirectoryNode]:
    """The shape's decoys: dead gateways and exits first, then the filtered crowd."""
    nodes: list[DirectoryNode] = []
    node_id = FIRST_DECOY_ID
    for kind in (Fault.DEAD_GATEWAY, Fault.DEAD_EXIT):
        for _ in range(shape.count(kind)):
            nodes.append(_dead(node_id, kind, rng, dead))
            node_id += 1
    for kind_name in _kinds(shape.decoys, rng):
        nodes.append(_filtered(node_id, kind_name, rng, dead))
        node_id += 1
    return nodes
