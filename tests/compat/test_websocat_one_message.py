"""`ws -1` prints one message even when more are already read (in process, no network).

websocat 1.13's -1 copies at most one message each way. The close after stdin's end
reads on until the server answers, so a second message the server sent at once sits
in the buffer; the receiver must stop after the first and leave it unprinted. The
differential case `one-receive-only` caught this as a race under load; here the
second message is always there before the first is printed.

With stdin, the sender's flush ping and the receiver's close read at the same time:
the ping once stopped reading when our close went out and spun on the read lock, and
the close waited for a reader that never read, so the server's close reply sat unread
(1006 "no close reply", exit 12; a soak through the local network hit it on 1 in 8
`ws -1` echoes).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

from tests.cli.test_env import StandInFactory, fake_env, invoke, out
from tests.cli.test_ws_drain import ReplyAfterPingServer, WsTunnel


@dataclass
class TwoAtOnceServer(ReplyAfterPingServer):
    """Accepts and sends two text messages in the same bytes; answers pings and the close."""

    async def send(self, item: bytes) -> None:
        self.ws.receive_data(bytes(item))
        for event in self.ws.events():
            if isinstance(event, Request):
                self.outgoing += self.ws.send(AcceptConnection())
                self.outgoing += self.ws.send(TextMessage(data="one"))
                self.outgoing += self.ws.send(TextMessage(data="two"))
            elif isinstance(event, TextMessage):
                self.received.append(event.data)
            elif isinstance(event, Ping | CloseConnection):
                self.outgoing += self.ws.send(event.response())
        self.more.set()


@pytest.mark.parametrize(
    "stdin",
    [
        b"",
        b"first\nsecond\n",
    ],
)
def test_one_message_prints_only_the_first(monkeypatch: pytest.MonkeyPatch, stdin: bytes) -> None:
    server = TwoAtOnceServer()
    stand_in = StandInFactory(tunnel=WsTunnel(server=server))
    monkeypatch.setattr("smolmix_cli.session.factory.open_tunnel", stand_in.open_tunnel)
    env = fake_env(stdin=stdin)
    result = invoke(env, "ws", "-1", "--ping-interval", "0", "--close-timeout", "1", "ws://a.test/")
    assert result.exit_code == 0, (result.output, env.stderr.getvalue())
    assert out(env) == b"one\n"
    assert server.received == (["first\n"] if stdin else [])
