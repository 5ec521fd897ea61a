"""Mixnet round trips of a fetch, phase by phase, at a mix delay where one is visible.

Starts its own local network (`--mix-delay-ms`, 50 by default: a round trip through
3 mixes and the gateways each way is about a third of a second), then for each
checkout (this one, and `--base DIR` for a side-by-side run of another checkout with
its own .venv) runs a background session and times, interleaved run by run:

- `rt`: one mixnet round trip, the median of DNS queries through the session
  (`udp_exchange`: one datagram to the exit's resolver and its answer);
- `cold boot`: `--no-session fetch`, its `%{time_tunnel}` (directory, gateway and exit
  handshake: all of it counted, local work included);
- `new origin`: an attached fetch that opens its own connection (`--fresh-connections`
  where the checkout has it), the name already in the session's DNS cache;
- `repeat`: an attached fetch right after another to the same origin.

Every `-w '%{json}'` phase is printed in round trips (seconds / rt). Each session's own
`rt` moves with its sampling and with how that checkout sends a datagram, so
`total_rt_pooled` also gives the median `time_total` over the median of every
checkout's round trips (one network, the same mix delays). For `new origin`
the phases on their own (`tcp_rt`, `tls_rt`, `http_rt`: connect, appconnect - connect,
starttransfer - appconnect) and the Sphinx packets the fetch cost at the network's entry
(`sphinx_up`: client to entry gateway, SURB-ACKs inside) and exit (`sphinx_down`: exit IPR
to its gateway), from the node counters (`--no-packets` skips them). One JSON object per
line; bench/README.md has the table.

    .venv/bin/python bench/roundtrips.py [--runs 5] [--mix-delay-ms 50] [--base /tmp/base]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from smolmix_cli.network_select import running_network  # noqa: E402
from smolmix_cli.session.remote import RemoteTunnel  # noqa: E402

URL = "https://demo.smolmix.test/"
PHASES = (
    "time_namelookup",
    "time_connect",
    "time_appconnect",
    "time_pretransfer",
    "time_starttransfer",
    "time_total",
)


@dataclass
class Checkout:
    name: str
    repo: Path
    env: dict[str, str]
    fresh_flag: list[str]
    samples: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    rts: list[float] = field(default_factory=list)
    packets: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def python(self) -> str:
        venv = self.repo / ".venv" / "bin" / "python"
        return str(venv) if venv.exists() else sys.executable

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            [self.python, "-m", "smolmix_cli", "--network", "testnet", *args],
            env=self.env,
            cwd=self.repo,
            capture_output=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise SystemExit(f"{self.name}: {args} failed ({done.returncode}): {done.stderr!r}")
        return done

    def fetch(self, case: str, *args: str) -> None:
        start = time.perf_counter()
        done = self.run(*args, "fetch", "-sS", "-o", "/dev/null", "-w", "%{json}", URL)
        record = json.loads(done.stdout)
        record["wall"] = time.perf_counter() - start
        self.samples.setdefault(case, []).append(record)

    @property
    def socket(self) -> Path:
        return Path(self.env["SMOLMIX_RUNTIME_DIR"]) / "testnet.sock"


def node_packets(checkout: Checkout, state: Path) -> tuple[int, int]:
    """Sphinx packets so far (entry gateway from clients, exit gateway from its IPR)."""
    done = subprocess.run(
        [checkout.python, "-m", "smolmix_cli", "testnet", "status", "--json", "--dir", str(state)],
        env=checkout.env,
        cwd=checkout.repo,
        capture_output=True,
        check=True,
    )
    nodes = {n["role"]: n["counters"] for n in json.loads(done.stdout)["nodes"]}
    return nodes["entry"]["client_packets"], nodes["exit"]["client_packets"]


def phases(records: list[dict[str, float]], rt: float) -> dict[str, float]:
    """TCP, TLS and HTTP each on its own, in round trips (medians)."""
    spans: dict[str, list[float]] = {"tcp_rt": [], "tls_rt": [], "http_rt": []}
    for r in records:
        spans["tcp_rt"].append(r["time_connect"])
        spans["tls_rt"].append(r["time_appconnect"] - r["time_connect"])
        spans["http_rt"].append(
            r["time_starttransfer"] - max(r["time_appconnect"], r["time_connect"])
        )
    return {k: round(statistics.median(v) / rt, 2) for k, v in spans.items()}


def dns_query(name: str) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return os.urandom(2) + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + b"\x00\x01\x00\x01"


async def round_trips(socket: Path, resolver: tuple[str, int], count: int) -> list[float]:
    remote = RemoteTunnel(socket)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await remote.udp_exchange(resolver[0], resolver[1], dns_query("demo.smolmix.test"), 10)
        times.append(time.perf_counter() - start)
    return times


def fresh_flag(repo: Path) -> list[str]:
    """`--fresh-connections` where the checkout has it (else every fetch opens its own)."""
    options = repo / "smolmix_cli" / "options.py"
    return ["--fresh-connections"] if "--fresh-connections" in options.read_text() else []


def emit(checkout: Checkout, case: str, rt: float, pooled: float, mix_delay_ms: float) -> None:
    records = checkout.samples.get(case, [])
    if not records:
        return
    out: dict[str, object] = {
        "checkout": checkout.name,
        "case": case,
        "runs": len(records),
        "mix_delay_ms": mix_delay_ms,
        "rt_ms": round(rt * 1000, 1),
        "rt_pooled_ms": round(pooled * 1000, 1),
    }
    keys = ("time_tunnel", *PHASES) if case == "cold boot" else PHASES
    for key in keys:
        values = [float(r[key]) for r in records if isinstance(r.get(key), int | float)]
        if values:
            out[key.removeprefix("time_") + "_rt"] = round(statistics.median(values) / rt, 2)
    totals = [
        float(r["time_total"]) for r in records if isinstance(r.get("time_total"), int | float)
    ]
    if totals:
        out["total_rt_pooled"] = round(statistics.median(totals) / pooled, 2)
    if case == "new origin":
        out.update(phases(records, rt))
        out["total_rt_mean"] = round(
            statistics.mean(float(r["time_total"]) for r in records) / rt, 2
        )
    packets = checkout.packets.get(case)
    if packets:
        out["sphinx_up"] = statistics.median(up for up, _ in packets)
        out["sphinx_down"] = statistics.median(down for _, down in packets)
    out["num_connects"] = statistics.median(int(r.get("num_connects", 0)) for r in records)
    out["wall_s"] = round(statistics.median(float(r["wall"]) for r in records), 3)
    print(json.dumps(out), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mix-delay-ms", type=float, default=50.0)
    parser.add_argument("--base", type=Path, help="another checkout (with .venv) to run beside")
    parser.add_argument("--no-packets", action="store_true", help="skip the node counters")
    opts = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="smx-rt-", dir="/tmp"))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMOLMIX_")}
    clean["XDG_STATE_HOME"] = str(base / "state")
    checkouts = [Checkout("this", REPO, {}, fresh_flag(REPO))]
    if opts.base is not None:
        checkouts.append(Checkout("base", opts.base.resolve(), {}, fresh_flag(opts.base)))
    for c in checkouts:
        c.env = {**clean, "SMOLMIX_RUNTIME_DIR": str(base / f"run-{c.name}")}
        (base / f"run-{c.name}").mkdir(mode=0o700)
    log = open(base / "testnet.log", "wb")  # noqa: SIM115
    up_args = [checkouts[0].python, "-m", "smolmix_cli", "testnet", "up", "--mix-delay-ms"]
    net = subprocess.Popen(
        [*up_args, str(opts.mix_delay_ms)],
        env=checkouts[0].env,
        cwd=REPO,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        state = base / "state" / "smolmix" / "testnet"
        deadline = time.monotonic() + 60
        while (network := running_network(state)) is None:
            if time.monotonic() > deadline or net.poll() is not None:
                raise SystemExit("the local network did not start")
            time.sleep(0.2)
        host, _, port = (network.dns_resolver or "198.18.0.1:53").rpartition(":")
        resolver = (host, int(port))
        for c in checkouts:
            c.run("session", "start")
        try:
            for c in checkouts:  # warm-up: the session's DNS cache, the first connection
                c.fetch("warm-up")
            for _ in range(opts.runs):
                for c in checkouts:
                    c.rts += anyio.run(round_trips, c.socket, resolver, 3)
                    before = None if opts.no_packets else node_packets(c, state)
                    c.fetch("new origin", *c.fresh_flag)
                    if before is not None:
                        after = node_packets(c, state)
                        new = (after[0] - before[0], after[1] - before[1])
                        c.packets.setdefault("new origin", []).append(new)
                    c.fetch("warm-up")
                    c.fetch("repeat")
                    c.fetch("cold boot", "--no-session")
        finally:
            for c in checkouts:
                with contextlib.suppress(SystemExit):
                    c.run("session", "stop")
        pooled = statistics.median(t for c in checkouts for t in c.rts)
        for c in checkouts:
            rt = statistics.median(c.rts)
            for case in ("cold boot", "new origin", "repeat"):
                emit(c, case, rt, pooled, opts.mix_delay_ms)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(net.pid, signal.SIGTERM)
        net.wait(timeout=20)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
