"""Where an attached command's CPU goes: CPU and wall at each phase boundary of one process.

Runs the given smolmix command line N times, each in a fresh interpreter that marks
`time.process_time()` (CPU since the process started) and wall time at: the interpreter
up, the command line read (cli/fast_argv.py, as the console script does; a line it leaves
to click is marked "(click)" and includes click, the command table and fetch's click
command), fetch's body imported (cli/fetch_run.py: the settings parser and the output),
the blocking attach shell imported (h11, the session protocol), the
settings parsed (`run_attached` entered), the attach (`status`) started and done, the
first HTTP request started and done, and the exit. Prints one JSON object per boundary
(medians). It times the blocking attach path (cli/fetch_attached.py); a command that
falls back to the async engine shows no attach or request marks.
It needs a running session to attach to, e.g. on the local network:

    smolmix testnet up &  smolmix --network testnet session start
    .venv/bin/python bench/attach_phases.py --runs 10 -- \\
        --network testnet fetch -sS -o /dev/null https://demo.smolmix.test/

Wrapping is by attribute (`fetch_attached.run_attached`, `attach.attach`,
`BlockingHttpClient.fetch`), so this bench follows those names if they move.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHILD = "SMOLMIX_BENCH_PHASES_OUT"


def child(argv: list[str], out: str) -> None:
    """One command, with marks at the phase boundaries written to `out` at exit."""
    t0 = time.perf_counter()
    marks: list[tuple[str, float, float]] = []

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter() - t0, time.process_time()))

    mark("interpreter")  # and site, and this file's few stdlib imports (all smolmix's too)
    from smolmix_cli.cli import quick_start

    quick_start.pause()  # as the console script does (cli/quick_start.py)
    import atexit

    from smolmix_cli.cli import fast_argv

    plan = fast_argv.parse(argv, os.environ)  # as the console script does
    if plan is None:
        import smolmix_cli.cli.fetch
        import smolmix_cli.cli.main as main_module
    mark("command line read" if plan is not None else "command line read (click)")
    import smolmix_cli.cli.fetch_run  # noqa: F401

    mark("fetch body")
    import smolmix_cli.apps.http_blocking as http_blocking
    import smolmix_cli.cli.fetch_attached as fetch_attached
    import smolmix_cli.session.attach as attach_module

    mark("blocking shell")

    def wrap(owner: Any, attr: str, before: str, after: str | None) -> None:
        inner = getattr(owner, attr)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            mark(before)
            try:
                return inner(*args, **kwargs)
            finally:
                if after is not None:
                    mark(after)

        setattr(owner, attr, wrapped)

    wrap(fetch_attached, "run_attached", "settings parsed", None)
    wrap(attach_module, "attach", "attach start", "attach done")
    wrap(http_blocking.BlockingHttpClient, "fetch", "request start", "request done")

    def report() -> None:
        mark("exit")
        Path(out).write_text(json.dumps(marks))

    atexit.register(report)
    sys.argv = ["smolmix", *argv]
    if plan is not None:
        fast_argv.run(plan)
    main_module.main()


def main() -> None:
    import argparse
    import statistics
    import subprocess

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then smolmix's arguments")
    opts = parser.parse_args()
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = REPO / ".bench-phases.json"
    runs: list[list[tuple[str, float, float]]] = []
    try:
        for _ in range(opts.runs):
            done = subprocess.run(
                [sys.executable, __file__, *args],
                env={**env, CHILD: str(out)},
                cwd=REPO,
                capture_output=True,
                timeout=120,
            )
            if done.returncode != 0:
                raise SystemExit(f"{args} failed ({done.returncode}): {done.stderr.decode()}")
            runs.append(json.loads(out.read_text()))
    finally:
        out.unlink(missing_ok=True)
    previous = 0.0
    for index, (name, _, _) in enumerate(runs[0]):
        cpu = statistics.median(r[index][2] for r in runs if len(r) > index)
        wall = statistics.median(r[index][1] for r in runs if len(r) > index)
        fields = {"phase": name, "cpu_s": round(cpu, 4), "cpu_step_s": round(cpu - previous, 4)}
        print(json.dumps({**fields, "wall_since_main_s": round(wall, 4)}), flush=True)
        previous = cpu


if __name__ == "__main__":
    if CHILD in os.environ:
        sys.path.insert(0, str(REPO))
        child(sys.argv[1:], os.environ.pop(CHILD))
    else:
        main()
