"""Exit racing on a local network with five exits, three of them silent: the race picks a
live exit, the other live exit is released (its IPR holds no allocation), every attempt
ends within its budget, and a walk over only dead exits fails with a one-line reason."""

from __future__ import annotations

import random
import time
from pathlib import Path

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.session.factory import wait_ready_reporting
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions, exit_ids
from smolmix_cli.tunnel.errors import IprHandshakeFailed
from smolmix_cli.tunnel.options import for_local_network
from smolmix_cli.tunnel.tunnel import Tunnel, TunnelState

ATTEMPT = 2.0  # seconds per exit attempt (the local exits are v9: one budget each)


def _silence(local: LocalNetwork, node_id: int) -> str:
    """List an IPR address nobody answers to for this exit (its gateway is real)."""
    assert local.directory_state is not None
    real = local.exits[node_id].address
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    fake = Recipient(key, real.encryption_key, real.gateway)
    local.directory_state.update_node(node_id, ipr_address=str(fake))
    return str(fake)


def test_race_picks_a_live_exit_releases_the_rest_and_fails_clearly_when_all_are_dead(
    tmp_path: Path,
) -> None:
    local = LocalNetwork(
        LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, seed=7, exits=5, demo_origin=False)
    )

    async def main() -> None:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                network = await tg.start(local.serve)
                ids = exit_ids(5)
                live = {str(local.exits[i].address): local.exits[i] for i in ids[:2]}
                dead = [_silence(local, i) for i in ids[2:]]
                options = for_local_network(exit_attempt_timeout=ATTEMPT, exit_race=5)
                started = time.monotonic()
                verbose: list[str] = []  # what -v prints (the session factory's ready gate)
                async with Tunnel.open(network, options, rng=random.Random(3)) as tunnel:
                    await wait_ready_reporting(tunnel, 20, verbose.append)
                    assert time.monotonic() - started < ATTEMPT + 8  # not a walk of budgets
                    assert tunnel.exit is not None and tunnel.exit.key in live
                    winner = tunnel.exit.key
                    # every loser ends within its own budget: only the winner's link is left
                    with anyio.fail_after(ATTEMPT + 5):
                        while len(tunnel._links) > 1 or len(tunnel.exits_tried) < 5:
                            await anyio.sleep(0.05)
                        (loser,) = set(live) - {winner}
                        while live[loser].router._clients:  # the Disconnect arrives
                            await anyio.sleep(0.05)
                    assert len(live[winner].router._clients) == 1
                    assert sorted(tunnel.exits_failed) == sorted(dead)
                    status = tunnel.snapshot()
                    tried = "\n".join(status.exits_tried)
                    for key in dead:
                        assert f"{key}: no ConnectSuccess in {ATTEMPT:g} s" in tried
                    assert f"{winner}: connected in" in tried
                    assert f"{loser}: connected after the race was won; disconnected" in tried
                    assert status.gateways_tried and "connected" in status.gateways_tried[-1]
                    assert tunnel.state is TunnelState.READY
                    shown = "\n".join(verbose)
                    assert "tunnel: gateway " in shown and ": connected" in shown
                    for key in [*live, *dead]:  # every exit tried is named by the time it is ready
                        short = f"{key.split('.')[0][:8]}..@{key.split('@')[1][:8]}"
                        assert f"tunnel: exit {short}: " in shown

                for i in ids[:2]:
                    dead.append(_silence(local, i))
                options = for_local_network(exit_attempt_timeout=ATTEMPT, exit_race=3)
                started = time.monotonic()
                async with Tunnel.open(network, options) as tunnel:
                    with pytest.raises(IprHandshakeFailed) as failure:
                        await tunnel.wait_ready(20)
                    took = time.monotonic() - started
                    assert str(failure.value) == (
                        f"no exit connected (5 tried of 5: no ConnectSuccess in {ATTEMPT:g} s (x5))"
                    )
                    assert sorted(tunnel.exits_failed) == sorted(dead)
                # two waves of a race of three, each one attempt budget
                assert 2 * ATTEMPT <= took < 2 * ATTEMPT + 8
                tg.cancel_scope.cancel()

    anyio.run(main)
