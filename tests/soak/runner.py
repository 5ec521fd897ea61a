"""A long mixed workload through one background session, with the memory of every process sampled.

`testnet up` (lab shape, no mix delay) runs in its own process and `smolmix session start` in
another; the workload is the real CLI, one command at a time, in a seeded mix of small fetches,
`/bytes/N` fetches checked by sha256, WebSocket echoes and DNS lookups. A sampler thread reads
VmRSS from /proc for the network and the session daemon every few seconds. Every sample and
every failed operation is one JSON line, so the curve can be plotted and published
(bench/soak.py runs the same workload outside pytest).

Memory tracing: with `trace_dir` set, both processes start with tracemalloc (tests/soak/trace/
sitecustomize.py, put on PYTHONPATH for them alone) and write a snapshot there on SIGUSR2;
`snapshot()` asks for one and `tests/soak/trace_diff.py` compares two.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from smolmix_cli.testnet.origin.http import bytes_sha256

REPO = Path(__file__).resolve().parents[2]
TRACE_HOOK = Path(__file__).resolve().parent / "trace"
SMOLMIX = (sys.executable, "-m", "smolmix_cli")
ORIGIN = "demo.smolmix.test"
ORIGIN_IPV4 = "198.18.0.1"
BYTES_SIZES = (1_000, 16_384, 65_536, 262_144)
# Share of each kind of operation in the mix (seeded, so two runs do the same sequence).
MIX = (("fetch", 3), ("bytes", 3), ("ws", 2), ("resolve", 2))
OP_TIMEOUT = 60.0  # one CLI command; the fetch itself has -m 45


def rss_kb(pid: int) -> int | None:
    """VmRSS of `pid` in KiB, None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Op:
    kind: str
    argv: tuple[str, ...]
    stdin: bytes | None
    check: Callable[[bytes], str | None]  # stdout -> None, or why it is wrong


def _expect(text: bytes) -> Callable[[bytes], str | None]:
    return lambda out: None if text in out else f"{text!r} not in {out[:120]!r}"


def _digest(n: int) -> Callable[[bytes], str | None]:
    want = bytes_sha256(n)

    def check(out: bytes) -> str | None:
        got = hashlib.sha256(out).hexdigest()
        return None if got == want and len(out) == n else f"{len(out)} bytes, sha256 {got}"

    return check


def next_op(rng: random.Random) -> Op:
    kinds = [k for k, w in MIX for _ in range(w)]
    kind = rng.choice(kinds)
    if kind == "fetch":
        argv = ("fetch", "-sS", "-m", "45", f"http://{ORIGIN}/")
        return Op(kind, argv, None, _expect(b"It works."))
    if kind == "bytes":
        n = rng.choice(BYTES_SIZES)
        return Op(
            kind, ("fetch", "-sS", "-m", "45", f"http://{ORIGIN}/bytes/{n}"), None, _digest(n)
        )
    if kind == "ws":
        line = f"soak-{rng.getrandbits(64):016x}".encode()
        return Op(kind, ("ws", "-1", f"ws://{ORIGIN}:8080/"), line + b"\n", _expect(line))
    return Op(kind, ("resolve", ORIGIN, "+short"), None, _expect(ORIGIN_IPV4.encode()))


@dataclass
class Sample:
    t: float
    ops: int
    network_kb: int | None
    session_kb: int | None
    # Sphinx packets the least busy mix node has processed: its replay cache holds that many
    # tags, up to the cache's capacity (docs/local-network.md), so the network's growth is
    # only a leak once this is past it.
    mix_received_min: int | None = None


