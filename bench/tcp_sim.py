"""Recovery quality of the sans-io TCP engine on a virtual-clock impaired link.

Prints one JSON line per scenario: virtual completion time (from the end of
the handshake to the reader seeing EOF, base RTT 1 ms, no bandwidth limit unless
--rate) over several seeds, plus retransmission counters and the wall-clock
CPU cost of the simulation. A good TCP should need only a few RTTs more than
the lossless case, never seconds of RTO stalls.

    python bench/tcp_sim.py [--seeds 10] [--wire] [--rate BYTES_PER_S] [--only NAME]

A second measurement ("tcp_engine_cpu") is wall-clock: two connections joined by
an in-memory FIFO, one segment delivered at a time and each encoded and decoded
by the wire codec, so every data segment and ACK costs what it would in the
stack (minus IP). It bounds what the whole stack can reach in CPython.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smolmix_cli.netstack.socket.tcp.config import TcpConfig
from smolmix_cli.netstack.socket.tcp.sim import BulkSender, LinkParams, Reader, SimLink

# Mixnet-shaped: 0.8 s base RTT, exp(150 ms) per packet each way, 2% loss, with the
# settings a mixnet client would use (RTO floor 1 s, MSS for a 1240-byte IPR MTU).
MIXNET_CFG = {"rto_min": 1.0, "rto_initial": 3.0, "mss": 1200}
# The same with the tunnel's sparse ACK policy (TcpConfig.ack_every, tunnel/options.py):
# recovery must not suffer while the ACK count (each one a Nym message) falls.
MIXNET_ACK2 = {**MIXNET_CFG, "ack_every": 2}
MIXNET_ACK4 = {**MIXNET_CFG, "ack_every": 4}
MIXNET_LINK = LinkParams(one_way=0.4, exp_delay=0.15, loss=0.02)
LOSSY_LINK = LinkParams(one_way=0.4, exp_delay=0.15, loss=0.05)

# Nym's shaping at 50 ms per hop: 3 exponential mix delays each way (the uplink's Poisson
# slots and ACK coalescing left out), the local exit's sender (no Nagle, a 1 MiB send
# buffer as the origin's Linux TCP) and the tunnel's window: the seed's 64 KiB or the
# scaled 256 KiB (bench/interop.py --profile shaped measures the real thing).
SHAPED_LINK = LinkParams(one_way=0.03, exp_delay=0.05, exp_hops=3, rate=250e3)  # own rate
SHAPED_CFG = {"mss": 1368, "nagle": False, "send_buffer": 1 << 20, "recv_buffer": 65535}
SHAPED_256 = {**SHAPED_CFG, "recv_buffer": 256 << 10}

SCENARIOS: list[tuple[str, LinkParams, int, dict[str, float]]] = [
    ("lossless_1MiB", LinkParams(), 1 << 20, {}),
    ("loss1_1MiB", LinkParams(loss=0.01), 1 << 20, {}),
    ("loss5_1MiB", LinkParams(loss=0.05), 1 << 20, {}),
    ("exp20ms_256KiB", LinkParams(exp_delay=0.02), 256 << 10, {}),
    ("exp100ms_256KiB", LinkParams(exp_delay=0.1), 256 << 10, {}),
    ("mixnet_like_256KiB", MIXNET_LINK, 256 << 10, MIXNET_CFG),
    ("mixnet_like_256KiB_ack2", MIXNET_LINK, 256 << 10, MIXNET_ACK2),
    ("mixnet_like_256KiB_ack4", MIXNET_LINK, 256 << 10, MIXNET_ACK4),
    ("mixnet_loss5_256KiB", LOSSY_LINK, 256 << 10, MIXNET_CFG),
    ("mixnet_loss5_256KiB_ack2", LOSSY_LINK, 256 << 10, MIXNET_ACK2),
    ("mixnet_shaped_1MiB_64KiB", SHAPED_LINK, 1 << 20, SHAPED_CFG),
    ("mixnet_shaped_1MiB_256KiB", SHAPED_LINK, 1 << 20, SHAPED_256),
]


def run_one(
    params: LinkParams,
    size: int,
    seed: int,
    wire: bool,
    reverse: bool,
    overrides: dict[str, float],
) -> dict[str, float]:
    link = SimLink(params, seed=seed, wire=wire)
    cfg = TcpConfig(time_wait=1.0, **overrides)  # type: ignore[arg-type]
    a, b = link.connect(cfg, cfg)
    # Time the transfer, not the handshake (a lost SYN-ACK would add the 1 s initial RTO).
    link.run_until(lambda: a.is_established and b.is_established, 600.0)
    sender, receiver = (b, a) if reverse else (a, b)
    data = os.urandom(size)
    app_s = BulkSender(sender, data)
    app_r = Reader(receiver)
    link.add_app(app_s)
    link.add_app(app_r)
    t0 = link.now
    w0 = time.perf_counter()
    link.run_until(lambda: app_r.eof_at is not None, 600.0)
    wall = time.perf_counter() - w0
    if bytes(app_r.buf) != data:
        raise SystemExit(f"data mismatch at seed {seed}")
    assert app_r.eof_at is not None
    st = sender.stats
    return {
        "t": app_r.eof_at - t0,
        "wall": wall,
        "retrans": st.retransmits,
        "rto": st.rto_events,
        "tlp": st.tlp_probes,
        "recoveries": st.recoveries,
        "undos": st.undos,
        "segs_out": st.segments_out,
        "acks_out": receiver.stats.segments_out,
    }


def engine_cpu(size: int, wire: bool) -> dict[str, float]:
    """Wall-clock MB/s of TCP alone: segment-at-a-time FIFO, optional codec round trip."""
    from collections import deque

    from smolmix_cli.netstack.socket.tcp.connection import TcpConnection
    from smolmix_cli.netstack.socket.tcp.sim import A_END, B_END
    from smolmix_cli.netstack.wire.tcp import TcpSegment, decode_tcp, encode_tcp

    pseudo = b"\xc0\x00\x02\x01\xc0\x00\x02\x02\x00\x06\x00\x00"
    cfg = TcpConfig()
    now = 0.0
    a = TcpConnection.connect(A_END, B_END, cfg, now)
    b: TcpConnection | None = None
    fifo: deque[tuple[int, TcpSegment | bytes]] = deque()
    data = os.urandom(size)
    view = memoryview(data)
    pos = got = 0

    def push(dst: int, segs: list[TcpSegment]) -> None:
        for seg in segs:
            fifo.append((dst, encode_tcp(seg, pseudo) if wire else seg))

    t0 = time.perf_counter()
    push(1, a.poll_transmit(now))
    while got < size:
        now += 1e-5
        if pos < size and a.is_established:
            pos += a.send(view[pos : pos + 65536])
            push(1, a.poll_transmit(now))
        if not fifo:
            deadline = a.poll_deadline()
            if deadline is not None:
                now = max(now, deadline)
                a.handle_timeout(now)
                push(1, a.poll_transmit(now))
            continue
        dst, item = fifo.popleft()
        seg = decode_tcp(item, pseudo) if isinstance(item, bytes) else item
        if dst == 1:
            if b is None:
                b = TcpConnection.accept(seg, B_END, A_END, cfg, now)
            else:
                b.handle_segment(seg, now)
                got += len(b.recv(1 << 20))
            push(0, b.poll_transmit(now))
        else:
            a.handle_segment(seg, now)
            push(1, a.poll_transmit(now))
    wall = time.perf_counter() - t0
    assert b is not None
    return {
        "MBps": round(size / wall / 1e6, 1),
        "data_segments": a.stats.segments_out,
        "acks": b.stats.segments_out,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--wire", action="store_true", help="round-trip every segment via the codec")
    ap.add_argument("--rate", type=float, default=None, help="link rate, bytes/s per direction")
    ap.add_argument("--only", default=None)
    ap.add_argument("--reverse", action="store_true", help="send from the accepting side")
    ap.add_argument("--cpu-mib", type=int, default=16, help="size of the CPU measurement")
    args = ap.parse_args()
    if args.only is None or "cpu" in args.only:
        for wire in (False, True):
            res = engine_cpu(args.cpu_mib << 20, wire)
            print(json.dumps({"name": "tcp_engine_cpu", "wire_codec": wire, **res}), flush=True)
    for name, params, size, overrides in SCENARIOS:
        if args.only and args.only not in name:
            continue
        if args.rate is not None:
            params.rate = args.rate
        runs = [
            run_one(params, size, seed, args.wire, args.reverse, overrides)
            for seed in range(args.seeds)
        ]
        ts = sorted(r["t"] for r in runs)
        wall = sum(r["wall"] for r in runs)
        print(
            json.dumps(
                {
                    "name": f"tcp_sim.{name}",
                    "seeds": args.seeds,
                    "base_rtt_ms": params.one_way * 2000,
                    "exp_delay_ms": params.exp_delay * 1000,
                    "loss": params.loss,
                    "bytes": size,
                    "median_s": round(statistics.median(ts), 4),
                    "p90_s": round(ts[int(0.9 * (len(ts) - 1))], 4),
                    "max_s": round(ts[-1], 4),
                    "mean_retransmits": round(statistics.mean(r["retrans"] for r in runs), 1),
                    "mean_rto_events": round(statistics.mean(r["rto"] for r in runs), 2),
                    "mean_tlp_probes": round(statistics.mean(r["tlp"] for r in runs), 1),
                    "mean_undos": round(statistics.mean(r["undos"] for r in runs), 1),
                    "mean_segments_out": round(statistics.mean(r["segs_out"] for r in runs), 1),
                    "mean_receiver_acks": round(statistics.mean(r["acks_out"] for r in runs), 1),
                    "sim_cpu_MBps": round(size * len(runs) / wall / 1e6, 2),
                    "wire": args.wire,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
