"""Under Poisson pacing the tunnel fills each slot with its newest uplink packets."""

from __future__ import annotations

from pathlib import Path

import anyio

from smolmix_cli.tunnel.tunnel import Tunnel
from tests.tunnel.conftest import harness
from tests.tunnel.service_checks import download


def test_paced_download_sends_about_one_ack_message_per_slot(tmp_path: Path) -> None:
    """Without the hold every downlink segment's ACK became a message queued behind the
    slots (as many messages up as packets down); held in the tunnel, the lone ACKs that
    queue during one slot leave as one."""

    async def main() -> None:
        with anyio.fail_after(60):
            async with harness(tmp_path) as h:
                options = h.options(poisson=True, cover=False, sending_delay=0.02)
                async with Tunnel.open(h.network, options) as tunnel:
                    await download(tunnel, 128 * 1024)
                    session = tunnel.session
                    assert session is not None
                    link = session.link
                    assert link.hold_for_slots
                    assert link.device.acks_coalesced >= 10
                    assert link.messages_up < 0.5 * link.packets_down

    anyio.run(main)
