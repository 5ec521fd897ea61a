"""Cold-boot times of `smolmix fetch` on one local network shape: the distribution users feel.

Starts `smolmix testnet up --shape SHAPE --mix-delay-ms D` (default 0) in a private state
dir, then runs `--runs` consecutive cold fetches of the demo page: each one a
new process with no session and ephemeral keys (the CLI keeps none), so it reads
the directory, chooses and registers with an entry gateway and finds an exit
from scratch, as a first fetch on mainnet does. One JSON line per fetch (exit
code, wall and CPU seconds, the command's own `time_tunnel`, the exit used),
then a summary line: successes, p50/p90/max of the boot time, CPU per fetch.

Usage: python bench/boot_times.py [--shape lab|mainnet] [--runs 50] [--up-arg=--fault ...]
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FETCH_TIMEOUT = 120.0  # beyond the default boot budget (90 s): a hang is recorded, not waited out


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is one real run)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def start_network(
    base: Path, env: dict[str, str], shape: str, delay_ms: float, extra: list[str]
) -> subprocess.Popen[bytes]:
    words = ["testnet", "up", "--dir", str(base / "net"), "--mix-delay-ms", str(delay_ms)]
    if shape != "lab":
        words += ["--shape", shape]
    network = subprocess.Popen(
        [sys.executable, "-m", "smolmix_cli", *words, *extra],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not (base / "net" / "network.json").exists():
        if time.monotonic() > deadline or network.poll() is not None:
            raise SystemExit(f"the local network ({shape}) did not start")
        time.sleep(0.1)
    return network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="lab")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--mix-delay-ms", type=float, default=0.0)
    parser.add_argument("--url", default="http://demo.smolmix.test/")
    parser.add_argument("--up-arg", action="append", default=[], help="passed to testnet up")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="smolmix-boot-"))
    env = dict(os.environ, XDG_STATE_HOME=str(base / "state"), XDG_DATA_HOME=str(base / "data"))
    env["SMOLMIX_RUNTIME_DIR"] = str(base / "run")
    for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION"):
        env.pop(name, None)
    network = start_network(base, env, args.shape, args.mix_delay_ms, args.up_arg)
    network_file = base / "net" / "network.json"
    boots: list[float] = []
    cpus: list[float] = []
    walls: list[float] = []
    failures = 0
    try:
        for number in range(1, args.runs + 1):
            words = ["--network", str(network_file), "--no-session", "fetch", "-sS"]
            words += ["-o", "/dev/null", "-w", "%{json}", args.url]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "smolmix_cli", *words],
                    env=env,
                    cwd=REPO,
                    capture_output=True,
                    timeout=FETCH_TIMEOUT,
                )
                code, out, err = done.returncode, done.stdout, done.stderr
            except subprocess.TimeoutExpired as exc:
                code, out, err = -1, exc.stdout or b"", b"killed after %ds" % FETCH_TIMEOUT
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            row: dict[str, object] = {
                "shape": args.shape,
                "mix_delay_ms": args.mix_delay_ms,
                "run": number,
                "exit_code": code,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
            }
            try:
                record = json.loads(out)
                row["time_tunnel_s"] = float(record["time_tunnel"])
                row["exit"] = record.get("exit_gateway")
            except (ValueError, KeyError, TypeError):
                pass
            if code == 0 and "time_tunnel_s" in row:
                boots.append(float(row["time_tunnel_s"]))  # type: ignore[arg-type]
                cpus.append(cpu)
                walls.append(wall)
            else:
                failures += 1
                row["stderr"] = err.decode(errors="replace").strip()[-300:]
            print(json.dumps(row), flush=True)
    finally:
        os.killpg(network.pid, signal.SIGTERM)
        network.wait(timeout=30)
    summary: dict[str, object] = {
        "shape": args.shape,
        "mix_delay_ms": args.mix_delay_ms,
        "summary": True,
        "runs": args.runs,
        "succeeded": args.runs - failures,
    }
    if boots:
        summary |= {
            "boot_p50_s": round(percentile(boots, 0.5), 3),
            "boot_p90_s": round(percentile(boots, 0.9), 3),
            "boot_max_s": round(max(boots), 3),
            "wall_max_s": round(max(walls), 3),
            "cpu_median_s": round(statistics.median(cpus), 3),
        }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
