"""Fixtures: the demo origin on loopback and a connector that maps demo names to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.certs import DemoPki, make_pki
from tests.apps.os_connector import OsConnector

DEMO = "demo.smolmix.test"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DemoPki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
async def origin(pki: DemoPki) -> AsyncIterator[DemoOrigin]:
    async with DemoOrigin(ssl_context=pki.server_context()) as demo:
        yield demo


@pytest.fixture
def connector() -> OsConnector:
    return OsConnector({DEMO: "127.0.0.1", f"www.{DEMO}": "127.0.0.1", "localhost": "127.0.0.1"})
