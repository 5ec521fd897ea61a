"""Guard: the apps package reaches the network only through a Connector.

DESIGN.md: apps must not open OS sockets to destinations or use the OS
resolver (names go through the tunnel). A static check catches a regression
before it leaks a DNS query or a connection around the mixnet.
"""

from __future__ import annotations

import ast
from pathlib import Path

import smolmix_cli.apps
from smolmix_cli.apps.connector import Connector
from tests.apps.os_connector import OsConnector

APPS = Path(smolmix_cli.apps.__file__).parent
FORBIDDEN_CALLS = {
    "connect_tcp",
    "connect_unix",
    "create_udp_socket",
    "create_connected_udp_socket",
    "getaddrinfo",
    "getnameinfo",
    "gethostbyname",
    "create_connection",
    "open_connection",
}
FORBIDDEN_MODULES = {"socket", "asyncio", "trio", "requests", "urllib.request", "http.client"}


def test_apps_never_touch_os_sockets_or_resolver() -> None:
    offences: list[str] = []
    for path in sorted(APPS.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                offences += [
                    f"{path.name}: import {a.name}"
                    for a in node.names
                    if a.name in FORBIDDEN_MODULES
                ]
            elif isinstance(node, ast.ImportFrom) and node.module in FORBIDDEN_MODULES:
                offences.append(f"{path.name}: from {node.module} import ...")
            elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_CALLS:
                offences.append(f"{path.name}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.Name) and node.id in FORBIDDEN_CALLS:
                offences.append(f"{path.name}:{node.lineno}: {node.id}")
    assert len(list(APPS.glob("*.py"))) >= 10
    assert offences == []


def test_test_connector_satisfies_the_protocol() -> None:
    assert isinstance(OsConnector(), Connector)
    assert not isinstance(object(), Connector)
