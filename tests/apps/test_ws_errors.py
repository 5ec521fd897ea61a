"""`smolmix ws` meets WebSocket failures as its own curl-like errors, never as gateway ones.

The WebSocket layer (smolmix_cli.websocket) is shared with the gateway client; its
errors belong to no layer, so every WsSession call translates them. A stand-in
connection raises each kind where the real one would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from smolmix_cli.apps import ws
from smolmix_cli.apps.errors import AppError, OperationTimeout, WsClosed, WsHandshakeError
from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.websocket import (
    WebSocketClosed,
    WebSocketError,
    WebSocketHandshakeError,
    WebSocketTimeout,
)

pytestmark = pytest.mark.anyio


class FailingConnection:
    """Stands in for WebSocketConnection: every operation raises `make()`."""

    subprotocol = None
    closed = None

    def __init__(self, make: Callable[[], BaseException]) -> None:
        self.make = make

    async def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise self.make()

    send_text = send_binary = receive = ping = keepalive = _fail


FAILURES: list[tuple[Callable[[], BaseException], type[AppError], ExitCode]] = [
    (lambda: WebSocketClosed(4001, "bye"), WsClosed, ExitCode.WS_ABNORMAL_CLOSE),
    (
        lambda: WebSocketClosed(1006, "send failed", local=True),
        WsClosed,
        ExitCode.WS_ABNORMAL_CLOSE,
    ),
    (lambda: WebSocketTimeout("websocket receive timed out"), OperationTimeout, ExitCode.TIMEOUT),
    (lambda: WebSocketHandshakeError("refused", 403), WsHandshakeError, ExitCode.HTTP_ERROR),
    (lambda: WebSocketError("something else"), WsClosed, ExitCode.WS_ABNORMAL_CLOSE),
    (lambda: OSError("the tunnel stream broke"), WsClosed, ExitCode.WS_ABNORMAL_CLOSE),
]

CALLS = {
    "send text": lambda s: s.send("x"),
    "send binary": lambda s: s.send(b"x"),
    "receive": lambda s: s.receive(),
    "ping": lambda s: s.ping(timeout=1),
    "keepalive": lambda s: s.keepalive(1, 1),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize(("make", "as_type", "code"), FAILURES, ids=lambda v: str(v))
async def test_websocket_failures_become_the_ws_commands_errors(
    call: str, make: Callable[[], BaseException], as_type: type[AppError], code: ExitCode
) -> None:
    session = ws.WsSession(FailingConnection(make), "ws://a.test/")  # type: ignore[arg-type]
    with pytest.raises(AppError) as info:
        await CALLS[call](session)
    assert type(info.value) is as_type
    error = classify(info.value)
    assert error.code is code
    assert "gateway" not in str(error)


async def test_a_closed_connection_keeps_its_close_code_and_who_closed() -> None:
    session = ws.WsSession(FailingConnection(lambda: WebSocketClosed(4001, "bye")), "ws://a/")  # type: ignore[arg-type]
    with pytest.raises(WsClosed) as info:
        await session.receive()
    assert (info.value.code, info.value.reason, info.value.local) == (4001, "bye", False)
    assert not info.value.normal and WsClosed(1001).normal


def test_websocket_errors_are_not_mixnet_errors() -> None:
    from smolmix_cli.mixnet.errors import MixnetError

    assert not issubclass(WebSocketError, MixnetError)
