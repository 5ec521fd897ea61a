"""Two checkouts' `smolmix fetch`, side by side in one run, against one local network.

For judging a change by what users feel: the same CLI commands from an old and a
new checkout (each with its own .venv), interleaved (old-new, then new-old) so
machine noise lands on both, against one `testnet up` (zero mix delay) started
from the new checkout. Per case it prints one JSON line per checkout with the
medians of wall time, the CPU seconds of the command's process (user + sys,
from getrusage of the children), and the command's own `time_total` and
`time_tunnel` (`-w '%{json}'`). `--version` shows interpreter and import cost.

`--uploads` adds PUTs of that many bytes to the origin's `/upload` (`fetch -T`). For
every transfer the network's node counters give the Sphinx packets each way: `up` is
what the client handed its entry gateway, `down` what the exit IPR handed the exit
gateway (its replies); SURB-ACKs travel inside those and are not counted. Per MiB
figures (CPU, packets) are over the body size; `floor` is the packets one MiB needs
at one fragment's capacity (1 MiB / 1,604 bytes = 654). Both checkouts are byte-compiled
first (`compileall`) and PYTHONDONTWRITEBYTECODE is dropped, as for an installed wheel
(before, a checkout without `__pycache__` compiled its sources in every command).

`--own-networks` starts one network per checkout, each checkout's commands against
its own: for changes to the exit IPR or the nodes, which a shared network would give
both sides (the default shares one, from the new checkout, as client changes need).

Usage: python bench/fetch_sides.py --old ../base-checkout [--new .] [--runs 5]
           [--sizes 0,4194304] [--uploads 1048576] [--own-networks]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FLOOR_PER_MIB = -(-(1 << 20) // 1604)  # one fragment's bytes (regular packet, unlinked)


def blob(size: int) -> Path:
    path = Path(tempfile.gettempdir()) / f"smolmix-sides-{size}.bin"
    if not path.exists() or path.stat().st_size != size:
        path.write_bytes(os.urandom(size))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="a checkout with its own .venv")
    parser.add_argument("--new", type=Path, default=REPO)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="0,4194304", help="0 = the demo page /")
    parser.add_argument("--uploads", default="", help="PUT sizes in bytes, e.g. 1048576")
    parser.add_argument("--skip-version", action="store_true")
    parser.add_argument(
        "--own-networks", action="store_true", help="one network per checkout (exit changes)"
    )
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    sizes = [int(s) for s in args.sizes.split(",") if s]
    uploads = [int(s) for s in args.uploads.split(",") if s]
    base = Path(tempfile.mkdtemp(prefix="smolmix-sides-"))
    env = dict(os.environ, XDG_STATE_HOME=str(base / "state"), XDG_DATA_HOME=str(base / "data"))
    env["SMOLMIX_RUNTIME_DIR"] = str(base / "run")
    for name in ("SMOLMIX_NETWORK", "SMOLMIX_SESSION", "SMOLMIX_NO_SESSION"):
        env.pop(name, None)
    # An installed wheel has its bytecode; without it every command compiles the sources
    # it imports (about 0.1 s of CPU here), which users never pay.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for tree in trees.values():
        subprocess.run(
            [str(tree / ".venv" / "bin" / "python"), "-m", "compileall", "-q", "smolmix_cli"],
            cwd=tree,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def python(tree: str) -> str:
        return str(trees[tree] / ".venv" / "bin" / "python")

    def start_network(tree: str) -> tuple[subprocess.Popen[bytes], Path]:
        net_dir = base / f"net-{tree}"
        process = subprocess.Popen(
            [
                *(python(tree), "-m", "smolmix_cli", "testnet", "up"),
                "--dir",
                str(net_dir),
                "--mix-delay-ms",
                "0",
            ],
            env=env,
            cwd=trees[tree],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return process, net_dir

    networks = {"new": start_network("new")}
    networks["old"] = start_network("old") if args.own_networks else networks["new"]
    deadline = time.monotonic() + 60
    for process, net_dir in networks.values():
        while not (net_dir / "network.json").exists():
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the local network did not start")
            time.sleep(0.1)

    def counters(tree: str) -> tuple[int, int]:
        done = subprocess.run(
            [
                *(python(tree), "-m", "smolmix_cli", "testnet", "status", "--json"),
                "--dir",
                str(networks[tree][1]),
            ],
            env=env,
            cwd=trees[tree],
            capture_output=True,
            check=True,
        )
        nodes = {n["role"]: n["counters"] for n in json.loads(done.stdout)["nodes"]}
        return nodes["entry"]["client_packets"], nodes["exit"]["client_packets"]

    def run(tree: str, words: list[str]) -> tuple[float, float, bytes]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [python(tree), "-m", "smolmix_cli", *words],
            env=env,
            cwd=trees[tree],
            capture_output=True,
            timeout=900,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"{tree}: {' '.join(words)} exited {done.returncode}: {done.stderr!r}")
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return wall, cpu, done.stdout

    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for i in range(args.runs):
            for tree in ("old", "new") if i % 2 == 0 else ("new", "old"):
                if not args.skip_version:
                    wall, cpu, _ = run(tree, ["--version"])
                    rows.setdefault(("version", tree), []).append({"wall": wall, "cpu": cpu})
                cases = [(f"fetch {n}", n, []) for n in sizes]
                cases += [(f"upload {n}", n, ["-T", str(blob(n))]) for n in uploads]
                for case, size, extra in cases:
                    if extra:
                        url = "https://demo.smolmix.test/upload"
                    else:
                        url = "https://demo.smolmix.test/" + (f"bytes/{size}" if size else "")
                    network_file = networks[tree][1] / "network.json"
                    words = ["--network", str(network_file), "--no-session", "fetch", "-sS"]
                    up0, down0 = counters(tree)
                    wall, cpu, out = run(
                        tree, [*words, *extra, "-o", "/dev/null", "-w", "%{json}", url]
                    )
                    up1, down1 = counters(tree)
                    record = json.loads(out)
                    sample = {
                        "wall": wall,
                        "cpu": cpu,
                        "time_total": float(record["time_total"]),
                        "time_tunnel": float(record["time_tunnel"]),
                        "packets_up": up1 - up0,
                        "packets_down": down1 - down0,
                    }
                    if size >= 1 << 20:
                        mib = size / (1 << 20)
                        sample["cpu_per_mib"] = cpu / mib
                        sample["packets_up_per_mib"] = (up1 - up0) / mib
                        sample["packets_down_per_mib"] = (down1 - down0) / mib
                    rows.setdefault((case, tree), []).append(sample)
    finally:
        for process, _ in {id(n): n for n in networks.values()}.values():
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    for (case, tree), samples in rows.items():
        line: dict[str, object] = {"case": case, "tree": tree, "runs": len(samples)}
        for key in samples[0]:
            unit = "_s" if key in ("wall", "cpu", "time_total", "time_tunnel") else ""
            value = statistics.median(s[key] for s in samples)
            line[f"{key}_median{unit}"] = round(value, 3)
        if case.split()[0] in ("fetch", "upload") and int(case.split()[1]) >= 1 << 20:
            line["floor_packets_per_mib"] = FLOOR_PER_MIB
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
