"""The interop test needs Debian's chromium and the pinned node packages (setup.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.harness import missing_prerequisites

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "interop: the official Nym client (npm @nymproject/mix-tunnel) in headless Chromium "
        "against the local network; needs tests/interop/setup.sh",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_prerequisites()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"interop: {reason}")
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)
