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
NATIVE_CORE = ("errors", "ip", "icmp", "udp", "tcp_wire", "tcp_buffers", "tcp", "stack")

_HERE = Path(__file__).resolve().parent


def _builds(name: str) -> list[Path]:
    return [
        p
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if (p := _HERE / f"{name}{suffix}").exists()
    ]


def compiled() -> list[str]:
    """Core modules that have a compiled build next to their source."""
    return [name for name in NATIVE_CORE if _builds(name)]


def stale() -> list[str]:
    """Core modules whose source is newer than their compiled build."""
    out = []
    for name in NATIVE_CORE:
        source = _HERE / f"{name}.py"
        for build in _builds(name):
            if source.stat().st_mtime > build.stat().st_mtime:
                out.append(name)
                break
    return out
