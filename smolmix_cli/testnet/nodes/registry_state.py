"""A gateway's client registry on disk, so a restarted gateway still knows its clients.

nym-node keeps shared keys in a database; clients then authenticate (v2) with the
key they stored at registration. Without this a restarted local gateway would
refuse every returning client with "not registered". One JSON file, written
atomically with mode 0600 (it holds the shared keys).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from smolmix_cli.mixnet.errors import MalformedData, MixnetError
from smolmix_cli.mixnet.gateway.session import ClientRecord, GatewayRegistry
from smolmix_cli.mixnet.gateway.shared_key import SharedKey

FORMAT_VERSION = 1


class RegistryStateError(MalformedData):
    """A registry state file that does not parse."""


def registry_to_json(registry: GatewayRegistry) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "gateway": registry.identity_public.hex(),
        "clients": {
            identity.hex(): {
                "shared_key": record.shared_key.raw.hex(),
                "bandwidth": record.bandwidth,
                "last_auth_timestamp": record.last_auth_timestamp,
            }
            for identity, record in registry.clients.items()
        },
    }


def load_clients(registry: GatewayRegistry, data: Any) -> None:
    """Put the clients of a state document into `registry` (replacing same identities)."""
    try:
        if data["version"] != FORMAT_VERSION:
            raise RegistryStateError(f"unknown registry state version {data['version']!r}")
        if data["gateway"] != registry.identity_public.hex():
            raise RegistryStateError("registry state belongs to another gateway identity")
        for identity_hex, entry in data["clients"].items():
            identity = bytes.fromhex(identity_hex)
            timestamp = entry["last_auth_timestamp"]
            bandwidth = entry["bandwidth"]
            if len(identity) != 32 or not isinstance(bandwidth, int):
                raise RegistryStateError(f"bad client entry {identity_hex!r}")
            if timestamp is not None and not isinstance(timestamp, int):
                raise RegistryStateError(f"bad timestamp for {identity_hex!r}")
            registry.clients[identity] = ClientRecord(
                SharedKey(bytes.fromhex(entry["shared_key"])), bandwidth, timestamp
            )
    except RegistryStateError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, MixnetError) as exc:
        raise RegistryStateError(f"bad registry state: {exc!r}") from None


def save_registry(registry: GatewayRegistry, path: Path) -> None:
    """Write atomically (temp file + rename), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".registry-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(registry_to_json(registry), f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_registry(registry: GatewayRegistry, path: Path) -> bool:
    """Load `path` into `registry` if it exists; False when there is no file yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return False
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RegistryStateError(f"registry state is not JSON: {exc}") from None
    load_clients(registry, data)
    return True
