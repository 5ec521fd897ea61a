"""Many malformed IPR/LP messages through a real client: the exit drops them and serves on.

The exit (NAT) has no listener of its own; its IPR takes mixnet input. Issue 20's
acceptance asks that hostile input to every listener leave it serving: here a second
client sends mutations of valid messages (bit flips, truncations, random stream ids,
both LP frame types, random versions and request tags, bundles of broken IP packets),
and a victim's tunnel must still carry a UDP exchange through the same exit afterwards.
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address
from pathlib import Path

import anyio
import pytest

from smolmix_cli.ipr.bundle import encode_bundle
from smolmix_cli.ipr.lp_frame import LpFrame, MsgType
from smolmix_cli.ipr.messages import V9, DataRequest, IpPacketRequest
from tests.testnet.exit_tunnel import victim_and_rogue

pytestmark = pytest.mark.anyio
MESSAGES = 300  # each a Sphinx message (a packet or few) through the mix layers


def _mutant(rng: random.Random, stream_id: int, good: bytes) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 600))
    framed = LpFrame(stream_id, MsgType(rng.randrange(2)), rng.randrange(1 << 16), good).encode()
    data = bytearray(framed)
    if kind == 1:  # bit flips anywhere
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 2:  # cut short
        del data[rng.randrange(len(data)) :]
    elif kind == 3:  # another (or no known) stream
        data = bytearray(LpFrame(rng.randrange(1 << 64), MsgType.DATA, 1, good).encode())
    elif kind == 4:  # random version and request tag bytes in a real frame
        inner = bytearray(good)
        inner[0], inner[1] = rng.randrange(256), rng.randrange(256)
        data = bytearray(LpFrame(stream_id, MsgType.DATA, 3, bytes(inner)).encode())
    else:  # a bundle of broken IP packets
        packets = [rng.randbytes(rng.randrange(1, 80)) for _ in range(rng.randrange(1, 5))]
        request = IpPacketRequest(V9, DataRequest(encode_bundle(packets))).encode()
        data = bytearray(LpFrame(stream_id, MsgType.DATA, 5, request).encode())
    return bytes(data)


async def test_malformed_ipr_messages_leave_the_exit_serving(tmp_path: Path) -> None:
    rng = random.Random(20)
    with anyio.fail_after(120):
        async with victim_and_rogue(tmp_path) as (net, port, seen, victim, rogue):
            ipr = net.ipr()
            stream_id = rogue.ipr_client.stream_id
            assert stream_id is not None
            good = IpPacketRequest(V9, DataRequest(encode_bundle([b"\x45" + bytes(30)]))).encode()
            router = net.local.exits[2].router
            before = sum(router.stats.values())
            for _ in range(MESSAGES):
                payload = _mutant(rng, stream_id, good)
                await rogue.client.send(ipr, payload, reply_surbs=rng.randrange(3))
            with anyio.move_on_after(30):  # every message arrived and was counted somewhere
                while sum(router.stats.values()) < before + MESSAGES // 2:
                    await anyio.sleep(0.1)
            assert sum(router.stats.values()) >= before + MESSAGES // 2, dict(router.stats)
            # the exit still serves the victim (and the intruder's own session)
            for tunnel, text in ((victim, b"victim"), (rogue, b"rogue")):
                assert tunnel.runner is not None
                udp = tunnel.runner.bind_udp()
                await udp.sendto(text, IPv4Address("127.0.0.1"), port)
                with anyio.fail_after(15):
                    data, _ = await udp.receive()
                assert data == text
            assert b"victim" in seen
