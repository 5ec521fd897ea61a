"""The processes of `bench/interop.py --profile shaped`: a local network, or one smolmix fetch.

Each runs with a chosen checkout first on sys.path (`--checkout`), so the same
file drives today's code (a base worktree) and this one. Both speak JSON lines:
the parent reads stdout and writes commands to stdin.

    network --checkout C --state DIR --mix-delay-ms 50 [--exit-tcp JSON]
        prints {"network_file": ...} once the network is up; then for every stdin
        line a counters snapshot of the entry gateway (Sphinx packets from and to
        its clients), of the exit (its IPR, NAT and mixnet client counters) and the
        mean per-hop delay the mix nodes forwarded since the last snapshot. Ends at EOF.
    fetch --checkout C --network-file F --size N [--upload N] --mix-delay-ms 50
        boots a Tunnel with Poisson pacing and loop cover on, prints {"ready": ...},
        waits for a stdin line, then GETs /bytes/N (or PUTs N bytes to /upload) from the
        demo origin by address and prints time, sha256, the CPU this process spent on
        the transfer, its mixnet client's counters and its send queue every 0.1 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ACK_PUSH_MAX = 200
"""Pushes at most this long are SURB-ACKs (an ack's payload is a few dozen bytes)."""


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def read_line() -> str:
    import anyio

    return await anyio.to_thread.run_sync(sys.stdin.readline)


async def run_network(args: argparse.Namespace) -> None:
    import anyio

    from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions

    local = LocalNetwork(LocalNetworkOptions(Path(args.state), mean_delay_ms=args.mix_delay_ms))
    delays = {"ns": 0, "n": 0}
    pushes = {"acks": 0, "other": 0}

    def observe(schedule: Any) -> Any:
        def observed(forward: Any) -> None:
            delays["ns"] += forward.delay_ns
            delays["n"] += 1
            schedule(forward)

        return observed

    async with anyio.create_task_group() as tg:
        network = await tg.start(local.serve)
        for node in local.mixnodes.values():
            node._schedule = observe(node._schedule)  # type: ignore[method-assign]
        assert network.entry_gateway is not None
        entry = local.gateways[network.entry_gateway.node_id]
        deliver = entry._deliver

        def counted(decision: Any) -> None:
            kind = "acks" if len(decision.message) <= ACK_PUSH_MAX else "other"
            pushes[kind] += 1
            deliver(decision)

        entry._deliver = counted  # type: ignore[method-assign]
        emit(network_file=str(local.network_file))
        exit_ipr = next(iter(local.exits.values()))
        stack = exit_ipr.nat.stack
        overrides = json.loads(args.exit_tcp)
        if overrides:  # TcpConfig fields for flows from now on (--exit-tcp)
            stack.tcp_config_v4 = dataclasses.replace(stack.tcp_config_v4, **overrides)
            stack.tcp_config_v6 = dataclasses.replace(stack.tcp_config_v6, **overrides)
        tcp = {"cwnd": 0.0, "srtt": 0.0, "n": 0, "queued": 0.0, "surbs": 0.0}
        tcp.update(flight=0.0, wnd=0.0, unsent=0.0)
        seen: dict[int, Any] = {}
        flow: dict[str, Any] = {"conn": None, "trace": [], "t0": time.monotonic()}

        async def sample_exit_tcp() -> None:
            # The exit NAT's TCP towards the client: its window and round trip as it sees
            # them. Only the newest flow counts: an earlier transfer's flow may still be
            # resending its tail to a client that left (its RTOs are not this transfer's).
            while True:
                for sock in exit_ipr.nat.stack.connections:
                    conn = sock.conn
                    if id(conn.stats) not in seen:
                        flow["conn"] = conn
                    seen[id(conn.stats)] = conn.stats  # held, so its id stays unique
                conn = flow["conn"]
                tx = getattr(conn, "_tx", None)
                active = tx is not None and (tx.snd_nxt - tx.snd_una or len(tx.buf))
                if active and getattr(conn, "srtt", None) is not None:
                    tcp["cwnd"] += conn.cwnd
                    tcp["srtt"] += conn.srtt
                    tcp["n"] += 1
                    tcp["flight"] += tx.snd_nxt - tx.snd_una
                    tcp["wnd"] += tx.snd_wnd
                    tcp["unsent"] += tx.buf_start + len(tx.buf) - tx.snd_nxt
                    accounts = getattr(exit_ipr.router, "_accounts", {})
                    tcp["queued"] += sum(len(a.queue) for a in accounts.values())
                    tcp["surbs"] += sum(a.available for a in accounts.values())
                    st = conn.stats
                    newest = next(reversed(accounts.values()), None) if accounts else None
                    flow["trace"].append(
                        [
                            round(time.monotonic() - flow["t0"], 1),
                            conn.cwnd // 1000,
                            (tx.snd_nxt - tx.snd_una) // 1000,
                            round(conn.srtt * 1000),
                            round(tx.rtt.current_rto() * 1000),
                            st.recoveries,
                            st.undos,
                            st.rto_events,
                            st.tlp_probes,
                            newest.available if newest is not None else -1,
                            len(newest.queue) if newest is not None else -1,
                        ]
                    )
                await anyio.sleep(0.1)

        tg.start_soon(sample_exit_tcp)
        while await read_line():
            n = delays["n"]
            exit_stats = dict(exit_ipr.stats())
            for field in ("segments_out", "retransmits", "recoveries", "undos", "rto_events"):
                exit_stats[f"tcp_{field}"] = sum(getattr(st, field, 0) for st in seen.values())
            samples = tcp["n"] or 1
            exit_stats["tcp_cwnd_mean"] = round(tcp["cwnd"] / samples)
            exit_stats["tcp_srtt_mean_ms"] = round(tcp["srtt"] / samples * 1000)
            for key in ("flight", "wnd", "unsent"):
                exit_stats[f"tcp_{key}_mean"] = round(tcp[key] / samples)
                tcp[key] = 0
            exit_stats["replies_waiting_for_surbs_mean"] = round(tcp["queued"] / samples, 1)
            exit_stats["surbs_held_mean"] = round(tcp["surbs"] / samples, 1)
            conn = flow["conn"]
            if conn is not None:  # the newest flow alone (traffic() keeps `_flow` as is)
                for field in ("retransmits", "recoveries", "undos", "rto_events", "tlp_probes"):
                    exit_stats[f"tcp_{field}_flow"] = getattr(conn.stats, field, 0)
            # [s, cwnd KB, flight KB, SRTT ms, RTO ms, recoveries, undos, RTOs, TLPs,
            #  SURBs the newest account holds, replies it queues for want of SURBs]
            exit_stats["tcp_trace_flow"] = flow["trace"]
            flow["trace"], flow["t0"] = [], time.monotonic()
            tcp["cwnd"] = tcp["srtt"] = tcp["n"] = tcp["queued"] = tcp["surbs"] = 0
            client = exit_ipr.mixnet_client
            if client is not None:
                for field in ("reply_retransmissions", "retransmissions", "real_packets_sent"):
                    value = getattr(client.stats, field, None)  # older checkouts lack some
                    if value is not None:
                        exit_stats[f"mixnet_{field}"] = value
            emit(
                network_cpu_s=time.process_time(),
                exit=exit_stats,
                packets_from_clients=entry.counters["client_packets"],
                pushes_acks=pushes["acks"],
                pushes_other=pushes["other"],
                mean_hop_delay_ms=round(delays["ns"] / n / 1e6, 2) if n else 0.0,
                hops=n,
            )
            delays["ns"] = delays["n"] = 0
        tg.cancel_scope.cancel()


async def run_fetch(args: argparse.Namespace) -> None:
    import anyio

    from smolmix_cli.config import load_network_file
    from smolmix_cli.tunnel.options import for_local_network
    from smolmix_cli.tunnel.tunnel import Tunnel

    network = load_network_file(Path(args.network_file), name="bench")
    assert network.demo is not None
    options = for_local_network(
        cover=True,
        poisson=True,
        mean_delay_ms=args.mix_delay_ms,
        sending_delay=args.sending_delay_ms / 1000,
        **json.loads(args.options),
    )
    async with Tunnel.open(network, options) as tunnel:
        await tunnel.wait_ready()
        emit(ready=True)
        await read_line()
        mixnet = getattr(tunnel, "_mixnet", None)
        counted = ("cover_packets_sent", "real_packets_sent", "reply_surbs_served")

        def mixnet_counts() -> dict[str, int]:
            stats = mixnet.stats if mixnet is not None else None
            return {name: getattr(stats, name, 0) for name in counted}

        before = mixnet_counts()
        trace: list[list[float]] = []

        async def sample_client() -> None:
            # The client's estimate of the exit's SURB stock and its mixnet queue: real
            # packets waiting for a slot, and those of them that are SURBs for the exit.
            link = getattr(tunnel, "_link", None)
            client = getattr(link, "client", None)
            core = getattr(mixnet, "_core", None)
            if client is None or core is None or not hasattr(core, "queued_ahead"):
                return  # an older checkout
            while True:
                trace.append(
                    [
                        round(time.perf_counter() - t0, 1),
                        round(client.exit_surbs),
                        core.queued,
                        core.queued - core.queued_ahead,
                    ]
                )
                await anyio.sleep(0.1)

        cpu0, t0 = time.process_time(), time.perf_counter()
        chunks = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(sample_client)
            stream = await tunnel.open_tcp(network.demo.ipv4, 80)
            host = f"Host: {network.demo.zone}\r\nConnection: close\r\n"
            sent = (bytes(range(256)) * (args.upload // 256 + 1))[: args.upload]
            if args.upload:  # PUT that many bytes instead
                head = f"PUT /upload HTTP/1.1\r\n{host}Content-Length: {args.upload}\r\n\r\n"
                await stream.send(head.encode() + sent)
            else:
                await stream.send(f"GET /bytes/{args.size} HTTP/1.1\r\n{host}\r\n".encode())
            try:
                while True:
                    chunks.append(await stream.receive())
            except anyio.EndOfStream:
                pass
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            tg.cancel_scope.cancel()  # the sampler
        await stream.aclose()
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        snap = tunnel.snapshot()
        after = mixnet_counts()
        emit(
            client_mixnet={name: after[name] - before[name] for name in counted},
            # [s, estimated exit SURBs, real packets queued, of them SURBs for the exit]
            client_trace=trace,
            status=int(head.split(b" ", 2)[1]) if head else 0,
            size_bytes=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            # a PUT: the origin's digest of what it received is the one we sent
            upload_ok=bool(args.upload) and hashlib.sha256(sent).hexdigest() in body.decode(),
            time_s=round(elapsed, 3),
            cpu_s=round(cpu, 3),
            messages_up=getattr(snap, "messages_up", None),
            ip_packets_up=getattr(snap, "packets_up", None),
            ip_packets_down=getattr(snap, "packets_down", None),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("network", "fetch"))
    parser.add_argument("--checkout", required=True)
    parser.add_argument("--state")
    parser.add_argument("--network-file")
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--upload", type=int, default=0, help="fetch: PUT this many bytes")
    parser.add_argument("--mix-delay-ms", type=float, default=50.0)
    parser.add_argument("--sending-delay-ms", type=float, default=20.0)
    parser.add_argument("--options", default="{}", help="more TunnelOptions, as JSON")
    parser.add_argument("--exit-tcp", default="{}", help="network: exit TcpConfig fields, JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.checkout).resolve()))
    import anyio

    anyio.run(run_network if args.role == "network" else run_fetch, args)


if __name__ == "__main__":
    main()
