"""The session tests' shared fixture: a short private directory for daemon sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.session.stand_in import short_runtime_dir


@pytest.fixture
def rundir() -> Iterator[Path]:
    path = short_runtime_dir()
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()
