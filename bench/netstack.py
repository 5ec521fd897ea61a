"""Userspace stack against kernel-to-kernel TCP through the same Python relay.

Baseline: two network namespaces, each with a TUN (MTU 1420, like the IPR
link); a Python relay between the two TUN fds applies the impairment; kernel
sockets in namespace A send to a listener in namespace B. Ours: two NetStacks
on in-memory links (queues of 500 packets that drop when full, like a TUN's
txqueuelen) through the same relay code, all in real time.

Prints one JSON object per measurement, then one per case and kernel congestion
control comparing the two. The kernel runs with the machine's default congestion
control (`net.ipv4.tcp_congestion_control`, BBR on this project's machines) and,
by default, also with cubic and reno: ours implements NewReno (RFC 5681/6582),
and BBR ignores random loss, so the loss cases compare congestion controllers as
much as stacks unless the kernel runs a loss-based one too.
Needs root (unshare -n, /dev/net/tun); without it only our stack is measured.

    python bench/netstack.py [--trials 3] [--quick] [--profile] [--kernel-cc default,cubic]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smolmix_cli.netstack.aio import run_stack
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.phy.memory import memory_link
from smolmix_cli.netstack.phy.tun import TunDevice
from tests.netstack.netns import Namespace, unavailable_reason
from tests.netstack.relay import Impairment, relay

MiB = 1 << 20
KiB = 1 << 10
MTU = 1420
QUEUE = 500
A, B = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
TIMEOUT = 120.0

# (name, bytes, impairment keyword arguments)
CASES: list[tuple[str, int, dict[str, float]]] = [
    ("lossless", 16 * MiB, {}),
    ("loss_1pct", 1 * MiB, {"loss": 0.01}),
    ("loss_5pct", 1 * MiB, {"loss": 0.05}),
    ("exp_delay_20ms", 256 * KiB, {"delay_mean": 0.02}),
    ("exp_delay_100ms", 256 * KiB, {"delay_mean": 0.1}),
]

_port = iter(range(30000, 40000))


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


async def ours(size: int, imp: dict[str, float], seed: int) -> float:
    """Seconds from connected to the receiver holding all `size` bytes."""
    a_dev, a_far = memory_link(QUEUE, drop_when_full=True)
    b_dev, b_far = memory_link(QUEUE, drop_when_full=True)
    sa, sb = NetStack([A], mtu=MTU), NetStack([B], mtu=MTU)
    data = random.Random(seed).randbytes(size)  # zeros would hit checksum.py's slow all-zero path
    port = next(_port)
    done = anyio.Event()
    result: dict[str, float] = {}
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                relay, a_far, b_far, Impairment(seed=seed, **imp), Impairment(seed=seed + 1, **imp)
            )
            async with run_stack(sa, a_dev) as ra, run_stack(sb, b_dev) as rb:
                listener = rb.listen_tcp(port)

                async def server() -> None:
                    stream = await listener.accept()
                    n = 0
                    while n < size:
                        n += len(await stream.receive())
                    result["end"] = time.perf_counter()
                    await stream.aclose()
                    done.set()

                tg.start_soon(server)
                client = await ra.connect_tcp(B, port)
                start = time.perf_counter()
                await client.send(data)
                await client.send_eof()
                await done.wait()
                await client.aclose()
            tg.cancel_scope.cancel()
    return result["end"] - start


def _tcp_socket(ns: Namespace, cc: str | None) -> socket.socket:
    sock = ns.socket(socket.AF_INET)
    if cc is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
    return sock


def default_congestion_control(ns: Namespace) -> str:
    """What a new kernel socket in `ns` uses (the namespace's sysctl default)."""
    with ns.socket(socket.AF_INET) as sock:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
    return raw.split(b"\0", 1)[0].decode()


def congestion_control_unavailable(ns: Namespace, cc: str) -> str | None:
    try:
        _tcp_socket(ns, cc).close()
    except OSError as exc:
        return f"kernel congestion control {cc!r} unavailable: {exc.strerror}"
    return None


async def kernel(
    ns_a: Namespace,
    ns_b: Namespace,
    size: int,
    imp: dict[str, float],
    seed: int,
    cc: str | None = None,
) -> float:
    data = random.Random(seed).randbytes(size)  # zeros would hit checksum.py's slow all-zero path
    port = next(_port)
    listener = _tcp_socket(ns_b, cc)  # accepted sockets inherit it
    listener.settimeout(TIMEOUT)
    listener.bind((str(B), port))
    listener.listen(1)
    result: dict[str, float] = {}

    def server() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            n = 0
            while n < size:
                chunk = conn.recv(1 << 18)
                if not chunk:
                    break
                n += len(chunk)
            result["end"] = time.perf_counter()
        listener.close()

    def client() -> None:
        c = _tcp_socket(ns_a, cc)
        c.settimeout(TIMEOUT)
        with c:
            c.connect((str(B), port))
            result["start"] = time.perf_counter()
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)
            while c.recv(4096):
                pass

    dev_a = TunDevice(ns_a.tun_fd, close_fd=False)
    dev_b = TunDevice(ns_b.tun_fd, close_fd=False)
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                relay, dev_a, dev_b, Impairment(seed=seed, **imp), Impairment(seed=seed + 1, **imp)
            )
            async with anyio.create_task_group() as inner:
                inner.start_soon(anyio.to_thread.run_sync, server)
                await anyio.to_thread.run_sync(client)
            tg.cancel_scope.cancel()
    return result["end"] - result["start"]


