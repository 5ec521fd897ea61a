"""Each fault of the mainnet shape on the wire, met by the client's own code."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import anyio

from smolmix_cli.ipr.client_logic import (
    ClientConfig,
    Connected,
    ConnectFailed,
    IprClient,
    SendToIpr,
    version_for_exit,
)
from smolmix_cli.ipr.messages import V9, V10
from smolmix_cli.mixnet.address import Recipient
from smolmix_cli.mixnet.client.client import ClientConfig as MixnetConfig
from smolmix_cli.mixnet.client.client import MixnetClient
from smolmix_cli.mixnet.client.key_store import KeyStore
from smolmix_cli.mixnet.directory.nym_api import NymApiClient
from smolmix_cli.mixnet.topology.topology import NoUsableRoute, Topology
from smolmix_cli.testnet.network import LocalNetwork, LocalNetworkOptions
from smolmix_cli.testnet.shape import ENTRY_ID, FIRST_DECOY_ID, MAINNET, Fault, NetworkShape
from smolmix_cli.tunnel.exits import discover_exits

FAST = MixnetConfig.fast(keepalive_interval=None)


def _shape(**counts: int) -> NetworkShape:
    faults = {kind: counts.get(kind.name.lower(), 0) for kind in Fault}
    return dataclasses.replace(MAINNET, faults=faults, decoys=20, entry_gateways=1)


def _only(topology: Topology, *gateway_ids: int) -> Topology:
    """The topology with just these gateways to choose from (in the rewarded set)."""
    rewarded = dataclasses.replace(
        topology.rewarded_set, entry_gateways=gateway_ids, exit_gateways=()
    )
    return dataclasses.replace(topology, rewarded_set=rewarded)


def _by_fault(local: LocalNetwork, fault: Fault) -> int:
    return next(i for i, f in local.faults.items() if f is fault)


def test_faulty_gateways_are_skipped_for_the_next_one(tmp_path: Path) -> None:
    shape = _shape(bad_cert=1, zk_nym=1, close_after_hello=1, full=1, dead_gateway=1)
    local = LocalNetwork(LocalNetworkOptions(tmp_path, mean_delay_ms=0.0, shape=shape))

    async def main() -> None:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                network = await tg.start(local.serve)
                tls = network.ssl_context()
                api = NymApiClient(network.api_urls, ssl_context=tls, timeout=5)
                topology = await api.topology()

                # bad certificate on wss: the same gateway over ws
                bad_cert = local.specs[_by_fault(local, Fault.BAD_CERT)].identity.public_bytes
                async with MixnetClient.start(
                    topology, gateway=bad_cert, ssl_context=tls, config=FAST
                ) as client:
                    (first, why), *_, (last, outcome) = client.gateways_tried
                    assert " at wss://localhost:" in first and "CERTIFICATE" in why.upper()
                    assert " at ws://" in last and outcome == "connected"
                    await client.send(client.address, b"over real nodes only")
                    assert (await client.receive(timeout=10)).data == b"over real nodes only"

                for fault, reason in (
                    (Fault.ZK_NYM, "zk-nym"),
                    (Fault.CLOSE_AFTER_HELLO, ""),
                    (Fault.FULL, ""),
                    (Fault.DEAD_GATEWAY, "cannot connect"),
                ):
                    node_id = FIRST_DECOY_ID if fault is Fault.DEAD_GATEWAY else None
                    node_id = node_id or _by_fault(local, fault)
                    faulty = topology.nodes[node_id]
                    store = KeyStore.ephemeral()
                    store.set_active_gateway(faulty.identity)  # remembered: tried first
                    async with MixnetClient.start(
                        _only(topology, node_id, ENTRY_ID),
                        key_store=store,
                        ssl_context=tls,
                        config=FAST,
                    ) as client:
                        *skipped, (_last, outcome) = client.gateways_tried
                        assert outcome == "connected", fault
                        assert client.gateway.node_id == ENTRY_ID, fault
                        assert skipped and all(reason in why.lower() for _, why in skipped), (
                            fault,
                            skipped,
                        )
                counters = {
                    f: local.gateways[_by_fault(local, f)].counters
                    for f in (Fault.CLOSE_AFTER_HELLO, Fault.FULL, Fault.ZK_NYM)
                }
                assert counters[Fault.CLOSE_AFTER_HELLO]["ws_closed_after_hello"] >= 1
                assert counters[Fault.FULL]["ws_refused"] >= 1
                assert counters[Fault.ZK_NYM]["clients_registered"] >= 1
                local.stop()

    anyio.run(main)


async def _connect(
    client: MixnetClient, ipr: Recipient, version: int, config: ClientConfig
) -> tuple[Connected | ConnectFailed, float]:
    """One IPR connect as the tunnel makes it (v10 falls back to v9 on time)."""
    ipr_client = IprClient(None, config)
    start = anyio.current_time()
    ipr_client.connect(start, datetime.now(UTC), version=version)
    while True:
        for transmit in ipr_client.pop_transmits():
            if isinstance(transmit, SendToIpr):
                await client.send(ipr, transmit.payload, reply_surbs=transmit.reply_surbs)
        for event in ipr_client.pop_events():
            if isinstance(event, Connected | ConnectFailed):
                return event, anyio.current_time() - start
        deadline = ipr_client.poll_deadline()
        wait = 1.0 if deadline is None else max(0.0, deadline - anyio.current_time())
        with anyio.move_on_after(wait):
            message = await client.receive()
            ipr_client.on_reply(message.data, anyio.current_time())
        ipr_client.handle_timeout(anyio.current_time())


def test_faulty_exits_answer_as_their_kind(tmp_path: Path) -> None:
    shape = dataclasses.replace(
        _shape(silent=1, nr_only=1, unroutable=1, v9_only=1, slow=1), slow_delay_s=1.0
    )
    local = LocalNetwork(LocalNetworkOptions(tmp_path, mean_delay_ms=0.0, shape=shape))
    config = ClientConfig(connect_timeout=2.0, v10_fallback_after=1.0)

    async def main() -> None:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                network = await tg.start(local.serve)
                tls = network.ssl_context()
                api = NymApiClient(network.api_urls, ssl_context=tls, timeout=5)
                topology = await api.topology()
                found = await discover_exits(api, topology)
                by_gateway = {c.ipr.gateway: c for c in found.candidates}

                def candidate(fault: Fault | None) -> Recipient:
                    node_id = 2 if fault is None else _by_fault(local, fault)
                    return by_gateway[local.specs[node_id].identity.public_bytes].ipr

                for fault in (Fault.NR_ONLY, Fault.UNROUTABLE):
                    gateway = local.specs[_by_fault(local, fault)].identity.public_bytes
                    assert gateway not in by_gateway, fault
                unroutable = local.specs[_by_fault(local, Fault.UNROUTABLE)].identity.public_bytes
                try:
                    topology.node_by_identity(unroutable)
                    raise AssertionError("an exit-providers-only gateway is in the topology")
                except NoUsableRoute:
                    pass
                v9_only = by_gateway[
                    local.specs[_by_fault(local, Fault.V9_ONLY)].identity.public_bytes
                ]
                assert version_for_exit(v9_only.build_version) == V10

                async with MixnetClient.start(
                    topology, gateway=local.specs[ENTRY_ID].identity.public_bytes, config=FAST
                ) as client:
                    event, took = await _connect(client, candidate(None), V9, config)
                    assert isinstance(event, Connected) and took < 1.0
                    event, took = await _connect(client, candidate(Fault.SILENT), V9, config)
                    assert isinstance(event, ConnectFailed) and event.reason == "timeout"
                    assert took >= 2.0
                    event, took = await _connect(client, v9_only.ipr, V10, config)
                    assert isinstance(event, Connected) and event.version == V9
                    assert 1.0 <= took < 2.0
                    event, took = await _connect(client, candidate(Fault.SLOW), V9, config)
                    assert isinstance(event, Connected) and 1.0 <= took < 2.0
                stats = {
                    f: local.exits[_by_fault(local, f)].stats()
                    for f in local.faults.values()
                    if f in (Fault.SILENT, Fault.V9_ONLY, Fault.SLOW)
                }
                assert stats[Fault.SILENT]["exit_dropped (silent)"] >= 1
                assert stats[Fault.V9_ONLY]["exit_dropped (v10 request, speaks v9)"] >= 1
                assert stats[Fault.SLOW]["exit_delayed (slow)"] >= 1
                assert _by_fault(local, Fault.NR_ONLY) not in local.exits
                local.stop()

    anyio.run(main)