@dataclass
class Soak:
    """One network, one session, the workload, the samples. Use as a context manager."""

    seconds: float
    out: IO[str] | None = None  # JSON lines
    sample_every: float = 5.0
    seed: int = 20
    trace_dir: Path | None = None
    replay_capacity: int | None = None  # `testnet up --replay-capacity`; None: the default
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="smx-soak-")))
    samples: list[Sample] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    ops: int = 0
    network: subprocess.Popen[bytes] | None = None
    session_pid: int | None = None
    _start: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMOLMIX_")}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
            env.pop(name, None)
        env["XDG_STATE_HOME"] = str(self.base / "state")
        env["SMOLMIX_RUNTIME_DIR"] = str(self.base / "run")
        self.env = env
        self.state = self.base / "state" / "smolmix" / "testnet"

    # -- processes -------------------------------------------------------------------------

    def _traced_env(self) -> dict[str, str]:
        if self.trace_dir is None:
            return self.env
        self.trace_dir.mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join([str(TRACE_HOOK), str(REPO)])
        return {**self.env, "PYTHONPATH": path, "SMOLMIX_SOAK_TRACE": str(self.trace_dir)}

    def _replay_option(self) -> list[str]:
        if self.replay_capacity is None:
            return []
        return ["--replay-capacity", str(self.replay_capacity)]

    def cli(
        self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*SMOLMIX, "--network", "testnet", *args],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=OP_TIMEOUT,
            env=env or self.env,
            cwd=REPO,
        )

    def __enter__(self) -> Soak:
        from smolmix_cli.network_select import running_network

        log = open(self.base / "testnet.log", "ab")
        self.network = subprocess.Popen(
            [*SMOLMIX, "testnet", "up", "--mix-delay-ms", "0", *self._replay_option()],
            env=self._traced_env(),
            cwd=REPO,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        try:
            deadline = time.monotonic() + 60
            while running_network(self.state) is None:
                if time.monotonic() > deadline or self.network.poll() is not None:
                    raise RuntimeError((self.base / "testnet.log").read_text())
                time.sleep(0.1)
            started = self.cli("session", "start", "--idle-timeout", "0", env=self._traced_env())
            if started.returncode != 0:
                raise RuntimeError(started.stderr.decode(errors="replace"))
            status = json.loads(self.cli("session", "status", "--json").stdout)
            self.session_pid = int(status["pid"])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self.cli("session", "stop")
        if self.session_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.session_pid, signal.SIGKILL)
        if self.network is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.network.pid, signal.SIGTERM)
            try:
                self.network.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.network.pid, signal.SIGKILL)
                self.network.wait()
        if self.trace_dir is None:
            shutil.rmtree(self.base, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        assert self.network is not None and self.session_pid is not None
        return {"network": self.network.pid, "session": self.session_pid}

    def snapshot(self, label: str) -> None:
        """Ask both processes for a census (`<label>-<name>.census.json`, and `.tracemalloc`)."""
        assert self.trace_dir is not None
        for name, pid in self.pids().items():
            request = self.trace_dir / f"{pid}.next"
            request.write_text(f"{label}-{name}")
            target = self.trace_dir / f"{label}-{name}.census.json"
            os.kill(pid, signal.SIGUSR2)
            deadline = time.monotonic() + 120
            while not target.exists() and time.monotonic() < deadline:
                time.sleep(0.2)

    # -- workload --------------------------------------------------------------------------

    def _emit(self, record: dict[str, Any]) -> None:
        if self.out is not None:
            with self._lock:
                self.out.write(json.dumps(record) + "\n")
                self.out.flush()

    def mix_received_min(self) -> int | None:
        try:
            done = self.cli("testnet", "status", "--json")
            nodes = json.loads(done.stdout)["nodes"]
        except (subprocess.TimeoutExpired, ValueError, KeyError):
            return None
        counts = [n["counters"]["received"] for n in nodes if n["role"] == "mixnode"]
        return min(counts) if counts else None

    def _sample(self) -> None:
        pids = self.pids()
        sample = Sample(
            round(time.monotonic() - self._start, 1),
            self.ops,
            rss_kb(pids["network"]),
            rss_kb(pids["session"]),
            self.mix_received_min(),
        )
        self.samples.append(sample)
        self._emit({"sample": sample.__dict__ | {"counts": dict(self.counts)}})

    def _sampler(self) -> None:
        while not self._stop.wait(self.sample_every):
            self._sample()

    def run_one(self, op: Op) -> None:
        start = time.monotonic()
        try:
            done = self.cli(*op.argv, stdin=op.stdin)
            problem = (
                f"exit {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}"
                if done.returncode != 0
                else op.check(done.stdout)
            )
        except subprocess.TimeoutExpired:
            problem = f"no answer within {OP_TIMEOUT:g} s"
        self.ops += 1
        self.counts[op.kind] = self.counts.get(op.kind, 0) + 1
        if problem is not None:
            failure = {
                "op": self.ops,
                "kind": op.kind,
                "argv": list(op.argv),
                "t": round(start - self._start, 1),
                "s": round(time.monotonic() - start, 2),
                "problem": problem,
            }
            self.failures.append(failure)
            self._emit({"failure": failure})

    def run(
        self, *, every_op: Callable[[Soak], None] | None = None, max_ops: int | None = None
    ) -> None:
        """The workload until `seconds` have passed (or `max_ops` ran); samples all along."""
        rng = random.Random(self.seed)
        self._start = time.monotonic()
        self._sample()
        sampler = threading.Thread(target=self._sampler, daemon=True)
        sampler.start()
        try:
            while time.monotonic() - self._start < self.seconds:
                if max_ops is not None and self.ops >= max_ops:
                    break
                self.run_one(next_op(rng))
                if every_op is not None:
                    every_op(self)
        finally:
            self._stop.set()
            sampler.join()
            self._sample()


@dataclass
class Growth:
    """Memory after warm-up: the least-squares slope per 1,000 operations and the peak."""

    name: str
    slope_kb_per_kop: float
    peak_kb: int
    first_kb: int
    last_kb: int


def growth(
    samples: list[Sample], name: str, warmup_ops: int, *, mix_received_from: int = 0
) -> Growth:
    """Fit over the samples past `warmup_ops` operations (and past `mix_received_from`
    packets processed by every mix node)."""
    points = [
        (s.ops, getattr(s, f"{name}_kb"))
        for s in samples
        if s.ops >= warmup_ops
        and getattr(s, f"{name}_kb") is not None
        and (s.mix_received_min or 0) >= mix_received_from
    ]
    if len(points) < 2 or points[-1][0] == points[0][0]:
        raise ValueError(f"too few samples after {warmup_ops} operations")
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return Growth(
        name,
        round(1000 * cov / var, 1),
        max(y for _, y in points),
        points[0][1],
        points[-1][1],
    )


@contextlib.contextmanager
def jsonl(path: Path | None) -> Iterator[IO[str] | None]:
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        yield out
