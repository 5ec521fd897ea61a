"""The official client and `smolmix fetch`, through the same local network, in one run.

`--profile default`: one LocalNetwork (one exit, demo origin). First the official
client (npm @nymproject/mix-tunnel 0.2.1 in headless Chromium,
tests/interop/driver.mjs) sets up its tunnel and fetches the demo page and a 1 MiB
file; the mix nodes record the per-hop delays it chose. Then `smolmix fetch` does
the same transfers, with the network file's mean delay set to what the official
client used, so both see the same mixing. Times are per transfer (tunnel set-up
apart) and the ratios are smolmix / official.

`--profile shaped` (issue 17): Nym-like shaping, Poisson sending and loop cover ON in
every client. Each checkout (this one: "now"; `--base DIR`, a worktree of the code
before issue 17: "today") gets its own network, run from that checkout in its own
process (bench/interop_child.py) with `--mix-delay-ms` as its mean per-hop delay.
The official client runs on this checkout's network with its built-in shaping (it
has no option for the per-hop delay or the Poisson rate); smolmix runs with
`--mix-delay-ms` per hop, Poisson `--sending-delay-ms` and cover every 200 ms (Nym's
config-types defaults). Per 1 MiB transfer (sha256-checked): time and KB/s, the
Sphinx packets each way at the entry gateway (up: from the client, real and cover;
down: pushed to it, SURB-ACKs apart), the client's CPU (the smolmix process, or the
driver with chromium and the wasm worker) and the mean per-hop delay the mix nodes saw.
Reps of today and now are interleaved. `--size N` GETs N bytes instead (a small N
times the first byte: connect, request, answer), `--upload` PUTs them to the origin
(smolmix only in both cases). Prints JSON lines. Run from the repo root:
    .venv/bin/python bench/interop.py [--reps 3] [--smolmix-cmd 'python -m smolmix_cli']
    .venv/bin/python bench/interop.py --profile shaped --reps 3 --base /tmp/base-shaped
Needs tests/interop/setup.sh (chromium, node_modules) and a smolmix with `fetch`.
"""

from __future__ import annotations

import argparse
import compileall
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
from urllib.parse import urlsplit

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from smolmix_cli.config import load_network_file  # noqa: E402
from smolmix_cli.testnet.nodes.processing import Forward  # noqa: E402
from smolmix_cli.testnet.origin.http import bytes_sha256  # noqa: E402
from tests.interop.harness import (  # noqa: E402
    BIG,
    driver_config,
    interop_network,
    missing_prerequisites,
    run_driver,
)

CHILD = Path(__file__).resolve().parent / "interop_child.py"


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
    parser.add_argument("--profile", choices=("default", "shaped"), default="default")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--smolmix-cmd", default=f"{sys.executable} -m smolmix_cli")
    parser.add_argument("--base", type=Path, help="shaped: a checkout of the code before")
    parser.add_argument("--mix-delay-ms", type=float, default=50.0, help="shaped: per hop")
    parser.add_argument("--sending-delay-ms", type=float, default=20.0, help="shaped: Poisson")
    parser.add_argument("--no-official", action="store_true", help="shaped: smolmix only")
    parser.add_argument(
        "--size", type=int, default=BIG, help="shaped: bytes per GET (not 1 MiB: smolmix only)"
    )
    parser.add_argument(
        "--upload", action="store_true", help="shaped: PUT --size bytes instead (smolmix only)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="shaped: one more client on this checkout's network, with these TunnelOptions",
    )
    parser.add_argument(
        "--base-options", default="{}", metavar="JSON", help="shaped: today's TunnelOptions"
    )
    parser.add_argument(
        "--exit-tcp",
        default="{}",
        metavar="JSON",
        help="shaped: TcpConfig fields for the exit NAT's TCP of this checkout's network",
    )
    parser.add_argument(
        "--base-exit-tcp", default="{}", metavar="JSON", help="shaped: the same for today's"
    )
    args = parser.parse_args()
    reason = missing_prerequisites()
    if reason is not None:
        sys.exit(f"bench/interop.py: {reason}")
    if args.profile == "shaped":
        await shaped(args)
    else:
        await default_profile(args)


async def default_profile(args: argparse.Namespace) -> None:
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


