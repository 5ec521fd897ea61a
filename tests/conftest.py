"""Session-wide guards and shared fixtures for the test suite.

Async backends: a test marked `pytest.mark.anyio` runs on asyncio. A module (or test) that must
hold on every backend says so with `pytest.mark.anyio_backends("asyncio", "trio")`, which
parametrizes the `anyio_backend` fixture below through pytest's ordinary indirect
parametrization. One fixture and one marker instead of a fixture per module; asyncio stays the
default so a new async test costs one run, not two.
"""

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


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "asyncio"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("anyio_backends")
    if marker is not None and "anyio_backend" in metafunc.fixturenames:
        metafunc.parametrize("anyio_backend", marker.args, indirect=True)
