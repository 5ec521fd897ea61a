"""Which network the user named, and where local state lives: no network config loaded.

`--network` (or `SMOLMIX_NETWORK`) names `mainnet`, `testnet` (the local network in
the state dir) or a network file. Naming it is all an attached command needs (its
session's socket is named after it, session/paths.py); reading it is config.py's, with
the network's dataclasses and the mainnet URL table, which such a command never loads.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP = "smolmix"
NETWORK_ENV = "SMOLMIX_NETWORK"
NETWORK_FILE = "network.json"


def state_dir() -> Path:
    """XDG state dir for smolmix (testnet state lives below it).

    Every testnet command asks, so on Linux the XDG rule is applied here (as platformdirs
    does): platformdirs imports tempfile and shutil, which an attached command never needs.
    """
    system: str = sys.platform  # a variable: mypy would narrow the comparison to this host
    if system.startswith("linux"):
        base = os.environ.get("XDG_STATE_HOME", "")
        root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "state"
        return root / APP
    import platformdirs

    return platformdirs.user_state_path(APP)


def default_testnet_dir() -> Path:
    return state_dir() / "testnet"


@dataclass(frozen=True, slots=True)
class NetworkChoice:
    """The user's `--network` value, before anything is started or read."""

    kind: str  # "mainnet" | "testnet" | "file"
    path: Path | None = None

    @classmethod
    def parse(cls, value: str | None) -> NetworkChoice:
        text = (value if value is not None else os.environ.get(NETWORK_ENV, "")).strip()
        if text in ("", "mainnet"):
            return cls("mainnet")
        if text == "testnet":
            return cls("testnet", default_testnet_dir() / NETWORK_FILE)
        return cls("file", Path(text).expanduser())

    def describe(self) -> str:
        return self.kind if self.kind != "file" else str(self.path)
