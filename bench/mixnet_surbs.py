"""Reply SURBs sized to what the exit spends against a fixed count per message, side by side.

In one process: `LocalNetwork(exits=1)` with zero mix delay and a Tunnel (cover and
Poisson off), once with `surb_sizing` (the default) and once with the published
client's fixed 2 SURBs per data message, alternating. Per mode and direction one
1 MiB HTTP transfer (`GET /bytes/N`, `PUT /upload`) over one TCP stream; the client's
own mixnet preparer is counted, so the network's work is not in the figures:

- `headers_per_mib`: Sphinx headers the client built (a data packet and its SURB-ACK
  per fragment, one per reply SURB);
- `packets_up_per_mib` / `replies_per_mib`: Sphinx packets the client sent (real, not
  cover) and reply messages it received; `surbs_per_mib`: reply SURBs it built
  (attached to messages or answering the exit's SURB requests), `surb_requests`;
- the exit's side (branch `packets`): `exit_packets_per_mib` (Sphinx packets the exit IPR
  sent: reply fragments, their resends, SURB requests), `exit_resends_per_mib` (resends
  whose first copy was acked too count as `exit_spurious_per_mib`), `exit_replies_per_mib`
  (reply messages: with bundles, several IP packets each) and `messages_up_per_mib`.

Usage: python bench/mixnet_surbs.py [--mib 1] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anyio

from smolmix_cli.mixnet.message.preparer import MessagePreparer
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.tunnel.options import for_local_network
from smolmix_cli.tunnel.tunnel import Tunnel

MIB = 1 << 20


def count_calls(preparer: MessagePreparer, counts: Counter[str]) -> None:
    """Count what this client's preparer builds (instance attributes shadow the methods)."""

    def wrap(name: str, weight: Callable[[Any, tuple[Any, ...]], int]) -> None:
        method = getattr(preparer, name)

        def counted(*args: Any) -> Any:
            result = method(*args)
            counts[name] += weight(result, args)
            return result

        setattr(preparer, name, counted)

    wrap("prepare_fragment", lambda _r, _a: 1)
    wrap("prepare_reply_fragment", lambda _r, _a: 1)
    wrap("reply_surbs", lambda _r, a: int(a[0]))


async def transfer(tunnel: Tunnel, host: str, request: bytes, body: bytes) -> bytes:
    stream = await tunnel.open_tcp(host, 80)
    await stream.send(request)
    for start in range(0, len(body), 65536):
        await stream.send(body[start : start + 65536])
    chunks = []
    try:
        while True:
            chunks.append(await stream.receive())
    except anyio.EndOfStream:
        pass
    await stream.aclose()
    return b"".join(chunks)


async def measure(
    network: Any, exit_core: Any, host: str, sizing: bool, size: int
) -> list[dict[str, Any]]:
    options = for_local_network()  # sizing, up to 3 per message where they fit
    if not sizing:
        options = options.replace(surb_sizing=False, data_reply_surbs=2)  # the published count
    out = []
    async with Tunnel.open(network, options) as tunnel:
        await tunnel.wait_ready()
        session = tunnel.session
        assert session is not None
        link = session.link
        counts: Counter[str] = Counter()
        count_calls(link.mixnet._core.preparer, counts)  # a bench probe
        body = os.urandom(size)
        cases = {
            "download": (f"GET /bytes/{size} HTTP/1.1\r\nHost: demo\r\n".encode(), b""),
            "upload": (
                f"PUT /upload HTTP/1.1\r\nHost: demo\r\nContent-Length: {size}\r\n".encode(),
                body,
            ),
        }
        for case, (head, data) in cases.items():
            counts.clear()
            stats0 = link.mixnet.stats
            up0, requests0 = stats0.real_packets_sent, link.client.surb_requests
            down0 = stats0.messages_received
            exit0 = dict(vars(exit_core.stats))
            t0 = time.perf_counter()
            reply = await transfer(tunnel, host, head + b"Connection: close\r\n\r\n", data)
            elapsed = time.perf_counter() - t0
            assert reply.startswith(b"HTTP/1.1 200"), reply[:80]
            stats = link.mixnet.stats
            mib = size / MIB
            fragments = counts["prepare_fragment"] + counts["prepare_reply_fragment"]
            exit1 = vars(exit_core.stats)
            exit_delta = {name: round((exit1[name] - exit0[name]) / mib, 1) for name in exit1}
            out.append(
                {
                    "name": "surbs",
                    "case": case,
                    "surb_sizing": sizing,
                    "seconds": round(elapsed, 2),
                    "headers_per_mib": round((2 * fragments + counts["reply_surbs"]) / mib, 1),
                    "surbs_per_mib": round(counts["reply_surbs"] / mib, 1),
                    "packets_up_per_mib": round((stats.real_packets_sent - up0) / mib, 1),
                    "replies_per_mib": round((stats.messages_received - down0) / mib, 1),
                    "surb_requests": link.client.surb_requests - requests0,
                    "messages_up_per_mib": round(
                        (stats.messages_sent - stats0.messages_sent) / mib, 1
                    ),
                    "exit_packets_per_mib": exit_delta["real_packets_sent"],
                    "exit_resends_per_mib": exit_delta["retransmissions"],
                    "exit_spurious_per_mib": exit_delta["stray_acks"],
                    "exit_replies_per_mib": exit_delta["replies_sent"],
                }
            )
    return out


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalNetwork(LocalNetworkOptions(Path(tmp), mean_delay_ms=0.0, exits=1))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            assert network.demo is not None
            exit_client = next(iter(local.exits.values())).mixnet_client
            assert exit_client is not None
            exit_core = exit_client._core  # a bench probe, as the preparer above
            for i in range(args.rounds):
                for sizing in (True, False) if i % 2 == 0 else (False, True):
                    for record in await measure(
                        network, exit_core, network.demo.ipv4, sizing, args.mib * MIB
                    ):
                        print(json.dumps(record), flush=True)
            tg.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
