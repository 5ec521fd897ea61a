"""The official client and `smolmix fetch`, through the same local network, in one run.

One LocalNetwork (one exit, demo origin). First the official client
(npm @nymproject/mix-tunnel 0.2.1 in headless Chromium, tests/interop/driver.mjs)
sets up its tunnel and fetches the demo page and a 1 MiB file; the mix nodes
record the per-hop delays it chose. Then `smolmix fetch` does the same
transfers, with the network file's mean delay set to what the official client
used, so both see the same mixing. Times are per transfer (tunnel set-up apart)
and the ratios are smolmix / official. Prints JSON lines. Run from the repo root:
    .venv/bin/python bench/interop.py [--reps 3] [--smolmix-cmd 'python -m smolmix_cli']
Needs tests/interop/setup.sh (chromium, node_modules) and a smolmix with `fetch`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smolmix_cli.testnet.nodes.processing import Forward
from smolmix_cli.testnet.origin.http import bytes_sha256
from tests.interop.harness import BIG, interop_network, missing_prerequisites, run_driver


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class DelayObserver:
    """Mean per-hop delay of the packets the mix nodes forward (what senders chose)."""

    def __init__(self) -> None:
        self.total_ns = 0
        self.count = 0

    def wrap(self, schedule: Callable[[Forward], None]) -> Callable[[Forward], None]:
        def observed(forward: Forward) -> None:
            self.total_ns += forward.delay_ns
            self.count += 1
            schedule(forward)

        return observed

    def take_mean_ms(self) -> float:
        mean = self.total_ns / self.count / 1e6 if self.count else 0.0
        self.total_ns = self.count = 0
        return mean


async def smolmix_fetch(cmd: list[str], network_file: Path, url: str) -> dict[str, Any]:
    """One `smolmix fetch` process: curl's time_total, the process wall time, body sha256."""
    with tempfile.NamedTemporaryFile() as body:
        argv = [
            *cmd,
            "--network",
            str(network_file),
            "fetch",
            "-sS",
            "-o",
            body.name,
            "-w",
            "%{http_code} %{time_total} %{size_download}",
            url,
        ]
        t0 = time.perf_counter()
        done = await anyio.run_process(argv, check=False)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(
                f"smolmix fetch exit {done.returncode}: {done.stderr.decode()[-400:]}"
            )
        code, total, size = done.stdout.decode().split()
        digest = hashlib.sha256(Path(body.name).read_bytes()).hexdigest()
    return {
        "status": int(code),
        "time_total_s": float(total),
        "size_bytes": int(size),
        "wall_s": wall,
        "sha256": digest,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--smolmix-cmd", default=f"{sys.executable} -m smolmix_cli")
    args = parser.parse_args()
    reason = missing_prerequisites()
    if reason is not None:
        sys.exit(f"bench/interop.py: {reason}")
    cmd = shlex.split(args.smolmix_cmd)
    big_sha = bytes_sha256(BIG)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        async with interop_network(work / "net") as net:
            observer = DelayObserver()
            for node in net.local.mixnodes.values():
                node._schedule = observer.wrap(node._schedule)  # type: ignore[method-assign]
            demo = net.network.demo
            assert demo is not None
            page_url, big_url = f"http://{demo.zone}/", f"http://{demo.zone}/bytes/{BIG}"

            # the official client: one tunnel, reps x (page, 1 MiB)
            extra = []
            for rep in range(args.reps):
                extra.append({"name": f"page_{rep}", "url": page_url})
                extra.append({"name": f"big_{rep}", "url": big_url, "timeoutMs": 180000})
            cfg = net.driver_config(work / "console.log", stages=[], extraFetches=extra)
            lines = await run_driver(cfg, work / "driver.json", timeout=120 + 200 * args.reps)
            stages = {line["stage"]: line for line in lines}
            official_delay_ms = observer.take_mean_ms()
            ready = stages.get("ready", {})
            emit(name="official_ready", ok=bool(ready.get("ok")), ms=ready.get("ms"))
            official: dict[str, list[float]] = {"page": [], "big": []}
            for rep in range(args.reps):
                for kind in ("page", "big"):
                    line = stages.get(f"{kind}_{rep}", {})
                    ok = bool(line.get("ok")) and (kind == "page" or line.get("sha256") == big_sha)
                    emit(
                        name=f"official_fetch_{kind}",
                        rep=rep,
                        ok=ok,
                        time_s=line.get("fetch_ms", 0) / 1000,
                        size_bytes=line.get("length"),
                    )
                    if ok:
                        official[kind].append(line["fetch_ms"] / 1000)
            emit(name="official_mean_hop_delay", delay_ms=round(official_delay_ms, 2))

            # smolmix fetch, same network, the official client's mean delay in the network file
            data = json.loads(net.local.network_file.read_text())
            data["mean_delay_ms"] = round(official_delay_ms, 3)
            network_file = work / "network-bench.json"
            network_file.write_text(json.dumps(data))
            os.chmod(network_file, 0o600)
            ours: dict[str, list[float]] = {"page": [], "big": []}
            walls: dict[str, list[float]] = {"page": [], "big": []}
            for rep in range(args.reps):
                for kind, url in (("page", page_url), ("big", big_url)):
                    try:
                        r = await smolmix_fetch(cmd, network_file, url)
                    except (RuntimeError, ValueError) as exc:
                        emit(name=f"smolmix_fetch_{kind}", rep=rep, ok=False, error=str(exc))
                        continue
                    ok = r["status"] == 200 and (kind == "page" or r["sha256"] == big_sha)
                    emit(name=f"smolmix_fetch_{kind}", rep=rep, ok=ok, **r)
                    if ok:
                        ours[kind].append(r["time_total_s"])
                        walls[kind].append(r["wall_s"])
            emit(name="smolmix_mean_hop_delay", delay_ms=round(observer.take_mean_ms(), 2))
    for kind in ("page", "big"):
        if official[kind] and ours[kind]:
            o, s = statistics.median(official[kind]), statistics.median(ours[kind])
            emit(
                name=f"ratio_{kind}",
                official_median_s=round(o, 3),
                smolmix_median_s=round(s, 3),
                smolmix_wall_median_s=round(statistics.median(walls[kind]), 3),
                ratio_smolmix_over_official=round(s / o, 3),
            )


if __name__ == "__main__":
    anyio.run(main)