async def measure(
    stack: str,
    name: str,
    size: int,
    trials: int,
    run: Callable[[int], Awaitable[float]],
    extra: dict[str, Any] | None = None,
) -> float:
    times, cpus = [], []
    for seed in range(1, trials + 1):
        cpu0 = time.process_time()
        times.append(await run(seed))
        cpus.append(time.process_time() - cpu0)
    med = statistics.median(times)
    emit(
        {
            "name": f"netstack.{name}",
            "stack": stack,
            **(extra or {}),
            "size_bytes": size,
            "time_s_median": round(med, 4),
            "time_s_all": [round(t, 4) for t in times],
            "throughput_MB_s": round(size / med / 1e6, 2),
            # CPU seconds of this process per run (relay + our stacks; the kernel's TCP
            # work is not in it): steadier than wall time on a shared machine
            "process_cpu_s_median": round(statistics.median(cpus), 4),
        }
    )
    return med


async def main(args: argparse.Namespace) -> None:
    cases = [c for c in CASES if not args.cases or c[0] in args.cases.split(",")]
    if args.quick:
        cases = [(n, max(s // 4, 64 * KiB), i) for n, s, i in cases]
    reason = unavailable_reason()
    if reason is not None:
        emit({"name": "netstack.kernel_baseline", "skipped": reason})
    results: dict[str, dict[str, float]] = {}
    kernel_ccs: list[tuple[str, bool]] = []  # (name, is the machine's default)
    if reason is None:
        with (
            Namespace(v4=f"{A}/24", v6="fd00:e7a1::1/64", mtu=MTU) as ns_a,
            Namespace(v4=f"{B}/24", v6="fd00:e7a1::2/64", mtu=MTU) as ns_b,
        ):
            default_cc = default_congestion_control(ns_a)
            for want in args.kernel_cc.split(","):
                cc = default_cc if want == "default" else want
                if not cc or any(cc == seen for seen, _ in kernel_ccs):
                    continue
                why = congestion_control_unavailable(ns_a, cc)
                if why is not None:
                    emit(
                        {
                            "name": "netstack.kernel_baseline",
                            "congestion_control": cc,
                            "skipped": why,
                        }
                    )
                    continue
                kernel_ccs.append((cc, cc == default_cc))
            for cc, is_default in kernel_ccs:
                for name, size, imp in cases:
                    results.setdefault(name, {})[f"kernel:{cc}"] = await measure(
                        "kernel",
                        name,
                        size,
                        args.trials,
                        lambda seed, s=size, i=imp, c=cc: kernel(ns_a, ns_b, s, i, seed, c),  # type: ignore[misc]
                        {"congestion_control": cc, "machine_default": is_default},
                    )
    for name, size, imp in cases:
        results.setdefault(name, {})["ours"] = await measure(
            "ours",
            name,
            size,
            args.trials,
            lambda seed, s=size, i=imp: ours(s, i, seed),  # type: ignore[misc]
            {"congestion_control": "newreno"},
        )
    for name, r in results.items():
        for cc, is_default in kernel_ccs:
            emit(
                {
                    "name": f"netstack.{name}.ratio",
                    "kernel_congestion_control": cc,
                    "machine_default": is_default,
                    "ours_over_kernel_time": round(r["ours"] / r[f"kernel:{cc}"], 2),
                }
            )
    if args.profile:
        prof = cProfile.Profile()
        size = 8 * MiB
        prof.enable()
        t = await ours(size, {}, 1)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue(), file=sys.stderr)
        emit({"name": "netstack.lossless.profiled", "time_s": round(t, 4), "size_bytes": size})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=3, help="runs per case (median reported)")
    parser.add_argument("--quick", action="store_true", help="quarter-size transfers")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile our lossless path (stderr)"
    )
    parser.add_argument("--cases", default="", help="comma-separated subset of case names")
    parser.add_argument(
        "--kernel-cc",
        default="default,cubic,reno",
        help="kernel congestion controls to measure, comma-separated ('default' = the sysctl's)",
    )
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parsed = parser.parse_args()
    anyio.run(main, parsed, backend=parsed.backend)
