"""How the local network is shaped: the lab's few healthy nodes, or a crowd shaped like mainnet.

The lab shape is what `smolmix testnet up` always ran: one entry gateway, a
few exits, three mix layers, every node healthy and pinned in the network file.

The mainnet shape answers what a client meets on the real network (issue 16;
/work/shared/reference/mainnet-readiness.md rows 5-26): hundreds of listed
nodes, most of them useless to a client (standby, inactive, `entry: null`,
performance "0", network-requester-only, old builds, exits behind gateways no
client can reach), and among the usable ones a share that is dead or refuses.
Faulty nodes come in two sorts: real local nodes that misbehave on the wire
(`EXIT_FAULTS`, `GATEWAY_FAULTS`), and decoys that are listed but absent
(`DECOY_FAULTS`, plus `decoys` more that the client's filters must remove).
Nothing is pinned: the client picks its entry gateway and exits from the
directory as it would on mainnet.

Node ids keep gateways and mix nodes apart: gateways 1..199 (the first entry
gateway is 1, exits follow from 2, further entry gateways after the exits),
mix nodes from 201, decoys from 1001.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from smolmix_cli.mixnet.topology.topology import NodeRole


class Fault(enum.StrEnum):
    # real exit gateways
    SILENT = "silent"  # takes mixnet traffic, never answers the IPR
    NR_ONLY = "nr-only"  # declares exit_nr but not exit_ipr, runs no IPR
    UNROUTABLE = "unroutable"  # exit-providers-only: absent from entry-gateways
    V9_ONLY = "v9-only"  # advertises a v10 build (>= 1.37.0), drops v10 requests
    SLOW = "slow"  # answers the IPR connect after `slow_delay_s`
    # real entry gateways
    BAD_CERT = "bad-cert"  # wss with a certificate not from the network's CA
    ZK_NYM = "zk-nym"  # refuses free bandwidth (nym-node's enforce_zk_nyms)
    CLOSE_AFTER_HELLO = "close-after-hello"  # closes right after answering supportedProtocol
    FULL = "full"  # at capacity: drops every new connection, as nym-node does
    # decoys: listed, usable by the client's filters, nothing listens
    DEAD_GATEWAY = "dead-gateway"
    DEAD_EXIT = "dead-exit"


EXIT_FAULTS = (Fault.SILENT, Fault.NR_ONLY, Fault.UNROUTABLE, Fault.V9_ONLY, Fault.SLOW)
GATEWAY_FAULTS = (Fault.BAD_CERT, Fault.ZK_NYM, Fault.CLOSE_AFTER_HELLO, Fault.FULL)
DECOY_FAULTS = (Fault.DEAD_GATEWAY, Fault.DEAD_EXIT)
# After the client's filters these fail a connect; the rest are reachable (slow and
# v9-only late, bad-cert over ws). nr-only and unroutable exits are filtered out.
DEAD_EXITS = (Fault.SILENT, Fault.DEAD_EXIT)
DEAD_GATEWAYS = (Fault.ZK_NYM, Fault.CLOSE_AFTER_HELLO, Fault.FULL, Fault.DEAD_GATEWAY)
FILTERED_EXITS = (Fault.NR_ONLY, Fault.UNROUTABLE)

ENTRY_ID = 1
EXIT_ID = 2  # the first exit; more exits, then more entry gateways, follow
MAX_GATEWAY_ID = 199
FIRST_MIX_ID = 201
FIRST_DECOY_ID = 1001
MAX_DECOYS = 5000
V10_BUILD_VERSION = "1.37.1"  # what a v9-only exit advertises (v10 from 1.37.0)


@dataclass(frozen=True, slots=True)
class NetworkShape:
    """Faulty nodes by kind and listed-but-absent decoys; `name` is "lab" or "mainnet"."""

    name: str = "lab"
    entry_gateways: int = 1  # healthy real entry gateways
    faults: Mapping[Fault, int] = field(default_factory=dict)
    decoys: int = 0  # listed-but-absent nodes the client's filters remove
    slow_delay_s: float = 3.0
    pinned: bool = True  # the network file pins the entry gateway and the healthy exits
    paginate: bool = True  # mainnet's nym-api ignores page/per_page: one page with everything

    def __post_init__(self) -> None:
        if self.entry_gateways < 1:
            raise ValueError("a network needs at least one healthy entry gateway")
        for kind, count in self.faults.items():
            if not isinstance(kind, Fault) or count < 0:
                raise ValueError(f"bad fault count {kind}={count}")
        if not 0 <= self.decoys <= MAX_DECOYS:
            raise ValueError(f"decoys must be 0..{MAX_DECOYS}")
        if self.slow_delay_s < 0:
            raise ValueError("slow delay must be >= 0")

    def count(self, kind: Fault) -> int:
        return self.faults.get(kind, 0)

    def with_faults(self, counts: Mapping[Fault, int]) -> NetworkShape:
        return replace(self, faults={**self.faults, **counts})

    def describe(self) -> dict[str, object]:
        """What `testnet status` shows of the shape."""
        return {
            "name": self.name,
            "entry_gateways": self.entry_gateways,
            "faults": {str(k): v for k, v in self.faults.items() if v},
            "decoys": self.decoys,
            "pinned": self.pinned,
        }


LAB = NetworkShape()

# After the filters about 60 % of the exits and 40 % of the entry gateways are dead or
# refuse: exits 2 silent + 6 dead of 13 (3 healthy, v9-only and slow reachable);
# gateways 3 refusing + 6 dead of 21 (the 8 routable exit gateways are good entries).
MAINNET = NetworkShape(
    name="mainnet",
    entry_gateways=3,
    faults={
        Fault.SILENT: 2,
        Fault.NR_ONLY: 1,
        Fault.UNROUTABLE: 1,
        Fault.V9_ONLY: 1,
        Fault.SLOW: 1,
        Fault.BAD_CERT: 1,
        Fault.ZK_NYM: 1,
        Fault.CLOSE_AFTER_HELLO: 1,
        Fault.FULL: 1,
        Fault.DEAD_EXIT: 6,
        Fault.DEAD_GATEWAY: 0,
    },
    decoys=230,
    pinned=False,
    paginate=False,
)
MAINNET_EXITS = 3  # healthy ones
MAINNET_MIX_NODES = 6  # two per layer: killing one leaves routes
SHAPES = {"lab": LAB, "mainnet": MAINNET}


@dataclass(frozen=True, slots=True)
class PlannedNode:
    """One real node the shape asks for."""

    node_id: int
    role: NodeRole
    layer: int | None = None
    fault: Fault | None = None


def plan(shape: NetworkShape, exits: int, mix_nodes: int) -> list[PlannedNode]:
    """The real nodes, in id order within each role (ValueError when they do not fit)."""
    nodes = [PlannedNode(ENTRY_ID, NodeRole.ENTRY_GATEWAY)]
    exit_faults: list[Fault | None] = [None] * exits
    for kind in EXIT_FAULTS:
        exit_faults += [kind] * shape.count(kind)
    nodes += [
        PlannedNode(EXIT_ID + i, NodeRole.EXIT_GATEWAY, fault=f) for i, f in enumerate(exit_faults)
    ]
    entry_faults: list[Fault | None] = [None] * (shape.entry_gateways - 1)
    for kind in GATEWAY_FAULTS:
        entry_faults += [kind] * shape.count(kind)
    first = EXIT_ID + len(exit_faults)
    nodes += [
        PlannedNode(first + i, NodeRole.ENTRY_GATEWAY, fault=f) for i, f in enumerate(entry_faults)
    ]
    if nodes[-1].node_id > MAX_GATEWAY_ID:
        raise ValueError(f"at most {MAX_GATEWAY_ID} gateways (entry and exit, faulty included)")
    if FIRST_MIX_ID + mix_nodes > FIRST_DECOY_ID:
        raise ValueError(f"at most {FIRST_DECOY_ID - FIRST_MIX_ID} mix nodes")
    nodes += [
        PlannedNode(FIRST_MIX_ID + i, NodeRole.MIXNODE, layer=i % 3 + 1) for i in range(mix_nodes)
    ]
    return nodes


def parse_fault_counts(items: tuple[str, ...] | list[str]) -> dict[Fault, int]:
    """`KIND=N` texts (the CLI's --fault); ValueError names the bad one."""
    counts: dict[Fault, int] = {}
    for item in items:
        name, eq, number = item.partition("=")
        try:
            kind = Fault(name.strip())
        except ValueError:
            known = ", ".join(str(f) for f in Fault)
            raise ValueError(f"unknown fault {name!r} (known: {known})") from None
        if not eq or not number.strip().isdigit():
            raise ValueError(f"{item!r}: expected KIND=N with N a whole number")
        counts[kind] = int(number)
    return counts
