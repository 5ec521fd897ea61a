"""Per-invocation wall time: `smolmix fetch` attached to a warm session vs curl through it.

Starts its own local network (zero mix delay by default, in a temp state dir), then times
whole processes as a script would run them: `smolmix --version`, `--help`, a small page
fetched in-process (`--no-session`), and the same page fetched attached to a running
session beside `curl --socks5-hostname` through that same session's SOCKS5 port, run after
run interleaved (so background load hits both alike). `--base DIR` adds another checkout
(with its own .venv and its own session) to the same interleaving, for before/after in one
run. Prints one JSON object per measurement (median, min, max in seconds; CPU median; for
the attached commands also the session daemon's CPU per command, read from /proc).

Every checkout is byte-compiled first and the commands run without PYTHONDONTWRITEBYTECODE,
as an installed package runs (pip writes the .pyc files): a run that compiles the project's
sources at every start measures the compiler, 0.04 s of CPU per command here.

    python bench/session.py [--runs N] [--mix-delay-ms MS] [--base DIR] [--https] [--installed]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def process_cpu(pid: int) -> float:
    """User + system seconds a running process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timed:
    """Wall and CPU seconds of whole child processes, one list per name; with `serving`,
    also the CPU that process (the session daemon) spent meanwhile."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.served: dict[str, list[float]] = {}

    def run(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, serving: int = 0
    ) -> None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        daemon = process_cpu(serving) if serving else 0.0
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=120)
        self.wall.setdefault(name, []).append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
        self.cpu.setdefault(name, []).append(cpu)
        if serving:
            self.served.setdefault(name, []).append(process_cpu(serving) - daemon)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()}")

    def report(self, name: str, **extra: object) -> None:
        times, cpu = self.wall[name], self.cpu[name]
        fields = {
            "name": name,
            "runs": len(times),
            "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4),
            "max_s": round(max(times), 4),
            "cpu_median_s": round(statistics.median(cpu), 4),
            **extra,
        }
        if name in self.served:  # clock ticks: a mean over the runs says more than a median
            fields["session_cpu_mean_s"] = round(statistics.fmean(self.served[name]), 4)
        print(json.dumps(fields), flush=True)


def python_of(repo: Path) -> str:
    venv = repo / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def install(checkout: Path, venv: Path) -> list[str]:
    """The checkout as `pip install` leaves it (wheel-built, .pyc written, no editable
    finder in site: that finder alone costs an editable venv's every start about 10 ms)."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", str(checkout)]
    subprocess.run(pip, check=True, capture_output=True)
    return [str(venv / "bin" / "smolmix")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--mix-delay-ms", type=float, default=0.0)
    parser.add_argument("--base", type=Path, help="another checkout (with .venv) to run beside")
    parser.add_argument("--https", action="store_true", help="fetch https:// (default http://)")
    parser.add_argument(
        "--installed",
        action="store_true",
        help="run each checkout as users do: `pip install` (not editable) into a fresh venv, "
        "through its `smolmix` script (about a minute per checkout to build)",
    )
    opts = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from smolmix_cli.network_select import running_network

    url = ("https" if opts.https else "http") + "://demo.smolmix.test/"
    base = Path(tempfile.mkdtemp(prefix="smx-bench-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOLMIX_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["XDG_STATE_HOME"] = str(base / "state")
    checkouts = {"this": REPO} | ({"base": opts.base.resolve()} if opts.base else {})
    for checkout in checkouts.values():
        compile_all = [python_of(checkout), "-m", "compileall", "-q", "smolmix_cli"]
        subprocess.run(compile_all, cwd=checkout, check=True, capture_output=True)
    programs = {
        name: install(checkout, base / f"venv-{name}")
        if opts.installed
        else [python_of(checkout), "-m", "smolmix_cli"]
        for name, checkout in checkouts.items()
    }
    envs = {}
    for name in checkouts:
        (base / f"run-{name}").mkdir(mode=0o700)
        envs[name] = {**env, "SMOLMIX_RUNTIME_DIR": str(base / f"run-{name}")}
    state = base / "state" / "smolmix" / "testnet"
    log = open(base / "testnet.log", "wb")  # noqa: SIM115
    up = ["testnet", "up", "--mix-delay-ms", str(opts.mix_delay_ms)]
    net = subprocess.Popen(
        [python_of(REPO), "-m", "smolmix_cli", *up],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    timed = Timed()

    daemons: dict[str, int] = {}
    """Each checkout's session daemon pid, once started."""

    def smolmix(name: str, label: str, *args: str) -> Callable[[], None]:
        argv = [*programs[name], *args]
        return lambda: timed.run(
            f"{label} ({name})", argv, envs[name], checkouts[name], daemons.get(name, 0)
        )

    try:
        deadline = time.monotonic() + 60
        while (network := running_network(state)) is None:
            if time.monotonic() > deadline or net.poll() is not None:
                raise SystemExit("the local network did not start")
            time.sleep(0.1)
        cafile = base / "ca.pem"
        cafile.write_text(network.ca_pem or "")
        common = ["--network", "testnet"]
        fetch = ["fetch", "-sS", "-o", "/dev/null", url]
        quick = [
            f(name, label, *args)
            for name in checkouts
            for f, label, args in (
                (smolmix, "smolmix --version", ["--version"]),
                (smolmix, "smolmix --help", ["--help"]),
            )
        ]
        for _ in range(opts.runs):
            for step in quick:
                step()
        for name in checkouts:
            for _ in range(max(3, opts.runs // 3)):
                smolmix(
                    name, "fetch, --no-session (boot in-process)", *common, "--no-session", *fetch
                )()
        for name in list(timed.wall):
            timed.report(name, mix_delay_ms=opts.mix_delay_ms)
        ports = {name: free_port() for name in checkouts}
        for name in checkouts:
            smolmix(name, "start", *common, "session", "start", "--socks5", str(ports[name]))()
            daemons[name] = int((base / f"run-{name}" / "testnet.pid").read_text())
        try:
            steps = []
            for name in checkouts:
                steps.append(smolmix(name, "fetch, attached to a warm session", *common, *fetch))
                curl = ["curl", "-sS", "-o", "/dev/null", "--cacert", str(cafile)]
                curl += ["--socks5-hostname", f"127.0.0.1:{ports[name]}", url]
                label = f"curl --socks5-hostname through the session ({name})"
                steps.append(
                    lambda c=curl, n=name, lb=label: timed.run(lb, c, envs[n], REPO, daemons[n])
                )
            for step in steps:  # warm-up: caches, the first connection
                step()
            timed.wall.clear()
            timed.cpu.clear()
            for _ in range(opts.runs):
                for step in steps:
                    step()
        finally:
            for name in checkouts:
                daemons.pop(name, None)  # it exits: nothing to read after
                with contextlib.suppress(SystemExit):
                    smolmix(name, "stop", *common, "session", "stop")()
        for name in checkouts:
            smolmix_s = statistics.median(timed.wall[f"fetch, attached to a warm session ({name})"])
            curl_s = statistics.median(
                timed.wall[f"curl --socks5-hostname through the session ({name})"]
            )
            for label in (
                "fetch, attached to a warm session",
                "curl --socks5-hostname through the session",
            ):
                timed.report(f"{label} ({name})", url=url, mix_delay_ms=opts.mix_delay_ms)
            print(
                json.dumps(
                    {
                        "name": f"attached fetch / curl ({name})",
                        "ratio": round(smolmix_s / curl_s, 2),
                    }
                ),
                flush=True,
            )
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(net.pid, signal.SIGTERM)
        net.wait(timeout=10)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
