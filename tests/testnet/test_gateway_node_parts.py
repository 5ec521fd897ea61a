"""Sans-io parts of the gateway: the offline message store and the registry state file."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.mixnet.gateway.gateway_connection import ClientRecord, GatewayRegistry
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from smolmix_cli.testnet.nodes.message_store import MessageStore
from smolmix_cli.testnet.nodes.registry_state import (
    RegistryStateError,
    load_clients,
    load_registry,
    registry_to_json,
    save_registry,
)

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def test_store_pushes_in_order_and_forgets_after_take() -> None:
    store = MessageStore(ttl_s=10, per_client=5, total=10)
    store.put(A, b"1", 0.0)
    store.put(A, b"2", 1.0)
    store.put(B, b"x", 1.0)
    assert store.take(A, 2.0) == [b"1", b"2"]
    assert store.take(A, 2.0) == []
    assert len(store) == 1 and store.stored_for(B) == 1


def test_store_expires_after_ttl() -> None:
    store = MessageStore(ttl_s=10, per_client=5, total=10)
    store.put(A, b"old", 0.0)
    store.put(A, b"new", 5.0)
    assert store.take(A, 10.5) == [b"new"]
    assert store.expired == 1


def test_store_total_bound_evicts_the_globally_oldest() -> None:
    store = MessageStore(ttl_s=100, per_client=10, total=3)
    store.put(A, b"a1", 0.0)
    store.put(B, b"b1", 1.0)
    store.put(C, b"c1", 2.0)
    store.put(C, b"c2", 3.0)
    assert store.take(A, 4.0) == []
    assert store.take(B, 4.0) == [b"b1"]
    assert store.take(C, 4.0) == [b"c1", b"c2"]
    assert store.evicted == 1


@given(
    st.lists(st.tuples(st.sampled_from([A, B, C]), st.binary(max_size=3)), max_size=80),
    st.integers(1, 5),
    st.integers(1, 12),
)
def test_store_respects_both_bounds_and_keeps_the_newest(
    puts: list[tuple[bytes, bytes]], per_client: int, total: int
) -> None:
    store = MessageStore(ttl_s=1000, per_client=per_client, total=total)
    for i, (client, message) in enumerate(puts):
        store.put(client, message + bytes([i % 256]), float(i))
        assert len(store) <= total
        assert all(store.stored_for(c) <= per_client for c in (A, B, C))
    for client in (A, B, C):
        mine = [m + bytes([i % 256]) for i, (c, m) in enumerate(puts) if c == client]
        got = store.take(client, float(len(puts)))
        assert got == mine[len(mine) - len(got) :]  # a suffix: newest kept, order kept


def _registry() -> GatewayRegistry:
    registry = GatewayRegistry(Ed25519PrivateKey.generate())
    registry.clients[A] = ClientRecord(SharedKey(bytes(range(32))), 12345, 1_700_000_000)
    registry.clients[B] = ClientRecord(SharedKey(bytes(32)), 0, None)
    return registry


def test_registry_state_roundtrip_with_private_mode(tmp_path: Path) -> None:
    registry = _registry()
    path = tmp_path / "sub" / "registry.json"
    save_registry(registry, path)
    assert path.stat().st_mode & 0o777 == 0o600
    fresh = GatewayRegistry(registry.identity)
    assert load_registry(fresh, path) is True
    assert fresh.clients == registry.clients
    assert load_registry(fresh, tmp_path / "missing.json") is False
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp files left


def test_registry_state_refuses_other_gateway_and_garbage(tmp_path: Path) -> None:
    document = registry_to_json(_registry())
    with pytest.raises(RegistryStateError):
        load_clients(GatewayRegistry(Ed25519PrivateKey.generate()), document)
    path = tmp_path / "r.json"
    path.write_text("{nope")
    with pytest.raises(RegistryStateError):
        load_registry(_registry(), path)


@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=8), c),
        max_leaves=10,
    )
)
def test_registry_state_loader_raises_only_its_error(data: object) -> None:
    registry = GatewayRegistry(Ed25519PrivateKey.generate())
    for candidate in (
        data,
        {"version": 1, "gateway": registry.identity_public.hex(), "clients": data},
    ):
        with contextlib.suppress(RegistryStateError):
            load_clients(registry, candidate)


def test_registry_state_is_json_with_hex_keys() -> None:
    document = json.loads(json.dumps(registry_to_json(_registry())))
    assert document["clients"][A.hex()]["bandwidth"] == 12345
    assert document["clients"][B.hex()]["last_auth_timestamp"] is None


def _record() -> ClientRecord:
    return ClientRecord(SharedKey(bytes(32)))


def test_registrations_are_bounded_least_recently_used_first_never_a_connected_one() -> None:
    registry = GatewayRegistry(Ed25519PrivateKey.generate(), max_registered=3)
    clients = [bytes([i]) * 32 for i in range(6)]
    registry.connected.add(clients[0])
    for t, client in enumerate(clients[:4]):
        registry.clients[client] = _record()
        registry.touch(client, 1000.0 + t)
    # 4 > 3: the least recently used that is not connected (clients[1]) went
    assert list(registry.clients) == [clients[0], clients[2], clients[3]]
    registry.touch(clients[2], 2000.0)  # used again: now the most recent
    registry.clients[clients[4]] = _record()
    registry.touch(clients[4], 2001.0)
    assert list(registry.clients) == [clients[0], clients[2], clients[4]]  # clients[3] went
    assert registry.forgotten == 2


def test_registrations_unused_for_their_max_age_are_forgotten() -> None:
    registry = GatewayRegistry(Ed25519PrivateKey.generate(), registration_max_age_s=100.0)
    registry.clients[A] = _record()  # loaded from the state file: ages from its next use
    registry.clients[B] = _record()
    registry.touch(B, 1000.0)
    registry.clients[C] = _record()
    registry.touch(C, 1050.0)
    registry.prune(1120.0)  # B unused for 120 s
    assert list(registry.clients) == [A, C]
    registry.prune(1200.0)
    assert list(registry.clients) == [A]


def test_a_registration_is_kept_when_every_other_one_is_connected() -> None:
    registry = GatewayRegistry(Ed25519PrivateKey.generate(), max_registered=2)
    for client in (A, B):
        registry.clients[client] = _record()
        registry.touch(client, 1000.0)
        registry.connected.add(client)
    registry.clients[C] = _record()
    registry.touch(C, 1001.0)  # over the bound for now, but nobody may go
    assert list(registry.clients) == [A, B, C]
