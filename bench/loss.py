"""Throughput under loss: one download through the local network at each loss rate, same run.

For each loss rate (per mix node; gateways lose nothing) an in-process local
network with the demo origin and an exit IPR is started, a tunnel boots on it
and fetches `https://demo.smolmix.test/bytes/N`; the body's SHA-256 is checked
against `bytes_sha256(N)` (computed here, not taken from the origin). Every
measurement is one JSON line: wall time of the fetch (boot excluded), bytes
verified, and the retransmissions of each layer: the client's mixnet client
(its own fragments), the exit IPR's mixnet client (reply fragments), and TCP
on both ends (client stack: uplink ACKs; exit NAT stack: downlink data).
The last line compares each loss rate with the lossless fetch of the same run.
`run_queue_seconds` is time the process waited for a CPU (other processes) and
`idle_seconds` time it waited on timers and peers; on a shared machine the
summary's `ratio_without_run_queue` (wall less run queue) is the steadier ratio.

`--policies new,old,sparse` runs each case once per policy, interleaved. `new` is the
default; `old` the TCP policy before issue 17: Nagle on, no coalescing of queued lone
ACKs (client and exit NAT); `sparse` adds one ACK per two data segments, in order or not
(TcpConfig.ack_every=2), which cut uplink messages under loss but slowed the transfer.
Uplink messages per MiB and the process's CPU (network + client, one process)
compare in one run; summaries are per policy.

    .venv/bin/python bench/loss.py [--mib 1] [--loss 0,0.1] [--repeat 1] [--mix-delay-ms 0]
        [--policies new]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from smolmix_cli.apps.http_client import HttpClient  # noqa: E402
from smolmix_cli.apps.http_options import FetchOptions  # noqa: E402
from smolmix_cli.netstack.iface.stack import NetStack  # noqa: E402
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions  # noqa: E402
from smolmix_cli.testnet.origin.http import bytes_sha256  # noqa: E402
from smolmix_cli.tunnel.options import for_local_network  # noqa: E402
from smolmix_cli.tunnel.tunnel import Tunnel  # noqa: E402

MIB = 1 << 20
TCP_FIELDS = ("segments_out", "retransmits", "rto_events", "tlp_probes", "recoveries", "undos")


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


class TcpSampler:
    """TCP counters of every connection a stack ever had (connections vanish when closed)."""

    def __init__(self, stacks: Iterable[NetStack]) -> None:
        self.stacks = list(stacks)
        self.seen: dict[int, Any] = {}

    def sample(self) -> None:
        for stack in self.stacks:
            for sock in stack.connections:
                self.seen[id(sock.conn)] = sock.conn.stats

    async def run(self) -> None:
        while True:
            self.sample()
            await anyio.sleep(0.1)

    def totals(self) -> dict[str, int]:
        self.sample()
        return {f: sum(getattr(s, f) for s in self.seen.values()) for f in TCP_FIELDS}


OLD_TCP = {"tcp_ack_every": 0, "tcp_nodelay": False, "coalesce_uplink_acks": False}
# name: (tunnel option changes, exit IPR mixnet client config changes)
POLICIES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "new": ({}, {}),
    "old": (OLD_TCP, {}),
    "sparse": ({"tcp_ack_every": 2}, {}),  # the sparse-ACK lever, off by default (README)
}


async def one_fetch(
    size: int, loss: float, mix_delay_ms: float, seed: int, policy: str = "new"
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="smolmix-loss-") as tmp:
        local = LocalNetwork(
            LocalNetworkOptions(Path(tmp) / "net", mean_delay_ms=mix_delay_ms, loss=loss, seed=seed)
        )
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            ca = Path(tmp) / "ca.pem"
            assert network.ca_pem is not None
            ca.write_text(network.ca_pem)
            boot = time.perf_counter()
            exit_ipr = next(iter(local.exits.values()))
            options = for_local_network()
            changes, exit_changes = POLICIES[policy]
            options = options.replace(**changes)
            if "tcp_ack_every" in changes:
                nat = exit_ipr.nat.stack
                for name in ("tcp_config_v4", "tcp_config_v6"):
                    policy_config = dataclasses.replace(
                        getattr(nat, name),
                        ack_every=changes["tcp_ack_every"],
                        nagle=not changes.get("tcp_nodelay", True),
                    )
                    setattr(nat, name, policy_config)
            if exit_changes:
                assert exit_ipr.mixnet_client is not None
                core = exit_ipr.mixnet_client._core
                core.config = dataclasses.replace(core.config, **exit_changes)
            async with Tunnel.open(network, options) as tunnel:
                await tunnel.wait_ready(60)
                boot_s = time.perf_counter() - boot
                session = tunnel.session
                assert session is not None
                client_tcp = TcpSampler([session.stack])
                exit_tcp = TcpSampler([exit_ipr.nat.stack])
                digest = hashlib.sha256()
                received = 0

                async def sink(data: bytes) -> None:
                    nonlocal received
                    received += len(data)
                    digest.update(data)

                async with anyio.create_task_group() as samplers:
                    samplers.start_soon(client_tcp.run)
                    samplers.start_soon(exit_tcp.run)
                    snap0 = tunnel.snapshot()
                    cpu0 = time.process_time()
                    sched0 = _schedstat()
                    start = time.perf_counter()
                    async with HttpClient(tunnel) as http:
                        await http.fetch(
                            f"https://demo.smolmix.test/bytes/{size}",
                            sink,
                            FetchOptions(cafile=str(ca)),
                        )
                    wall = time.perf_counter() - start
                    cpu = time.process_time() - cpu0
                    on_cpu, run_queue = (b - a for a, b in zip(sched0, _schedstat(), strict=True))
                    snap = tunnel.snapshot()
                    samplers.cancel_scope.cancel()
                mixnet = tunnel._mixnet
                assert mixnet is not None
                exit_client = exit_ipr.mixnet_client
                assert exit_client is not None
                ok = digest.hexdigest() == bytes_sha256(size) and received == size
                drops = sum(n.counters["dropped_loss"] for n in local.mixnodes.values())
                record = {
                    "name": "loss.fetch",
                    "policy": policy,
                    "size_bytes": size,
                    "loss_per_mix_node": loss,
                    "mix_delay_ms": mix_delay_ms,
                    "wall_seconds": round(wall, 3),
                    "boot_seconds": round(boot_s, 3),
                    "bytes_verified": received if ok else 0,
                    "sha256_ok": ok,
                    "process_cpu_seconds": round(cpu, 2),
                    # waiting for a CPU (other processes) vs waiting on the protocol
                    "run_queue_seconds": round(run_queue, 2),
                    "idle_seconds": round(wall - on_cpu - run_queue, 2),
                    "mixnodes_dropped": drops,
                    "uplink_messages": snap.messages_up - snap0.messages_up,
                    "uplink_messages_per_mib": round(
                        (snap.messages_up - snap0.messages_up) * MIB / size, 1
                    ),
                    "uplink_acks_coalesced": sum(k.device.acks_coalesced for k in tunnel._links),
                    "client_mixnet": _mixnet_stats(mixnet.stats),
                    "exit_mixnet": _mixnet_stats(exit_client.stats) | _exit_core_stats(exit_ipr),
                    "exit_ipr": {
                        k: v
                        for k, v in exit_ipr.stats().items()
                        if k.startswith("exit_") or "surb" in k
                    },
                    "client_tcp": client_tcp.totals(),
                    "exit_tcp": exit_tcp.totals(),
                }
            tg.cancel_scope.cancel()
    return record


def _schedstat() -> tuple[float, float]:
    """This thread's seconds on a CPU and waiting for one (Linux /proc/self/schedstat):
    wall time less both is time the transfer waited on timers and peers, which a
    loaded machine does not inflate."""
    on_cpu, run_queue, _slices = Path("/proc/self/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(run_queue) / 1e9


def _mixnet_stats(stats: Any) -> dict[str, int]:
    return {
        "real_packets_sent": stats.real_packets_sent,
        "retransmissions": stats.retransmissions,
        "reply_retransmissions": stats.reply_retransmissions,
        "acks_received": stats.acks_received,
        "messages_failed": stats.messages_failed,
        "reply_surbs_received": stats.reply_surbs_received,
    }


def _exit_core_stats(exit_ipr: Any) -> dict[str, int]:
    core = exit_ipr.mixnet_client._core.stats
    return {"losses_detected": core.losses_detected}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=float, default=1.0, help="download size in MiB")
    parser.add_argument("--loss", default="0,0.1", help="loss rates per mix node, comma-separated")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--mix-delay-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policies", default="new", help="comma-separated: new, old")
    args = parser.parse_args()
    size = int(args.mib * MIB)
    rates = [float(x) for x in args.loss.split(",")]
    policies = args.policies.split(",")
    walls: dict[tuple[str, float], list[float]] = {(p, r): [] for p in policies for r in rates}
    own: dict[tuple[str, float], list[float]] = {(p, r): [] for p in policies for r in rates}
    for run in range(args.repeat):
        for rate in rates:
            # interleaved, the order flipping each run, so machine noise lands on both
            for policy in policies if run % 2 == 0 else policies[::-1]:
                record = anyio.run(
                    one_fetch, size, rate, args.mix_delay_ms, args.seed + run, policy
                )
                record["run"] = run
                emit(record)
                walls[(policy, rate)].append(record["wall_seconds"])
                own[(policy, rate)].append(record["wall_seconds"] - record["run_queue_seconds"])
    for policy in policies:
        base = min(walls.get((policy, 0.0)) or [0.0])
        if base > 0:
            emit(
                {
                    "name": "loss.summary",
                    "policy": policy,
                    "size_bytes": size,
                    "best_wall_seconds": {str(r): min(walls[(policy, r)]) for r in rates},
                    "ratio_to_lossless": {
                        str(r): round(min(walls[(policy, r)]) / base, 2) for r in rates
                    },
                    "ratio_without_run_queue": {
                        str(r): round(min(own[(policy, r)]) / min(own[(policy, 0.0)]), 2)
                        for r in rates
                    },
                }
            )


if __name__ == "__main__":
    main()
