"""Round trips a test tunnel makes to the test exit's TCP echo and source services."""

from __future__ import annotations

import hashlib

import anyio
import pytest

from smolmix_cli.tunnel.tunnel import Tunnel
from tests.tunnel.exit_fixture import ECHO_PORT, SERVICE_HOST, SOURCE_PORT, source_bytes


async def echo_round(tunnel: Tunnel, payload: bytes) -> None:
    stream = await tunnel.open_tcp(str(SERVICE_HOST), ECHO_PORT)
    await stream.send(payload)
    got = bytearray()
    while len(got) < len(payload):
        got += await stream.receive()
    assert bytes(got) == payload
    await stream.aclose()


async def download(tunnel: Tunnel, size: int) -> None:
    """`size` bytes from the source service, byte-exact, then its FIN."""
    stream = await tunnel.open_tcp(str(SERVICE_HOST), SOURCE_PORT)
    await stream.send(f"{size}\n".encode())
    digest, total = hashlib.sha256(), 0
    with pytest.raises(anyio.EndOfStream):
        while True:
            chunk = await stream.receive()
            digest.update(chunk)
            total += len(chunk)
    assert total == size
    assert digest.digest() == hashlib.sha256(source_bytes(size)).digest()
