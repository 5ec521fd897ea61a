"""Wall time of `smolmix fetch` on the local network (zero mix delay), beside the bare tunnel.

Starts `smolmix testnet up` in a subprocess, then for each size runs the real
CLI (`python -m smolmix_cli --network FILE fetch -sS -o /dev/null -w '%{json}' URL`,
so the figure includes interpreter start, imports and the tunnel boot) and, for
comparison, the same download in-process over the session factory's tunnel +
`HttpClient` (no CLI, no interpreter start).
Prints one JSON object per measurement. Run from the repository root:
    .venv/bin/python bench/fetch.py [--sizes 0,10485760] [--repeat 3] [--big-repeat 1]
Size 0 means the demo origin's small HTML page `/`.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from smolmix_cli.apps.http import FetchOptions, HttpClient  # noqa: E402
from smolmix_cli.config import load_network_file  # noqa: E402
from smolmix_cli.options import GlobalOptions  # noqa: E402
from smolmix_cli.session.factory import open_tunnel  # noqa: E402

SMOLMIX = (sys.executable, "-m", "smolmix_cli")
FETCH_ARGS = ("-sS", "-o", "/dev/null", "-w", "%{json}")


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def url_for(size: int) -> str:
    return "https://demo.smolmix.test/" + (f"bytes/{size}" if size else "")


def cli_fetch(network: Path, size: int) -> dict[str, object]:
    start = time.perf_counter()
    proc = subprocess.run(
        [*SMOLMIX, "--network", str(network), "fetch", *FETCH_ARGS, url_for(size)],
        capture_output=True,
        timeout=1800,
        cwd=REPO,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"fetch failed ({proc.returncode}): {proc.stderr.decode()}")
    record = json.loads(proc.stdout)
    return {
        "wall_seconds": round(wall, 3),
        "time_tunnel_seconds": record["time_tunnel"],
        "time_total_seconds": record["time_total"],
        "size_download_bytes": record["size_download"],
    }


async def tunnel_fetch(network_file: Path, size: int) -> dict[str, object]:
    network = load_network_file(network_file)
    start = time.perf_counter()
    received = 0

    async def sink(data: bytes) -> None:
        nonlocal received
        received += len(data)

    async with open_tunnel(GlobalOptions(), network=network) as session:
        ready = time.perf_counter() - start
        options = FetchOptions(cafile=session.cafile(None))
        async with HttpClient(session.tunnel) as client:
            transfer = await client.fetch(url_for(size), sink, options)
    return {
        "wall_seconds": round(time.perf_counter() - start, 3),
        "boot_seconds": round(ready, 3),
        "time_total_seconds": round(transfer.time_total, 3),
        "size_download_bytes": received,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0,10485760")
    parser.add_argument("--repeat", type=int, default=3, help="runs for bodies under 1 MiB")
    parser.add_argument("--big-repeat", type=int, default=1, help="runs for bodies of 1 MiB+")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "net"
        up = subprocess.Popen(
            [*SMOLMIX, "testnet", "up", "--dir", str(state), "--mix-delay-ms", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        network = state / "network.json"
        try:
            deadline = time.monotonic() + 30
            while not network.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            for size in sizes:
                runs = args.repeat if size < (1 << 20) else args.big_repeat
                for run in range(runs):
                    emit(
                        name="smolmix_fetch_cli",
                        size=size or "page",
                        run=run,
                        **cli_fetch(network, size),
                    )
                    emit(
                        name="tunnel_httpclient_in_process",
                        size=size or "page",
                        run=run,
                        **anyio.run(tunnel_fetch, network, size),
                    )
        finally:
            up.send_signal(signal.SIGTERM)
            up.wait(timeout=20)


if __name__ == "__main__":
    main()
