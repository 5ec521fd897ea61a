"""The local network's CPU per MiB, and `smolmix fetch` through it, in one process against N.

For each network layout (`testnet up --processes P`, zero mix delay; `node` = one process
per node and exit IPR, plus the main one) the bench starts the network, runs the real CLI
(`smolmix --network FILE --no-session fetch -sS -o /dev/null URL`) for each size, and stops
it again with SIGTERM to the main process (as `testnet down` does), checking that no worker
outlives it. Layouts are interleaved round by round (1, N, then N, 1) so machine noise lands
on all of them. Per fetch it prints one JSON line: wall time, the client's CPU (getrusage of
the finished child), the network's CPU over the fetch (utime + stime of every process of the
network from /proc/PID/stat, before and after) and both per MiB of body, plus the CPU of
each network process with the nodes it runs (in the `node` layout: a per-node breakdown),
the busiest network process's CPU over the wall time (near 1: that process is the limit),
the seconds the network's processes waited for a CPU (/proc/PID/schedstat), the load, and
the Sphinx packets per MiB (client to entry gateway, exit IPR to exit gateway, hops through
mix nodes, SURB-ACKs included) from the network's status endpoint.
A `ready` line per start gives the seconds until the network file appeared and the CPU
all its processes had spent by then. The checkout is byte-compiled first, as for an installed wheel. Run from the repository root:
    .venv/bin/python bench/network_cpu.py [--processes 1,2,node] [--sizes 1048576,10485760]
        [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from smolmix_cli.config import load_network_file  # noqa: E402

SMOLMIX = (sys.executable, "-m", "smolmix_cli")
TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def process_cpu(pid: int) -> float:
    """utime + stime of a live process, in seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14, 15 of proc(5)


def run_queue_wait(pid: int) -> float:
    """Seconds a live process waited for a CPU (/proc/PID/schedstat; 0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def node_processes(nodes: int, exits: int) -> int:
    """The --processes that gives every node and exit IPR its own (plus the main one)."""
    gateways = 1 + exits  # the lab shape: one entry gateway, `exits` exit gateways
    return nodes + gateways + exits + 1


class Network:
    """`testnet up` in a subprocess; `processes` from its network file once it runs."""

    def __init__(self, base: Path, env: dict[str, str], processes: int) -> None:
        self.dir = base / f"net-{processes}"
        self.env = env
        words = ["testnet", "up", "--dir", str(self.dir), "--mix-delay-ms", "0"]
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            [*SMOLMIX, *words, "--processes", str(processes)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.file = self.dir / "network.json"
        deadline = time.monotonic() + 60
        while not self.file.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"the local network ({processes} processes) did not start")
            time.sleep(0.05)
        self.ready_s = time.perf_counter() - start
        time.sleep(0.2)  # the file is written whole, but give the writer its close
        self.processes: list[dict[str, Any]] = json.loads(self.file.read_text())["processes"]
        self.ready_cpu_s = sum(self.cpu())  # what starting cost, every process together
        network = load_network_file(self.file)
        self.status_url, self.tls = network.status_url, network.ssl_context()

    def packets(self) -> dict[str, int]:
        """Sphinx packets so far: client to entry gateway, exit IPR to its gateway, mix hops."""
        assert self.status_url is not None
        with urllib.request.urlopen(self.status_url, context=self.tls, timeout=30) as answer:
            nodes = json.load(answer)["nodes"]
        by_role = {n["role"]: n["counters"] for n in nodes}
        mix = [n["counters"].get("received", 0) for n in nodes if n["role"] == "mixnode"]
        return {
            "up": by_role["entry"]["client_packets"],
            "down": by_role["exit"]["client_packets"],
            "mix_hops": sum(mix),
        }

    def cpu(self) -> list[float]:
        return [process_cpu(p["pid"]) for p in self.processes]

    def waited(self) -> float:
        return sum(run_queue_wait(p["pid"]) for p in self.processes)

    def stop(self) -> bool:
        """SIGTERM to the main process, as `testnet down`; True if no process was left."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while any(alive(p["pid"]) for p in self.processes) and time.monotonic() < deadline:
            time.sleep(0.05)
        return not any(alive(p["pid"]) for p in self.processes)


