"""Session-wide guards and shared fixtures for the test suite.

Async backends: a test marked `pytest.mark.anyio` runs on asyncio. A module (or test) that must
hold on every backend says so with `pytest.mark.anyio_backends("asyncio", "trio")`, which
parametrizes the `anyio_backend` fixture below through pytest's ordinary indirect
parametrization. One fixture and one marker instead of a fixture per module; asyncio stays the
default so a new async test costs one run, not two.

Fuzzing: `--hypothesis-profile=fuzz` (hypothesis's own pytest option) loads the "fuzz" profile
registered below. Tests with no settings of their own run 10,000 examples there instead of
hypothesis's 100; tests that pick a default count take it from `tests.fuzzing.scaled`, which
scales it up under the profile; tests marked `pytest.mark.fuzz` (long runs with no cheap
version) are deselected unless the fuzz profile is loaded.

Soak: tests marked `pytest.mark.soak` (an hour of traffic through a session, tests/soak/) are
deselected unless the marker expression names them: `pytest -m soak tests/soak`. So are tests
marked `pytest.mark.long` (the full-size form of a check whose short form runs in CI, such as
the 10 MiB httpx stream): `pytest -m long`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from smolmix_cli.netstack import native
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.certs import DemoPki, make_pki
from tests.fuzzing import FUZZ, fuzzing

# The user's own config.toml must not change what the tests see (children inherit this);
# tests of the config file point SMOLMIX_CONFIG or --config at their own files.
os.environ["SMOLMIX_CONFIG"] = os.devnull

LONG = {"fuzz", "soak", "long"}  # markers of long runs that only run when asked for

settings.register_profile(
    FUZZ, max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


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


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    """The demo origin's CA and server certificate, made once."""
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
async def origin(pki: DemoPki) -> AsyncIterator[DemoOrigin]:
    """The demo origin (HTTP, HTTPS, ws, wss, DNS) on loopback ports, with `pki`'s cert."""
    async with DemoOrigin(ssl_context=pki.server_context()) as demo:
        yield demo


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "asyncio"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("anyio_backends")
    if marker is not None and "anyio_backend" in metafunc.fixturenames:
        metafunc.parametrize("anyio_backend", marker.args, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    asked = config.getoption("markexpr") or ""
    kept = {m for m in ("soak", "long") if m in asked}
    if fuzzing():
        kept.add("fuzz")
    long_runs = [item for item in items if any(item.get_closest_marker(m) for m in LONG - kept)]
    if long_runs:
        config.hook.pytest_deselected(items=long_runs)
        dropped = {id(item) for item in long_runs}
        items[:] = [item for item in items if id(item) not in dropped]
