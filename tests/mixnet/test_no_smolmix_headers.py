"""No request smolmix makes of the directory or a gateway names smolmix (issue 20 item 6).

A loopback listener keeps each request head: the directory client's GET and
the gateway client's WebSocket upgrade. Both must carry what upstream's
clients send (see USER_AGENT in nym_api.py and GatewayClient._connection).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from smolmix_cli.mixnet.directory.api_urls import ApiUrl
from smolmix_cli.mixnet.directory.nym_api import USER_AGENT, NymApiClient
from smolmix_cli.mixnet.gateway.client import GatewayClient, GatewayUnavailable
from tests.first_bytes import first_bytes_catcher

pytestmark = pytest.mark.anyio


def head_catcher(
    answer: bytes,
) -> AbstractAsyncContextManager[tuple[int, Callable[[], Awaitable[bytes]]]]:
    """A loopback port that keeps each request head, answers `answer` and hangs up."""
    return first_bytes_catcher(lambda head: b"\r\n\r\n" in head, answer)


def headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n\r\n")[0].split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines)
    return {name.strip().lower(): value.strip() for name, value in pairs}


async def test_directory_request_names_no_smolmix() -> None:
    body = json.dumps({"ok": True}).encode()
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    async with head_catcher(answer) as (port, next_head):
        client = NymApiClient([ApiUrl(f"http://127.0.0.1:{port}/api/")], timeout=5)
        assert await client.get_json("v1/epoch/key-rotation-info") == {"ok": True}
        head = await next_head()
    assert head.startswith(b"GET /api/v1/epoch/key-rotation-info HTTP/1.1\r\n")
    assert b"smolmix" not in head.lower()
    assert headers(head)["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("nym-http-api-client/")


async def test_gateway_upgrade_names_no_smolmix() -> None:
    async with head_catcher(b"HTTP/1.1 503 Service Unavailable\r\n\r\n") as (port, next_head):
        with pytest.raises(GatewayUnavailable):
            async with GatewayClient.connect(
                f"ws://127.0.0.1:{port}",
                Ed25519PrivateKey.generate(),
                bytes(32),
                on_push=lambda _: None,
                connect_timeout=5.0,
                keepalive_interval=None,
            ):
                pass
        head = await next_head()
    assert head.startswith(b"GET / HTTP/1.1\r\n")
    assert b"smolmix" not in head.lower()
    # The upgrade's own headers and nothing else, as tungstenite sends from a URL.
    assert set(headers(head)) == {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
    }