def fetch(network: Network, size: int) -> dict[str, Any]:
    url = f"https://demo.smolmix.test/bytes/{size}"
    words = ["--network", str(network.file), "--no-session", "fetch", "-sS", "-o", "/dev/null"]
    packets_before = network.packets()
    net_before, waited_before, load_before = network.cpu(), network.waited(), os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [*SMOLMIX, *words, "-w", "%{json}", url],
        env=network.env,
        cwd=REPO,
        capture_output=True,
        timeout=900,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    net_after, waited = network.cpu(), network.waited() - waited_before
    packets = {k: v - packets_before[k] for k, v in network.packets().items()}
    if done.returncode != 0:
        raise SystemExit(f"fetch {size} exited {done.returncode}: {done.stderr!r}")
    client = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    per_process = [a - b for a, b in zip(net_after, net_before, strict=True)]
    mib = size / MIB
    return {
        "wall_s": round(wall, 3),
        "time_total_s": float(json.loads(done.stdout)["time_total"]),
        "client_cpu_s": round(client, 3),
        "client_cpu_per_mib_s": round(client / mib, 3),
        "network_cpu_s": round(sum(per_process), 3),
        "network_cpu_per_mib_s": round(sum(per_process) / mib, 3),
        # how busy the network's busiest process was, and how long its processes sat
        # runnable without a CPU (the machine's other load shows here)
        "busiest_process_share": round(max(per_process) / wall, 3),
        "network_run_queue_s": round(waited, 3),
        "load_1min": round((load_before + os.getloadavg()[0]) / 2, 2),
        # more packets per MiB = resends (acks that came late when the network lagged)
        **{f"packets_{k}_per_mib": round(v / mib) for k, v in packets.items()},
        "per_process": [
            {"runs": p["runs"], "cpu_s": round(c, 3), "cpu_per_mib_s": round(c / mib, 3)}
            for p, c in zip(network.processes, per_process, strict=True)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2,node", help="layouts; node = one each")
    parser.add_argument("--sizes", default=f"{MIB},{10 * MIB}", help="body sizes in bytes")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    layouts = [node_processes(3, 1) if p == "node" else int(p) for p in args.processes.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(tempfile.mkdtemp(prefix="smolmix-netcpu-"))
    env = dict(os.environ, XDG_STATE_HOME=str(base / "state"), XDG_DATA_HOME=str(base / "data"))
    env["SMOLMIX_RUNTIME_DIR"] = str(base / "run")
    for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION", "SMOLMIX_NO_SESSION"):
        env.pop(name, None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "smolmix_cli"],
        cwd=REPO,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    rows: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for round_ in range(args.rounds):
        for processes in layouts if round_ % 2 == 0 else layouts[::-1]:
            network = Network(base, env, processes)
            ready = {"ready_s": round(network.ready_s, 3), "cpu_s": round(network.ready_cpu_s, 3)}
            emit({"name": "ready", "processes": processes, **ready})
            try:
                for size in sizes:
                    record = fetch(network, size)
                    rows.setdefault((processes, size), []).append(record)
                    emit({"name": "fetch", "processes": processes, "size": size, **record})
            finally:
                clean = network.stop()
            emit({"name": "stopped", "processes": processes, "no_stray_processes": clean})
    for (processes, size), samples in sorted(rows.items()):
        summary: dict[str, Any] = {"name": "median", "processes": processes, "size": size}
        for key in samples[0]:
            if key != "per_process":
                summary[key] = round(statistics.median(s[key] for s in samples), 3)
        summary["runs"] = len(samples)
        emit(summary)


if __name__ == "__main__":
    main()
