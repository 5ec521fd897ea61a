"""Failures at the command line: the exit code a script sees, and one line of words."""

from __future__ import annotations

import base64
import hashlib
import re
import time

import anyio
import anyio.abc

from tests.cli.test_env import MemoryTunnel, StandInFactory, err, factory, fake_env, invoke

__all__ = ["factory"]  # the fixture, used by name

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_HUGE_HEADER = bytes([0x82, 127]) + (100 << 20).to_bytes(8, "big")  # binary, 100 MiB, no payload


class OversizedFrameStream(anyio.abc.ByteStream):
    """A WebSocket server that accepts the upgrade, announces a 100 MiB frame and goes quiet."""

    def __init__(self) -> None:
        self.request = b""
        self.after = bytearray()
        self.answered = False
        self.closed = anyio.Event()

    async def send(self, item: bytes) -> None:
        if self.answered:
            self.after += item
        else:
            self.request += item

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.answered:
            found = re.search(rb"(?i)sec-websocket-key: *(\S+)", self.request)
            assert found is not None
            accept = base64.b64encode(hashlib.sha1(found.group(1) + _WS_GUID).digest())
            self.answered = True
            return (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + accept
                + b"\r\n\r\n"
                + _HUGE_HEADER
            )
        await self.closed.wait()
        raise anyio.ClosedResourceError

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed.set()


class HostileWsTunnel(MemoryTunnel):
    stream: OversizedFrameStream | None = None

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        self.stream = OversizedFrameStream()
        return self.stream


def test_ws_refuses_an_oversized_frame_at_its_header(factory: StandInFactory) -> None:
    """1009 sent at once (not 1006 after the payload never came); exit 12, as documented."""
    tunnel = factory.tunnel = HostileWsTunnel()
    env = fake_env()
    started = time.monotonic()
    result = invoke(env, "ws", "--no-close", "ws://a.test/")
    assert time.monotonic() - started < 1.0
    assert result.exit_code == 12, (result.output, err(env))
    assert "1009" in err(env) and "message too big" in err(env), err(env)
    assert tunnel.stream is not None and tunnel.stream.after[:1] == b"\x88"  # our close frame
    sent = tunnel.stream.after
    mask, payload = sent[2:6], sent[6:8]
    assert int.from_bytes(bytes(b ^ mask[i] for i, b in enumerate(payload)), "big") == 1009
