"""Fixtures: a connector that maps demo names to the demo origin (tests/conftest.py) on loopback."""

from __future__ import annotations

import pytest

from tests.apps.os_connector import OsConnector

DEMO = "demo.smolmix.test"


@pytest.fixture
def connector() -> OsConnector:
    return OsConnector({DEMO: "127.0.0.1", f"www.{DEMO}": "127.0.0.1", "localhost": "127.0.0.1"})