class Child:
    """A bench/interop_child.py process from one checkout: JSON lines out, commands in."""

    def __init__(self, process: anyio.abc.Process, log: Path) -> None:
        assert process.stdout is not None and process.stdin is not None
        self.process = process
        self.log = log
        self._out = BufferedByteReceiveStream(process.stdout)

    @classmethod
    async def start(cls, checkout: Path, log: Path, *argv: str) -> Child:
        python = checkout / ".venv" / "bin" / "python"
        command = [str(python if python.exists() else sys.executable), str(CHILD), *argv]
        command += ["--checkout", str(checkout)]
        with log.open("ab") as err:
            process = await anyio.open_process(command, stderr=err, cwd=checkout)
        return cls(process, log)

    async def line(self) -> dict[str, Any]:
        try:
            raw = await self._out.receive_until(b"\n", 1 << 20)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            tail = self.log.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"child ended: {tail}") from None
        return dict(json.loads(raw))

    async def say(self, text: str = "") -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send((text + "\n").encode())

    async def ask(self) -> dict[str, Any]:
        await self.say()
        return await self.line()

    async def aclose(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with anyio.move_on_after(10):
            await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
        await self.process.aclose()


def traffic(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Sphinx packets at the entry gateway between two snapshots, the exit's counters
    (means as sampled in between) and the hop delay seen."""
    return {
        "sphinx_up": after["packets_from_clients"] - before["packets_from_clients"],
        "sphinx_down": after["pushes_other"] - before["pushes_other"],
        "acks_down": after["pushes_acks"] - before["pushes_acks"],
        "mean_hop_delay_ms": after["mean_hop_delay_ms"],
        "network_cpu_s": round(after["network_cpu_s"] - before["network_cpu_s"], 2),
        "exit": {
            k: v if "_mean" in k or k.endswith("_flow") else v - before["exit"].get(k, 0)
            for k, v in after["exit"].items()
            if "_mean" in k or k.endswith("_flow") or v != before["exit"].get(k, 0)
        },
    }


def transfer_row(client: str, rep: int, time_s: float, ok: bool, **fields: Any) -> dict[str, Any]:
    return {
        "name": "shaped_fetch",
        "client": client,
        "rep": rep,
        "ok": ok,
        "time_s": round(time_s, 3),
        "kb_per_s": round(fields.get("size", BIG) / 1000 / time_s, 1)
        if ok and time_s > 0
        else None,
        **fields,
    }


async def official_shaped(
    network_child: Child, network_file: Path, work: Path, reps: int
) -> list[dict[str, Any]]:
    """The official client with its own shaping on: reps x 1 MiB through one tunnel."""
    network = load_network_file(network_file, name="bench")
    port = urlsplit(network.api_urls[0].url).port
    assert port is not None and network.demo is not None
    big_url = f"http://{network.demo.zone}/bytes/{BIG}"
    extra = [{"name": f"big_{r}", "url": big_url, "timeoutMs": 300000} for r in range(reps)]
    cfg = driver_config(
        network,
        port,
        work / "console.log",
        stages=[],
        extraFetches=extra,
        disableCoverTraffic=False,
        disablePoissonTraffic=False,
        announceStages=True,
        timeouts={"ready": 120000},
    )
    rows: list[dict[str, Any]] = []
    started: dict[str, dict[str, Any]] = {}
    big_sha = bytes_sha256(BIG)

    async def on_line(line: dict[str, Any]) -> None:
        name = line.get("starting") or line.get("stage") or ""
        if not name.startswith("big_"):
            if line.get("stage") == "ready":
                emit(name="official_ready", ok=bool(line.get("ok")), ms=line.get("ms"))
            return
        counters = await network_child.ask()
        if "starting" in line:
            started[name] = counters
            return
        ok = bool(line.get("ok")) and line.get("sha256") == big_sha
        row = transfer_row(
            "official",
            int(name.split("_")[1]),
            line.get("fetch_ms", 0) / 1000,
            ok,
            cpu_s=line.get("cpu_s"),
            **traffic(started[name], counters),
        )
        emit(**row)
        rows.append(row)

    await network_child.ask()  # resets the hop-delay mean
    await run_driver(cfg, work / "driver.json", timeout=180 + 320 * reps, on_line=on_line)
    return rows


async def smolmix_shaped(
    client: str,
    checkout: Path,
    options: str,
    network_child: Child,
    network_file: Path,
    rep: int,
    args: argparse.Namespace,
    log: Path,
) -> dict[str, Any]:
    """One smolmix process from `checkout`: boot (not timed), then 1 MiB, Poisson and cover on."""
    fetch = await Child.start(
        checkout,
        log,
        "fetch",
        "--network-file",
        str(network_file),
        "--size",
        str(args.size),
        "--upload",
        str(args.size if args.upload else 0),
        "--mix-delay-ms",
        str(args.mix_delay_ms),
        "--sending-delay-ms",
        str(args.sending_delay_ms),
        "--options",
        options,
    )
    try:
        with anyio.fail_after(120):
            await fetch.line()  # ready
        before = await network_child.ask()
        await fetch.say()
        with anyio.fail_after(600):
            result = await fetch.line()
        after = await network_child.ask()
    finally:
        await fetch.aclose()
    if args.upload:
        ok = result["status"] == 200 and result.get("upload_ok") is True
    else:
        ok = result["status"] == 200 and result["sha256"] == bytes_sha256(args.size)
    row = transfer_row(
        client,
        rep,
        result["time_s"],
        ok,
        size=args.size,
        upload=args.upload,
        cpu_s=result["cpu_s"],
        **traffic(before, after),
        messages_up=result.get("messages_up"),
        ip_packets_up=result.get("ip_packets_up"),
        ip_packets_down=result.get("ip_packets_down"),
        client_mixnet=result.get("client_mixnet"),
        client_trace=result.get("client_trace"),
    )
    emit(**row)
    return row


async def shaped(args: argparse.Namespace) -> None:
    checkouts = [("now", REPO)]
    if args.base is not None:
        checkouts.insert(0, ("today", args.base.resolve()))
    options = {"today": args.base_options, "now": "{}"}
    exit_tcp = {"today": args.base_exit_tcp, "now": args.exit_tcp}
    clients = [(name, checkout, name, options[name]) for name, checkout in checkouts]
    for variant in args.variant:
        name, _, options = variant.partition("=")
        clients.append((f"now+{name}", REPO, "now", options))
    for _, checkout in checkouts:  # start-up must not pay for byte-compiling
        compileall.compile_dir(checkout / "smolmix_cli", quiet=1)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        networks: dict[str, tuple[Child, Path]] = {}
        try:
            for client, checkout in checkouts:
                log = work / f"{client}-network.log"
                child = await Child.start(
                    checkout,
                    log,
                    "network",
                    "--state",
                    str(work / f"{client}-net"),
                    "--mix-delay-ms",
                    str(args.mix_delay_ms),
                    "--exit-tcp",
                    exit_tcp[client],
                )
                with anyio.fail_after(60):
                    networks[client] = (child, Path((await child.line())["network_file"]))
            if not (args.no_official or args.upload or args.size != BIG):
                child, network_file = networks["now"]
                rows += await official_shaped(child, network_file, work, args.reps)
            for rep in range(args.reps):
                for client, checkout, network_name, options in clients:
                    child, network_file = networks[network_name]
                    log = work / f"{client}-fetch.log"
                    try:
                        rows.append(
                            await smolmix_shaped(
                                client, checkout, options, child, network_file, rep, args, log
                            )
                        )
                    except (RuntimeError, TimeoutError, KeyError) as exc:
                        emit(name="shaped_fetch", client=client, rep=rep, ok=False, error=str(exc))
        finally:
            for child, _ in networks.values():
                await child.aclose()
    shaped_summary(rows, args)


def shaped_summary(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    medians: dict[str, float] = {}
    names = ["today", "now", *(f"now+{v.partition('=')[0]}" for v in args.variant), "official"]
    for client in names:
        done = [r for r in rows if r["client"] == client and r["ok"]]
        if not done:
            continue

        def med(key: str, rows: list[dict[str, Any]] = done) -> float:
            values = [r[key] for r in rows if r.get(key) is not None]
            return round(statistics.median(values), 3) if values else float("nan")

        medians[client] = med("kb_per_s")
        emit(
            name="shaped_summary",
            client=client,
            transfers=len(done),
            mix_delay_ms=None if client == "official" else args.mix_delay_ms,
            kb_per_s_median=medians[client],
            kb_per_s_all=[r["kb_per_s"] for r in done],
            time_s_median=med("time_s"),
            sphinx_up_median=med("sphinx_up"),
            sphinx_down_median=med("sphinx_down"),
            acks_down_median=med("acks_down"),
            cpu_s_median=med("cpu_s"),
            mean_hop_delay_ms=med("mean_hop_delay_ms"),
        )
    now = medians.get("now")
    if now is not None and not args.upload and args.size == BIG:  # the target's transfer
        emit(
            name="shaped_ratios",
            now_over_today=round(now / medians["today"], 2) if "today" in medians else None,
            now_over_official=round(now / medians["official"], 2)
            if "official" in medians
            else None,
            targets={"now_over_today": 2.0, "now_over_official": 1.5},
        )


if __name__ == "__main__":
    anyio.run(main)
