"""Per-packet cost of the IPR layer: client send/receive and exit uplink/downlink, 1400-byte packets.

Prints one JSON line per measurement. Usage: python bench/ipr_codec.py [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address

from smolmix_cli.ipr.client_logic import IprClient, SendToIpr
from smolmix_cli.ipr.router_logic import IprRouter, ReplyToClient

PACKET_LEN = 1400
TAG = bytes(16)


def _rate(fn: Callable[[], object], seconds: float) -> tuple[int, float]:
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            fn()
        n += 100
        now = time.perf_counter()
        if now >= deadline:
            return n, now - start


def _udp(src: IPv4Address, dst: IPv4Address, total: int) -> bytes:
    udp_len = total - 20
    header = bytes([0x45, 0]) + total.to_bytes(2, "big") + bytes(4) + bytes([64, 17, 0, 0])
    udp = (49152).to_bytes(2, "big") + (53).to_bytes(2, "big") + udp_len.to_bytes(2, "big")
    return header + src.packed + dst.packed + udp + bytes(udp_len - 6)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    client = IprClient(random.Random(1))
    router = IprRouter(random.Random(2))
    client.connect(0.0, datetime(2026, 11, 24, tzinfo=UTC))
    for t in client.pop_transmits():
        assert isinstance(t, SendToIpr)
        router.on_message(TAG, t.payload, 10_000_000, 0.0)
    for r in router.pop_transmits():
        if isinstance(r, ReplyToClient):
            client.on_reply(r.payload, 0.0)
    assert client.ipv4 is not None
    remote = IPv4Address("93.184.216.34")
    up = _udp(client.ipv4, remote, PACKET_LEN)
    down = _udp(remote, client.ipv4, PACKET_LEN)

    def client_send() -> object:
        client.send_packet(up, 1.0)
        return client.pop_transmits()

    client.send_packet(up, 1.0)
    (sent,) = client.pop_transmits()
    assert isinstance(sent, SendToIpr)

    def exit_uplink() -> object:
        router.on_message(TAG, sent.payload, 2, 1.0)
        router.pop_transmits()
        return router.pop_uplink()

    def exit_downlink() -> object:
        router.on_message(TAG, sent.payload, 1, 1.0)  # one SURB in for each reply out
        router.pop_uplink()
        router.on_downlink(down, 1.0)
        router.handle_timeout(2.0)
        return router.pop_transmits()

    router.on_downlink(down, 1.0)
    router.handle_timeout(2.0)
    (reply,) = [r for r in router.pop_transmits() if isinstance(r, ReplyToClient)]

    def client_receive() -> object:
        client.on_reply(reply.payload, 1.0)
        return client.pop_events()

    cases: dict[str, Callable[[], object]] = {
        "ipr_client_send_packet": client_send,
        "ipr_exit_uplink_packet": exit_uplink,
        "ipr_exit_downlink_packet": exit_downlink,
        "ipr_client_receive_packet": client_receive,
    }
    for name, fn in cases.items():
        n, elapsed = _rate(fn, args.seconds)
        print(
            json.dumps(
                {
                    "name": name,
                    "packet_bytes": PACKET_LEN,
                    "packets": n,
                    "elapsed_s": round(elapsed, 3),
                    "packets_per_s": round(n / elapsed),
                    "us_per_packet": round(elapsed / n * 1e6, 2),
                    "mb_per_s": round(n * PACKET_LEN / elapsed / 1e6, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
