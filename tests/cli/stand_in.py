"""A booted-session stand-in for in-process CLI tests: the factory's Session, any tunnel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smolmix_cli.config import MAINNET


@dataclass
class StandInSession:
    tunnel: Any
    network: Any = MAINNET
    boot_seconds: float = 0.0
    reused: bool = False

    def cafile(self, user_cacert: str | None) -> str | None:
        return user_cacert
