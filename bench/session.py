"""Per-invocation wall time: `smolmix fetch` attached to a warm session vs `--no-session`.

Starts its own local network (zero mix delay, in a temp state dir), then times
whole `smolmix` processes as a script would run them: `--version`, `fetch` of
a small page in-process (`--no-session`), and the same `fetch` attached to a
running session. Prints one JSON object per measurement (median, min, max in
seconds over the runs).

    python bench/session.py [--runs N] [--mix-delay-ms MS]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
URL = "http://demo.smolmix.test/"


CPU: list[float] = []  # user+system CPU seconds of each timed child, in order


def timed(args: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    CPU.clear()
    for _ in range(runs):
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "smolmix_cli", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            timeout=120,
        )
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        CPU.append(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"{args} failed ({done.returncode}): {done.stderr.decode()}")
    return times


def report(name: str, times: list[float], **extra: object) -> None:
    print(
        json.dumps(
            {
                "name": name,
                "runs": len(times),
                "median_s": round(statistics.median(times), 4),
                "min_s": round(min(times), 4),
                "max_s": round(max(times), 4),
                "cpu_median_s": round(statistics.median(CPU), 4) if CPU else None,
                **extra,
            }
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--mix-delay-ms", type=float, default=0.0)
    opts = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from smolmix_cli.network_select import running_network

    base = Path(tempfile.mkdtemp(prefix="smx-bench-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOLMIX_")}
    env["XDG_STATE_HOME"] = str(base / "state")
    env["SMOLMIX_RUNTIME_DIR"] = str(base / "run")
    state = base / "state" / "smolmix" / "testnet"
    log = open(base / "testnet.log", "wb")  # noqa: SIM115
    net = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smolmix_cli",
            "testnet",
            "up",
            "--mix-delay-ms",
            str(opts.mix_delay_ms),
        ],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while running_network(state) is None:
            if time.monotonic() > deadline or net.poll() is not None:
                raise SystemExit("the local network did not start")
            time.sleep(0.1)
        common = ["--network", "testnet"]
        fetch = ["fetch", "-sS", "-o", "/dev/null", URL]
        report("smolmix --version", timed(["--version"], env, opts.runs))
        report("smolmix --help", timed(["--help"], env, opts.runs))
        report(
            "fetch small page, --no-session (boot in-process)",
            timed([*common, "--no-session", *fetch], env, opts.runs),
            mix_delay_ms=opts.mix_delay_ms,
        )
        timed([*common, "session", "start"], env, 1)
        try:
            report(
                "fetch small page, attached to a warm session",
                timed([*common, *fetch], env, opts.runs),
                mix_delay_ms=opts.mix_delay_ms,
            )
        finally:
            timed([*common, "session", "stop"], env, 1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(net.pid, signal.SIGTERM)
        net.wait(timeout=10)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
