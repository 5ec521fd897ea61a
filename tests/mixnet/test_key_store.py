"""Key store: persistence, permissions, atomic writes and typed errors for bad files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from smolmix_cli.mixnet.client.key_store import (
    CLIENT_KEYS_FILE,
    GATEWAYS_FILE,
    CorruptKeyFile,
    KeyStore,
    KeyStoreError,
    default_key_dir,
)
from smolmix_cli.mixnet.gateway.shared_key import SharedKey


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_survive_reopen_with_owner_only_permissions(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "keys"
    store = KeyStore.open(directory)
    assert not store.has_client_keys()
    keys = store.client_keys()
    assert store.client_keys() is keys  # generated once
    gateway = os.urandom(32)
    shared = SharedKey(os.urandom(32))
    store.set_gateway_key(gateway, shared)
    store.set_active_gateway(gateway)

    assert _mode(directory) == 0o700
    assert _mode(directory / CLIENT_KEYS_FILE) == 0o600
    assert _mode(directory / GATEWAYS_FILE) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == [CLIENT_KEYS_FILE, GATEWAYS_FILE]

    again = KeyStore.open(directory)
    loaded = again.client_keys()
    assert loaded.identity == keys.identity
    assert loaded.encryption == keys.encryption
    assert loaded.ack_key == keys.ack_key
    assert again.gateway_key(gateway) == shared
    assert again.active_gateway == gateway
    assert "private" not in repr(loaded) and keys.ack_key.hex() not in repr(loaded)

    again.set_gateway_key(gateway, None)
    assert KeyStore.open(directory).gateway_key(gateway) is None


def test_ephemeral_store_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = KeyStore.ephemeral()
    store.client_keys()
    store.set_gateway_key(b"\x01" * 32, SharedKey(b"\x02" * 32))
    store.set_active_gateway(b"\x01" * 32)
    assert not store.persistent and list(tmp_path.iterdir()) == []
    assert KeyStore.ephemeral().client_keys().identity != store.client_keys().identity


def test_loose_directory_permissions_are_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    KeyStore.open(directory)
    assert _mode(directory) == 0o700


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe not utf8",
        b"{not json",
        b"[1, 2]",
        b'{"version": 99}',
        b'{"version": 1}',
        json.dumps(
            {
                "version": 1,
                "identity_ed25519_private": "0OIl",  # not base58
                "encryption_x25519_private": "x",
                "ack_key_aes128": "x",
            }
        ).encode(),
        json.dumps(
            {
                "version": 1,
                "identity_ed25519_private": "2",  # one byte
                "encryption_x25519_private": "2",
                "ack_key_aes128": "2",
            }
        ).encode(),
    ],
)
def test_corrupt_client_keys_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CLIENT_KEYS_FILE).write_bytes(content)
    with pytest.raises(CorruptKeyFile) as info:
        KeyStore.open(tmp_path)
    assert info.value.path == tmp_path / CLIENT_KEYS_FILE
    assert str(tmp_path / CLIENT_KEYS_FILE) in str(info.value)
    # The bad file is left for the user to inspect, not overwritten.
    assert (tmp_path / CLIENT_KEYS_FILE).read_bytes() == content


@pytest.mark.parametrize(
    "value",
    [
        {"version": 1, "active": "xyz", "shared_keys": {}},
        {"version": 1, "active": None, "shared_keys": []},
        {"version": 1, "active": None, "shared_keys": {"abc": "def"}},
    ],
)
def test_corrupt_gateways_file(tmp_path: Path, value: object) -> None:
    (tmp_path / GATEWAYS_FILE).write_text(json.dumps(value))
    with pytest.raises(CorruptKeyFile):
        KeyStore.open(tmp_path)


def test_unusable_directory_is_typed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(KeyStoreError):
        KeyStore.open(blocker)
    with pytest.raises(KeyStoreError):
        KeyStore.open(blocker / "below")


def test_no_temp_files_left_after_many_writes(tmp_path: Path) -> None:
    store = KeyStore.open(tmp_path)
    for i in range(20):
        store.set_gateway_key(bytes([i]) * 32, SharedKey(bytes([i + 1]) * 32))
    assert sorted(p.name for p in tmp_path.iterdir()) == [GATEWAYS_FILE]
    assert len(KeyStore.open(tmp_path)._gateway_keys) == 20


def test_default_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_key_dir() == tmp_path / "smolmix" / "client"
