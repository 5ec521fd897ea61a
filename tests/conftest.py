"""Session-wide guards for the test suite."""

from __future__ import annotations

import pytest

from smolmix_cli.netstack import native


def pytest_sessionstart(session: pytest.Session) -> None:
    # An editable install keeps mypyc builds next to the sources and Python prefers
    # them: after an edit the tests would silently run the old code.
    stale = native.stale()
    if stale:
        pytest.exit(
            f"compiled netstack modules are older than their sources ({', '.join(stale)}): "
            "rebuild with `pip install -e .` (or `SMOLMIX_PURE_PYTHON=1 pip install -e .` to "
            "test the plain sources)",
            returncode=2,
        )
