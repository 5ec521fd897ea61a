"""Which netstack modules run compiled (mypyc), and whether those builds are current.

setup.py compiles `NATIVE_CORE` from the same sources when it can (see its
docstring). An editable install keeps the compiled modules next to the sources
and Python prefers them, so after editing one of these files the old build
would keep running: `stale()` names such modules, and the test suite refuses to
run with them. This module imports nothing of the package (setup.py loads it).
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

# The sans-io core: everything a packet touches from the device to the socket.
NATIVE_CORE = (
    "errors",
    "wire.ip",
    "wire.icmp",
    "wire.udp",
    "wire.tcp",
    "wire.tcp_ip",
    "socket.udp",
    "socket.tcp.seq",
    "socket.tcp.config",
    "socket.tcp.state",
    "socket.tcp.reassembly",
    "socket.tcp.rtt",
    "socket.tcp.scoreboard",
    "socket.tcp.congestion",
    "socket.tcp.rack",
    "socket.tcp.receiver",
    "socket.tcp.sender",
    "socket.tcp.connection",
    "iface.fragments",
    "iface.handles",
    "iface.stack",
)

_HERE = Path(__file__).resolve().parent


def _path(name: str) -> Path:
    """`wire.ip` -> .../netstack/wire/ip (no suffix)."""
    return _HERE.joinpath(*name.split("."))


def _builds(name: str) -> list[Path]:
    base = _path(name)
    return [
        p
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (p := base.with_name(base.name + suffix)).exists()
    ]


def compiled() -> list[str]:
    """Core modules that have a compiled build next to their source."""
    return [name for name in NATIVE_CORE if _builds(name)]


def stale() -> list[str]:
    """Core modules whose source is newer than their compiled build."""
    out = []
    for name in NATIVE_CORE:
        source = _path(name).with_suffix(".py")
        for build in _builds(name):
            if source.stat().st_mtime > build.stat().st_mtime:
                out.append(name)
                break
    return out
