"""Where a client keeps its keys: a private directory, or memory only.

A client's address is its identity and encryption keys plus its gateway, and the
gateway knows it by the shared key from registration; losing either means a new
address or a new registration. So the files are written atomically (temp file,
fsync, rename), readable by the owner only (0600 in a 0700 directory), and a file
that does not parse raises `CorruptKeyFile` naming it instead of silently
replacing the keys.

Layout (JSON, base58 keys): `client-keys.json` {identity, encryption, ack_key},
`gateways.json` {active gateway, shared key per gateway identity}.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smolmix_cli.mixnet.base58 import b58decode, b58encode
from smolmix_cli.mixnet.errors import MixnetError
from smolmix_cli.mixnet.gateway.shared_key import SharedKey
from smolmix_cli.mixnet.keys import Ed25519KeyPair, X25519KeyPair

ACK_KEY_SIZE = 16
FORMAT_VERSION = 1
CLIENT_KEYS_FILE = "client-keys.json"
GATEWAYS_FILE = "gateways.json"


class KeyStoreError(MixnetError):
    """The key directory cannot be used (permissions, I/O)."""


class CorruptKeyFile(KeyStoreError):
    """A key file exists but does not hold what it should."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem} (move the file away to start with new keys)")
        self.path = path


@dataclass(frozen=True)
class ClientKeys:
    """The three long-term secrets of a client."""

    identity: Ed25519KeyPair
    encryption: X25519KeyPair
    ack_key: bytes

    @classmethod
    def generate(cls) -> ClientKeys:
        return cls(
            Ed25519KeyPair.generate(), X25519KeyPair.generate(), secrets.token_bytes(ACK_KEY_SIZE)
        )

    def __repr__(self) -> str:  # never print secrets
        return f"ClientKeys(identity={self.identity.public_base58()})"


def default_key_dir() -> Path:
    """`<XDG data dir>/smolmix/client`."""
    import platformdirs

    return Path(platformdirs.user_data_dir("smolmix", appauthor=False)) / "client"


