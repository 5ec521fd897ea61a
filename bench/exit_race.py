"""Exit walk, one after another vs raced: a cold tunnel's time to ready when many exits are dead.

In one process: `LocalNetwork(exits=N)` with a per-hop mix delay (default 20 ms, so a live
exit's connect takes real round trips), and for each seed a share `--dead` of the exits made
silent (their directory entry lists an IPR address nobody answers to, behind their real
gateway: a connect just times out, as a dead mainnet exit does). Each seed boots one cold
tunnel per mode (`--modes`: WIDTH or WIDTH/STAGGER seconds; 1 = sequential) against the
same dead set and the same weighted order (the tunnel's rng is seeded alike), and prints one
JSON line per boot:

- `ready_s`: Tunnel.open until ready (directory, gateway, exit walk), or null if it failed;
- `exits_tried`: attempts started before one got ready (raced: the losers included);
- `cpu_s`: process CPU seconds over the boot (the local network runs in the same process,
  so this includes the exits' and mixes' share of the handshakes);
- `released`: losers that connected after the race was won and were sent a Disconnect.

A summary line per mode follows (median and max ready_s, mean exits_tried and cpu_s).
Usage: python bench/exit_race.py [--exits 9] [--dead 0.6] [--seeds 8] [--modes 1,3,5,5/0.5]
       [--attempt 2.0] [--mix-delay-ms 20]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smolmix_cli.config import Network
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions, exit_ids
from smolmix_cli.tunnel.errors import TunnelUnavailable
from smolmix_cli.tunnel.options import for_local_network
from smolmix_cli.tunnel.tunnel import Tunnel


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _silent(real: Recipient) -> str:
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return str(Recipient(key, real.encryption_key, real.gateway))


async def boot(network: Network, mode: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    width, _, stagger = mode.partition("/")
    options = for_local_network(
        exit_race=int(width),
        exit_race_stagger=float(stagger or 0),
        exit_attempt_timeout=args.attempt,
        exit_attempts=args.exits,
        mean_delay_ms=args.mix_delay_ms,
    )
    cpu0, t0 = time.process_time(), time.perf_counter()
    ready: float | None = None
    error = None
    async with Tunnel.open(network, options, rng=random.Random(seed)) as tunnel:
        try:
            await tunnel.wait_ready(args.exits * 2 * args.attempt + 30)
            ready = time.perf_counter() - t0
        except TunnelUnavailable as exc:
            error = str(exc)
        cpu = time.process_time() - cpu0
        tried = len(tunnel.exits_tried)
        # let the losers end (their budget) to count the late connects that were released
        with anyio.move_on_after(2 * args.attempt + 2):
            while len(tunnel._links) > (1 if ready is not None else 0):
                await anyio.sleep(0.05)
        released = sum("disconnected" in why for why in tunnel.exits_tried.values())
    return {
        "mode": mode,
        "seed": seed,
        "ready_s": None if ready is None else round(ready, 3),
        "exits_tried": tried,
        "cpu_s": round(cpu, 3),
        "released": released,
        "error": error,
    }


async def run(args: argparse.Namespace) -> None:
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalNetwork(
            LocalNetworkOptions(
                Path(tmp),
                mean_delay_ms=args.mix_delay_ms,
                exits=args.exits,
                seed=1,
                demo_origin=False,
            )
        )
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            state = local.directory_state
            assert state is not None
            ids = exit_ids(args.exits)
            real: dict[int, Recipient] = {}
            for i in ids:
                listed = local.exits[i].address
                assert listed is not None
                real[i] = listed
            dead_count = round(args.dead * args.exits)
            results: list[dict[str, Any]] = []
            for seed in range(args.seeds):
                dead = set(random.Random(seed).sample(ids, dead_count))
                for i in ids:
                    address = _silent(real[i]) if i in dead else str(real[i])
                    state.update_node(i, ipr_address=address)
                for mode in modes:
                    record = await boot(network, mode, seed, args)
                    record["dead"] = f"{dead_count}/{args.exits}"
                    emit(record)
                    results.append(record)
            for mode in modes:
                rows = [r for r in results if r["mode"] == mode]
                times = [r["ready_s"] for r in rows if r["ready_s"] is not None]
                emit(
                    {
                        "summary": True,
                        "mode": mode,
                        "boots": len(rows),
                        "failed": len(rows) - len(times),
                        "ready_s_median": round(statistics.median(times), 3) if times else None,
                        "ready_s_max": max(times) if times else None,
                        "exits_tried_mean": round(
                            statistics.mean(r["exits_tried"] for r in rows), 2
                        ),
                        "cpu_s_mean": round(statistics.mean(r["cpu_s"] for r in rows), 3),
                        "released": sum(r["released"] for r in rows),
                    }
                )
            tg.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exits", type=int, default=9)
    parser.add_argument("--dead", type=float, default=0.6)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--modes", default="1,3,5,5/0.5")
    parser.add_argument("--attempt", type=float, default=2.0, help="seconds per exit attempt")
    parser.add_argument("--mix-delay-ms", type=float, default=20.0)
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
