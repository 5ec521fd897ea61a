"""`ws` after stdin ends: replies still on their way are printed before the command exits.

websocat keeps reading after its stdin ends until the server closes (or a
timeout); so must we. The server here is wsproto itself behind a ByteStream, in
process: it answers our ping (the barrier sent after stdin's end) with the pong
and then a large reply, and answers our close frame only after that reply, as
RFC 6455 lets a server finish the message it is sending. Before the fix the
receiver could mistake our own close, marked a moment before its frame went
out, for the end of the connection and stop printing: the reply was read and
dropped, and the command exited 0 with nothing on stdout.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)

from tests.cli.test_env import MemoryTunnel, StandInFactory, fake_env, invoke, out

REPLY = hashlib.shake_256(b"smolmix-ws-drain").digest(300_000)
"""About 300 KB, as in the report; random, so every byte is checked."""


@dataclass
class ReplyAfterPingServer(anyio.abc.ByteStream):
    """A WebSocket server in a stream: pong, then REPLY, then (after our close) its close.

    `chunk` and `pause` pace what the client reads, to stand for a slow path."""

    chunk: int = 65536
    pause: float = 0.0
    ws: WSConnection = field(default_factory=lambda: WSConnection(ConnectionType.SERVER))
    outgoing: bytearray = field(default_factory=bytearray)
    received: list[str | bytes] = field(default_factory=list)
    more: anyio.Event = field(default_factory=anyio.Event)

    async def send(self, item: bytes) -> None:
        self.ws.receive_data(bytes(item))
        for event in self.ws.events():
            if isinstance(event, Request):
                self.outgoing += self.ws.send(AcceptConnection())
            elif isinstance(event, TextMessage | BytesMessage):
                self.received.append(event.data)
            elif isinstance(event, Ping):
                self.outgoing += self.ws.send(event.response())
                self.outgoing += self.ws.send(BytesMessage(data=REPLY))
            elif isinstance(event, CloseConnection):
                self.outgoing += self.ws.send(event.response())
        self.more.set()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        await anyio.lowlevel.checkpoint()  # a real stream yields to other tasks on each read
        while not self.outgoing:
            if self.ws.state.name == "CLOSED":
                raise anyio.EndOfStream
            self.more = anyio.Event()
            await self.more.wait()
        if self.pause:
            await anyio.sleep(self.pause)
        size = min(max_bytes, self.chunk)
        data, self.outgoing[:] = bytes(self.outgoing[:size]), self.outgoing[size:]
        return data

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.more.set()


@dataclass
class WsTunnel(MemoryTunnel):
    server: ReplyAfterPingServer = field(default_factory=ReplyAfterPingServer)

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        return self.server


def _run(monkeypatch: pytest.MonkeyPatch, server: ReplyAfterPingServer, *args: str) -> bytes:
    stand_in = StandInFactory(tunnel=WsTunnel(server=server))
    monkeypatch.setattr("smolmix_cli.session.factory.open_tunnel", stand_in.open_tunnel)
    env = fake_env(stdin=b"send me the big one\n")
    result = invoke(env, "ws", "-b", "--ping-interval", "0", *args, "ws://a.test/")
    assert result.exit_code == 0, result.output
    assert server.received == [b"send me the big one\n"]
    return out(env)


@pytest.mark.parametrize("attempt", range(3))
def test_a_large_reply_after_stdin_ends_is_printed(
    monkeypatch: pytest.MonkeyPatch, attempt: int
) -> None:
    assert _run(monkeypatch, ReplyAfterPingServer()) == REPLY


def test_the_close_timeout_counts_silence_not_a_reply_still_arriving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reply takes ~2 s to trickle in, four times --close-timeout: it still counts."""
    slow = ReplyAfterPingServer(chunk=15_000, pause=0.1)
    assert math.ceil(len(REPLY) / slow.chunk) * slow.pause > 3 * 0.5
    assert _run(monkeypatch, slow, "--close-timeout", "0.5") == REPLY
