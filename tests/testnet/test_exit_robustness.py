"""The exit survives what a hostile or broken client sends, and serves everyone else meanwhile.

Garbage messages (random bytes, bad bincode, wrong versions, no reply SURBs)
are dropped and counted; a packet whose source is another client's address,
or no client's, never reaches the NAT.
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address
from pathlib import Path

import anyio
import pytest

from smolmix_cli.ipr.bundle import encode_bundle
from smolmix_cli.ipr.lp_frame import LpFrame, MsgType
from smolmix_cli.ipr.messages import V8, V9, DataRequest, IpPacketRequest
from tests.testnet.exit_tunnel import ExitNet, udp_packet, victim_and_rogue

pytestmark = pytest.mark.anyio


async def wait_for_stats(net: ExitNet, expected: dict[str, int], timeout: float = 10) -> None:
    router = net.local.exits[2].router

    def counts() -> dict[str, int]:
        return {k: sum(router.stats[part] for part in k.split("+")) for k in expected}

    with anyio.move_on_after(timeout):
        while any(counts()[k] < v for k, v in expected.items()):
            await anyio.sleep(0.02)
    await anyio.sleep(0.2)  # nothing more should arrive
    assert counts() == expected, dict(router.stats)
    assert router.stats["version"] >= 4


async def test_garbage_and_spoofed_sources_are_dropped_and_counted(tmp_path: Path) -> None:
    rng = random.Random(5)
    with anyio.fail_after(50):
        async with victim_and_rogue(tmp_path) as (net, port, seen, victim, rogue):
            ipr = net.ipr()
            loop = IPv4Address("127.0.0.1")
            assert victim.ipv4 is not None and rogue.ipv4 is not None
            assert victim.ipv4 != rogue.ipv4
            stream_id = rogue.ipr_client.stream_id
            assert stream_id is not None

            def framed(request: bytes, seq: int = 7) -> bytes:
                return LpFrame(stream_id, MsgType.DATA, seq, request).encode()

            good = IpPacketRequest(V9, DataRequest(encode_bundle([b"\x45" + bytes(30)]))).encode()
            garbage = [
                rng.randbytes(1),
                rng.randbytes(15),
                b"\xff" * 300,
                framed(rng.randbytes(40)),  # an LP frame around bad bincode
                framed(good + b"\x00"),  # trailing bytes are rejected
                framed(b"\x09\x02" + good[2:]),  # service provider 2 is not the IPR
            ]
            versions = [
                framed(IpPacketRequest(V8, DataRequest(b"")).encode()),  # v8 inside LP
                IpPacketRequest(V9, DataRequest(b"")).encode(),  # v9 without LP
                framed(b"\x07\x01" + good[2:]),  # v7: not spoken
                framed(b"\x63\x01" + good[2:]),  # v99
            ]
            for payload in garbage + versions:
                await rogue.client.send(ipr, payload, reply_surbs=1)
            await rogue.client.send(ipr, framed(good), reply_surbs=0)  # not repliable: no tag
            # bundles of broken IP packets, a packet from the victim's address, and from nobody's
            now = anyio.current_time()
            rogue.ipr_client.send_packet(b"\x45\x00\x00", now)  # truncated IPv4
            ipv6_tcp_cut = b"\x60" + bytes(5) + b"\x06" + bytes(39)  # TCP header missing
            rogue.ipr_client.send_packet(ipv6_tcp_cut, now)
            spoofed = udp_packet(victim.ipv4, loop, 40000, port, b"spoofed")
            rogue.ipr_client.send_packet(spoofed, now)
            nobody = udp_packet(IPv4Address("10.0.250.250"), loop, 40000, port, b"nobody")
            rogue.ipr_client.send_packet(nobody, now)
            await rogue._flush()
            # random bytes mostly fail at the version byte: both counts are drops
            await wait_for_stats(
                net,
                {
                    "garbage+version": len(garbage) + len(versions),
                    "no sender tag": 1,
                    "bad ip packet": 2,
                    "spoofed source": 1,
                    "unknown source": 1,
                },
            )
            # the exit still serves both clients, and the spoofed datagrams never left it
            for tunnel, text in ((victim, b"victim"), (rogue, b"rogue")):
                assert tunnel.runner is not None
                udp = tunnel.runner.bind_udp()
                await udp.sendto(text, loop, port)
                data, _ = await udp.receive()
                assert data == text
            assert seen == [b"victim", b"rogue"]
