"""Back-to-back bulk transfers between two NetStacks on a virtual clock.

Two stacks exchange 10 MiB through `SimLink` under loss, duplication and
exponential per-packet delay (which reorders), both directions, IPv4 and IPv6;
the received bytes must hash to what was sent. Time is simulated, so these run
at CPU speed (all 20 cases take about 12 s here); `--hypothesis-profile=fuzz`
adds combined impairments over many seeds.
"""

from __future__ import annotations

import hashlib
import random
from ipaddress import IPv4Address, IPv6Address

import pytest

from smolmix_cli.netstack.iface.handles import TcpSocket
from smolmix_cli.netstack.iface.stack import NetStack
from smolmix_cli.netstack.socket.tcp.config import TcpConfig

from .relay import Impairment, SimLink, StreamCheck

MiB = 1 << 20
ADDRS = {
    4: (IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")),
    6: (IPv6Address("fd00:e7a1::1"), IPv6Address("fd00:e7a1::2")),
}
CONDITIONS: dict[str, dict[str, float]] = {
    "clean": {},
    "loss1": {"loss": 0.01},
    "loss5": {"loss": 0.05},
    "dup": {"duplicate": 0.05},
    "reorder": {"delay_mean": 0.02},
}


def run_transfer(
    version: int, size: int, condition: dict[str, float], direction: str, seed: int = 1
) -> tuple[SimLink, float]:
    cfg = TcpConfig(rto_min=0.2, time_wait=1.0)
    a = NetStack(ADDRS[version][:1], tcp_config=cfg)
    b = NetStack(ADDRS[version][1:], tcp_config=cfg)
    link = SimLink(
        a,
        b,
        Impairment(base_delay=0.01, seed=seed, **condition),
        Impairment(base_delay=0.01, seed=seed + 1000, **condition),
    )
    listener = b.tcp_listen(5000)
    client = a.tcp_connect((ADDRS[version][1], 5000), 0.0)
    data = random.Random(seed).randbytes(size)
    view = memoryview(data)
    got = StreamCheck()
    state: dict[str, TcpSocket | int | bool] = {"sent": 0, "closed": False}
    server: TcpSocket | None = None

    def app(now: float) -> bool:
        nonlocal server
        if server is None:
            server = listener.accept()
            if server is None:
                return False
        snd, rcv = (client, server) if direction == "up" else (server, client)
        sent = state["sent"]
        assert isinstance(sent, int)
        while sent < size:
            n = snd.send(view[sent : sent + 262144], now)
            if not n:
                break
            sent += n
        state["sent"] = sent
        if sent == size and not state["closed"]:
            snd.close(now)
            state["closed"] = True
        while True:
            chunk = rcv.recv(1 << 20, now)
            if not chunk:
                break
            got.feed(chunk)
        assert rcv.conn.error is None and snd.conn.error is None
        return got.count == size and rcv.conn.at_eof

    link.run(app, time_limit=600.0)
    assert got.count == size
    assert got.hash.digest() == hashlib.sha256(data).digest()
    for stack in (a, b):
        assert stack.counters["internal_error"] == 0
        assert stack.counters["bad_checksum"] == 0
    return link, link.now


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("condition", list(CONDITIONS))
def test_transfer_10mib(condition: str, version: int, direction: str) -> None:
    run_transfer(version, 10 * MiB, CONDITIONS[condition], direction)


@pytest.mark.fuzz
@pytest.mark.parametrize("seed", range(2, 12))
@pytest.mark.parametrize("version", [4, 6])
def test_transfer_combined_impairments(seed: int, version: int) -> None:
    """Loss, duplication and reordering at once, many seeds (long: fuzz profile only)."""
    cond = {"loss": 0.05, "duplicate": 0.02, "delay_mean": 0.02}
    run_transfer(version, 4 * MiB, cond, "up" if seed % 2 else "down", seed=seed)
