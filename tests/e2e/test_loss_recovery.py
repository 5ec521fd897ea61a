"""A download through lossy mix nodes: both mixnet clients resend what was not acked.

The local network's exit IPR resends reply fragments whose SURB-ACK does not
come (issue 20 item 3), so downlink loss does not fall on TCP alone; bench/loss.py
measures the throughput, this only checks that the machinery works end to end.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio

from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.testnet.origin.http import bytes_sha256
from smolmix_cli.tunnel.options import for_local_network
from smolmix_cli.tunnel.tunnel import Tunnel

SIZE = 256 * 1024
LOSS = 0.10


def test_download_is_byte_exact_at_ten_percent_loss_per_mix_node(tmp_path: Path) -> None:
    async def main() -> None:
        local = LocalNetwork(
            LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, loss=LOSS, seed=11)
        )
        digest, received = hashlib.sha256(), 0

        async def sink(data: bytes) -> None:
            nonlocal received
            received += len(data)
            digest.update(data)

        # Generous: about 10 s on an idle machine, minutes under a loaded CI.
        with anyio.fail_after(300):
            async with anyio.create_task_group() as tg:
                network = await tg.start(local.serve)
                assert network.ca_pem is not None
                ca = tmp_path / "ca.pem"
                ca.write_text(network.ca_pem)
                async with Tunnel.open(network, for_local_network()) as tunnel:
                    await tunnel.wait_ready(120)
                    async with HttpClient(tunnel) as http:
                        await http.fetch(
                            f"https://demo.smolmix.test/bytes/{SIZE}",
                            sink,
                            FetchOptions(cafile=str(ca)),
                        )
                    exit_ipr = next(iter(local.exits.values()))
                    exit_client = exit_ipr.mixnet_client
                    assert exit_client is not None
                    resent = exit_client.stats.reply_retransmissions
                    # The router's SURB count stays the client's: every SURB a resend
                    # took was debited (the shell syncs every 0.5 s at the latest).
                    [tag] = exit_ipr._tags
                    with anyio.fail_after(10):
                        while exit_ipr.router.surbs_available(tag) != (
                            exit_client.reply_surbs_available(tag)
                        ):
                            await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
        assert received == SIZE and digest.hexdigest() == bytes_sha256(SIZE)
        assert sum(n.counters["dropped_loss"] for n in local.mixnodes.values()) > 0
        assert resent > 0  # the exit resent reply fragments whose ack did not come

    anyio.run(main)
