"""A close that gets no close frame back is 1006 (exit 12 for `ws`), not a clean 1000.

Found by the chaos suite (tests/e2e/test_chaos_suite.py): with a mix node killed
under a session, echoes were lost, the server's close reply never came, and `ws`
exited 0 with part of the replies missing. RFC 6455 7.1.5: a connection closed
without a close frame received has close code 1006.
"""

from __future__ import annotations

import anyio
import anyio.abc
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from smolmix_cli.websocket import CLOSE_ABNORMAL, CLOSE_NORMAL, connect_websocket

pytestmark = pytest.mark.anyio


async def _server(answer_close: bool, *, task_status: anyio.abc.TaskStatus[int]) -> None:
    """Echoes text; answers the client's close only if `answer_close` (else stays silent,
    the connection open, as when the route to the server died)."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        async with stream:
            while True:
                try:
                    data = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        await stream.send(ws.send(AcceptConnection()))
                    elif isinstance(event, TextMessage):
                        await stream.send(ws.send(TextMessage(data=event.data)))
                    elif isinstance(event, CloseConnection) and answer_close:
                        await stream.send(ws.send(event.response()))
                        return

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
        await listener.serve(handle)


@pytest.mark.parametrize(("answer_close", "code"), [(True, CLOSE_NORMAL), (False, CLOSE_ABNORMAL)])
async def test_close_code_says_whether_the_peer_answered(answer_close: bool, code: int) -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(_server, answer_close)
        ws = await connect_websocket(f"ws://127.0.0.1:{port}/", timeout=5)
        await ws.send_text("hello")
        assert await ws.receive() == "hello"
        with anyio.fail_after(5):
            await ws.aclose(timeout=0.3)
        assert ws.closed is not None and ws.closed.code == code, ws.closed
        tg.cancel_scope.cancel()