class KeyStore:
    """Client keys and per-gateway shared keys; `path=None` keeps everything in memory."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._keys: ClientKeys | None = None
        self._gateway_keys: dict[bytes, SharedKey] = {}
        self._active_gateway: bytes | None = None
        if path is not None:
            self._prepare_dir(path)
            self._load()

    @classmethod
    def open(cls, path: Path | str | None = None) -> KeyStore:
        """The store in `path` (default: the XDG data dir), created if missing."""
        return cls(Path(path) if path is not None else default_key_dir())

    @classmethod
    def ephemeral(cls) -> KeyStore:
        return cls(None)

    @property
    def persistent(self) -> bool:
        return self.path is not None

    # -- client keys ------------------------------------------------------------------

    def client_keys(self) -> ClientKeys:
        """The stored keys, generated (and saved) on first use."""
        if self._keys is None:
            self._keys = ClientKeys.generate()
            self._save_client_keys()
        return self._keys

    def has_client_keys(self) -> bool:
        return self._keys is not None

    # -- gateways ---------------------------------------------------------------------

    @property
    def active_gateway(self) -> bytes | None:
        """The gateway this client registered with last (part of its address)."""
        return self._active_gateway

    def set_active_gateway(self, identity: bytes) -> None:
        self._active_gateway = bytes(identity)
        self._save_gateways()

    def gateway_key(self, gateway: bytes) -> SharedKey | None:
        return self._gateway_keys.get(bytes(gateway))

    def set_gateway_key(self, gateway: bytes, key: SharedKey | None) -> None:
        """Remember (or with None forget) the shared key for a gateway."""
        if key is None:
            self._gateway_keys.pop(bytes(gateway), None)
        else:
            self._gateway_keys[bytes(gateway)] = key
        self._save_gateways()

    # -- files ------------------------------------------------------------------------

    @staticmethod
    def _prepare_dir(path: Path) -> None:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = path.stat()
        except OSError as exc:
            raise KeyStoreError(f"cannot create key directory {path}: {exc}") from None
        if not stat.S_ISDIR(info.st_mode):
            raise KeyStoreError(f"{path} is not a directory")
        if info.st_mode & 0o077:
            try:
                path.chmod(0o700)
            except OSError as exc:
                raise KeyStoreError(f"cannot restrict {path} to its owner: {exc}") from None

    def _load(self) -> None:
        assert self.path is not None
        keys = _read_json(self.path / CLIENT_KEYS_FILE)
        if keys is not None:
            self._keys = _parse_client_keys(self.path / CLIENT_KEYS_FILE, keys)
        gateways = _read_json(self.path / GATEWAYS_FILE)
        if gateways is not None:
            self._active_gateway, self._gateway_keys = _parse_gateways(
                self.path / GATEWAYS_FILE, gateways
            )

    def _save_client_keys(self) -> None:
        if self.path is None or self._keys is None:
            return
        _write_json(
            self.path / CLIENT_KEYS_FILE,
            {
                "version": FORMAT_VERSION,
                "identity_ed25519_private": b58encode(self._keys.identity.private_bytes),
                "encryption_x25519_private": b58encode(self._keys.encryption.private_bytes),
                "ack_key_aes128": b58encode(self._keys.ack_key),
            },
        )

    def _save_gateways(self) -> None:
        if self.path is None:
            return
        _write_json(
            self.path / GATEWAYS_FILE,
            {
                "version": FORMAT_VERSION,
                "active": b58encode(self._active_gateway) if self._active_gateway else None,
                "shared_keys": {
                    b58encode(gw): b58encode(key.raw) for gw, key in self._gateway_keys.items()
                },
            },
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyStoreError(f"cannot read {path}: {exc}") from None
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptKeyFile(path, f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CorruptKeyFile(path, "not a JSON object")
    if value.get("version") != FORMAT_VERSION:
        raise CorruptKeyFile(path, f"unknown format version {value.get('version')!r}")
    return value


def _key_field(path: Path, obj: dict[str, Any], name: str, size: int) -> bytes:
    text = obj.get(name)
    if not isinstance(text, str):
        raise CorruptKeyFile(path, f"missing {name}")
    try:
        raw = b58decode(text)
    except MixnetError:
        raise CorruptKeyFile(path, f"{name} is not base58") from None
    if len(raw) != size:
        raise CorruptKeyFile(path, f"{name} must be {size} bytes, got {len(raw)}")
    return raw


def _parse_client_keys(path: Path, obj: dict[str, Any]) -> ClientKeys:
    identity = _key_field(path, obj, "identity_ed25519_private", 32)
    encryption = _key_field(path, obj, "encryption_x25519_private", 32)
    ack = _key_field(path, obj, "ack_key_aes128", ACK_KEY_SIZE)
    try:
        return ClientKeys(
            Ed25519KeyPair.from_private_bytes(identity),
            X25519KeyPair.from_private_bytes(encryption),
            ack,
        )
    except MixnetError as exc:
        raise CorruptKeyFile(path, str(exc)) from None


def _parse_gateways(path: Path, obj: dict[str, Any]) -> tuple[bytes | None, dict[bytes, SharedKey]]:
    active: bytes | None = None
    if obj.get("active") is not None:
        active = _key_field(path, obj, "active", 32)
    table = obj.get("shared_keys", {})
    if not isinstance(table, dict):
        raise CorruptKeyFile(path, "shared_keys is not an object")
    keys: dict[bytes, SharedKey] = {}
    for gateway_text, key_text in table.items():
        entry = {"gateway": gateway_text, "key": key_text}
        gateway = _key_field(path, entry, "gateway", 32)
        keys[gateway] = SharedKey(_key_field(path, entry, "key", 32))
    return active, keys


def _write_json(path: Path, value: dict[str, Any]) -> None:
    """Atomic, owner-only write: temp file in the same directory, fsync, rename."""
    data = (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise KeyStoreError(f"cannot write {path}: {exc}") from None
