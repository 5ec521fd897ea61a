"""Reliability on the local network: loss at every mix node, and a gateway restart mid-run.

In-process: the LocalNetwork and the clients share one event loop, every socket is
loopback. Clients run with cover and Poisson traffic off and zero mix delay, so the
tests measure retransmission and reconnection, not traffic shaping.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anyio

from smolmix_cli.bootstrap import fetch_topology, start_client
from smolmix_cli.config import Network
from smolmix_cli.mixnet.client.client import ClientConfig
from smolmix_cli.mixnet.keys import decode_key_base58
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions

MIB = 1 << 20


def _gateway(network: Network, which: str) -> bytes:
    info = network.entry_gateway if which == "entry" else network.exit_gateway
    assert info is not None
    return decode_key_base58(info.identity, which)


def test_one_mib_arrives_byte_exact_with_ten_percent_loss_at_every_mix_node(tmp_path: Path) -> None:
    data = os.urandom(MIB)

    async def main() -> None:
        options = LocalNetworkOptions(tmp_path, mean_delay_ms=0.0, loss=0.10, seed=7)
        local = LocalNetwork(options)
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            with anyio.fail_after(75):
                topology = await fetch_topology(network, 10)
                # Paced at ~330 packets/s: without pacing the client's retransmission timers
                # run while its own outbox still holds the packets (reported to mixnet-client).
                config = ClientConfig.fast(poisson=True, message_sending_average_delay=0.003)
                async with (
                    start_client(
                        network, topology, config=config, gateway=_gateway(network, "entry")
                    ) as alice,
                    start_client(
                        network, topology, config=config, gateway=_gateway(network, "exit")
                    ) as bob,
                ):
                    await alice.send(bob.address, data)
                    received = await bob.receive(timeout=75)
                    assert len(received.data) == MIB
                    assert hashlib.sha256(received.data).digest() == hashlib.sha256(data).digest()
                    assert alice.stats.retransmissions > 0  # the loss really happened
                    assert alice.stats.messages_failed == 0
            drops = sum(node.counters["dropped_loss"] for node in local.mixnodes.values())
            assert drops > 0
            tg.cancel_scope.cancel()

    anyio.run(main)


def test_client_survives_a_gateway_restart_without_losing_messages(tmp_path: Path) -> None:
    async def main() -> None:
        local = LocalNetwork(LocalNetworkOptions(tmp_path, mean_delay_ms=0.0))
        async with anyio.create_task_group() as tg:
            network = await tg.start(local.serve)
            with anyio.fail_after(60):
                topology = await fetch_topology(network, 10)
                config = ClientConfig.fast()
                async with start_client(network, topology, config=config) as client:
                    sent = [f"message {i}".encode() for i in range(12)]
                    got: list[bytes] = []

                    async def collect() -> None:
                        while len(got) < len(sent):
                            got.append((await client.receive()).data)

                    async with anyio.create_task_group() as inner:
                        inner.start_soon(collect)
                        for i, payload in enumerate(sent):
                            if i == 4:
                                await local.restart_gateway(1, down_for=0.5)
                            await client.send(client.address, payload)
                            await anyio.sleep(0.05)
                        with anyio.fail_after(50):
                            while len(got) < len(sent):
                                await anyio.sleep(0.05)
                    assert sorted(got) == sorted(sent)
                    assert client.stats.gateway_connects >= 2  # it did reconnect
            assert local.gateways[1].counters["clients_authenticated"] >= 1
            tg.cancel_scope.cancel()

    anyio.run(main)
