"""`HttpClient(on_request=...)` reports the request head as the server received it.

Regression for `fetch -v`: it printed the headers before the client added
Content-Length / Transfer-Encoding, so what it showed was not what was sent.
"""

from __future__ import annotations

import json

import pytest

from smolmix_cli.apps.http import HttpClient, RequestHead
from smolmix_cli.apps.http_body import BytesBody
from smolmix_cli.apps.http_headers import parse_header_arg
from smolmix_cli.testnet.origin.origin import DemoOrigin
from tests.apps.helpers import get
from tests.apps.os_connector import OsConnector

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("options", "added"),
    [
        ({}, None),
        ({"body": BytesBody(b"a=1&b=2")}, ("Content-Length", "7")),
        ({"method": "PUT", "header_edits": [parse_header_arg("X-Custom: yes")]}, None),
    ],
)
async def test_reported_head_equals_what_the_server_received(
    origin: DemoOrigin, connector: OsConnector, options: dict[str, object], added: object
) -> None:
    seen: list[RequestHead] = []
    async with HttpClient(connector, on_request=seen.append) as client:
        out, _ = await get(client, f"http://127.0.0.1:{origin.http_port}/headers", **options)
    received = [tuple(pair) for pair in json.loads(out.body)["headers"]]
    assert len(seen) == 1
    # the origin (h11) lowercases names on receipt; order, names and values must match
    assert [(name.lower(), value) for name, value in seen[0].headers] == received
    assert seen[0].raw.startswith(f"{seen[0].method} /headers HTTP/1.1\r\n".encode())
    assert seen[0].raw.endswith(b"\r\n\r\n")
    if added is not None:
        assert added in seen[0].headers


async def test_every_redirect_hop_is_reported(origin: DemoOrigin, connector: OsConnector) -> None:
    seen: list[RequestHead] = []
    async with HttpClient(connector, on_request=seen.append) as client:
        await get(
            client,
            f"http://127.0.0.1:{origin.http_port}/redirect/2",
            follow_redirects=True,
        )
    assert [head.target for head in seen] == ["/redirect/2", "/redirect/1", "/echo"]
