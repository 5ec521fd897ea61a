"""A fingerprint of one impaired transfer: every packet both stacks sent, hashed.

Run in-process it measures whichever build of the netstack core is imported
(mypyc-compiled or not); `python -m tests.netstack.engine_trace` from a copy of
the sources without compiled modules measures plain Python. The transfer is
deterministic (seeded impairments, virtual clock, fixed ISNs and timestamp
offsets), so the two builds must produce the same bytes in the same order.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import sys
from ipaddress import IPv4Address, IPv6Address

from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.wire.ip import IPAddress
from tests.netstack.relay import Impairment, SimLink


def trace(size: int = 192 * 1024, seed: int = 7) -> dict[str, object]:
    rng = random.Random(seed)
    real = secrets.randbits
    secrets.randbits = rng.getrandbits  # ISNs and timestamp offsets (connection.py)
    try:
        return _trace(size, seed)
    finally:
        secrets.randbits = real


def _trace(size: int, seed: int) -> dict[str, object]:
    return {
        "v4": _transfer(IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"), size, seed),
        "v6": _transfer(IPv6Address("fd00::1"), IPv6Address("fd00::2"), size, seed),
    }


def _transfer(a: IPAddress, b: IPAddress, size: int, seed: int) -> dict[str, object]:
    """`size` bytes up and a third of that down at once, through loss, duplicates, reordering."""
    sa, sb = NetStack([a], mtu=1420), NetStack([b], mtu=1420)
    imp = {"loss": 0.05, "duplicate": 0.02, "delay_mean": 0.0005, "base_delay": 0.0001}
    link = SimLink(sa, sb, Impairment(seed=seed, **imp), Impairment(seed=seed + 1, **imp))
    digest = hashlib.sha256()
    link.tap = lambda side, p: digest.update(bytes([side]) + len(p).to_bytes(2, "big") + p)
    client, server = link.open_tcp(b, 80, 10.0)
    up = random.Random(seed).randbytes(size)
    down = random.Random(seed + 1).randbytes(size // 3)
    sent = {"up": 0, "down": 0}
    got = {"up": bytearray(), "down": bytearray()}

    def app(now: float) -> bool:
        if sent["up"] < len(up):
            sent["up"] += client.send(up[sent["up"] : sent["up"] + 65536], now)
        if sent["down"] < len(down):
            sent["down"] += server.send(down[sent["down"] : sent["down"] + 65536], now)
        while chunk := server.recv(1 << 20, now):
            got["up"] += chunk
        while chunk := client.recv(1 << 20, now):
            got["down"] += chunk
        return len(got["up"]) >= len(up) and len(got["down"]) >= len(down)

    link.run(app, 600.0)
    assert bytes(got["up"]) == up and bytes(got["down"]) == down
    stats = client.conn.stats
    return {
        "packets": link.packets,
        "virtual_s": round(link.now, 9),
        "sha256": digest.hexdigest(),
        "retransmits": stats.retransmits,
        "rto_events": stats.rto_events,
        "tlp_probes": stats.tlp_probes,
        "counters": dict(sorted(sa.counters.items())),
    }


if __name__ == "__main__":
    json.dump(trace(), sys.stdout)
