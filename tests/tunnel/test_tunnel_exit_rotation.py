"""Exit rotation on a local network with three exits: silent and unroutable exits are left
within the per-attempt budget and the tunnel still comes up well inside its boot budget."""

from __future__ import annotations

import random
import time
from pathlib import Path

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from smolmix_cli.bootstrap import directory_client, fetch_topology
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.topology.topology import SupportedRoles
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions, exit_ids
from smolmix_cli.testnet.shape import ENTRY_ID
from smolmix_cli.tunnel.errors import TunnelUnavailable
from smolmix_cli.tunnel.exits import SKIP_UNROUTABLE, discover_exits, exit_order
from smolmix_cli.tunnel.options import for_local_network
from smolmix_cli.tunnel.tunnel import Tunnel, TunnelState

ATTEMPT = 2.0  # seconds per exit attempt in these tests


def _key() -> bytes:
    return Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_sequential_walk_skips_silent_exits_and_comes_up_in_budget(tmp_path: Path) -> None:
    local = LocalNetwork(
        LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, seed=5, exits=3, demo_origin=False)
    )

    async def main() -> None:
        with anyio.fail_after(90):
            async with anyio.create_task_group() as tg:
                network = await tg.start(local.serve)
                state = local.directory_state
                assert state is not None
                good, silent_a, silent_b = exit_ids(3)
                silent: list[str] = []
                for node_id in (silent_a, silent_b):  # an IPR address nobody answers to
                    real = local.exits[node_id].address
                    fake = Recipient(_key(), real.encryption_key, real.gateway)
                    state.update_node(node_id, ipr_address=str(fake))
                    silent.append(str(fake))
                # the entry gateway claims an exit IPR behind a gateway nobody knows
                unknown = Recipient(_key(), bytes(range(32)), _key())
                state.update_node(
                    ENTRY_ID,
                    ipr_address=str(unknown),
                    supported_roles=SupportedRoles(entry=True, exit_ipr=True),
                )

                topology = await fetch_topology(network, 10)
                discovery = await discover_exits(directory_client(network), topology)
                assert discovery.skipped[SKIP_UNROUTABLE] == 1
                assert len(discovery.candidates) == 3
                seed = next(
                    s
                    for s in range(1000)
                    if [c.key for c in exit_order(discovery.candidates, random.Random(s))][:2]
                    in (silent, silent[::-1])
                )
                reasons: list[str] = []
                options = for_local_network(exit_attempt_timeout=ATTEMPT, exit_race=1)
                started = time.monotonic()
                async with Tunnel.open(network, options, rng=random.Random(seed)) as tunnel:

                    async def watch() -> None:
                        while True:
                            if not reasons or reasons[-1] != tunnel.reason:
                                reasons.append(tunnel.reason)
                            await anyio.sleep(0.01)

                    tg.start_soon(watch)
                    await tunnel.wait_ready(30)
                    took = time.monotonic() - started
                    assert tunnel.exit is not None
                    assert tunnel.exit.key == str(local.exits[good].address)
                    assert sorted(tunnel.snapshot().exits_failed) == sorted(silent)
                    tg.cancel_scope.cancel()
                # two silent attempts at one budget each (v9 exits), then a fast connect
                assert 2 * ATTEMPT <= took < 2 * ATTEMPT + 10
                walk = "\n".join(reasons)
                assert "1 gateway not in the topology" in walk
                for key in silent:
                    short = f"{key.split('.')[0][:8]}..@{key.split('@')[1][:8]}"
                    assert f"failed: exit {short}: no ConnectSuccess in {ATTEMPT:g} s" in walk
                assert "(3/3;" in walk

    anyio.run(main)


def test_an_exit_without_a_route_fails_at_once(tmp_path: Path) -> None:
    local = LocalNetwork(
        LocalNetworkOptions(tmp_path / "net", mean_delay_ms=0.0, seed=5, demo_origin=False)
    )

    async def main() -> None:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                network = await tg.start(local.serve)
                unknown = Recipient(_key(), bytes(range(32)), _key())
                options = for_local_network(ipr=str(unknown), connect_timeout=30.0)
                started = time.monotonic()
                async with Tunnel.open(network, options) as tunnel:
                    with pytest.raises(TunnelUnavailable):
                        await tunnel.wait_ready(30)
                    assert tunnel.state is TunnelState.FAILED
                    assert tunnel.snapshot().exits_failed == (str(unknown),)
                assert time.monotonic() - started < 10  # not the 30 s connect timeout
                tg.cancel_scope.cancel()

    anyio.run(main)
