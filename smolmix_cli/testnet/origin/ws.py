"""The demo origin's WebSocket echo service (ws and wss share this handler).

Text and binary messages come back unchanged. A text message
`close:CODE:REASON` (a trailing newline is allowed, as websocat sends one) makes the server close with that code and reason, so
clients can test their close handling; `path` answers with the request path.
The server offers the subprotocol `echo` when asked for it.
"""

from __future__ import annotations

import contextlib
import ssl

import anyio
import anyio.abc

from smolmix_cli.websocket import (
    WebSocketError,
    serve_websocket_connection,
)

SUBPROTOCOL = "echo"


async def serve_ws_echo(
    stream: anyio.abc.ByteStream, *, ssl_context: ssl.SSLContext | None = None
) -> None:
    try:
        ws = await serve_websocket_connection(
            stream, ssl_context=ssl_context, subprotocol=SUBPROTOCOL, max_message_size=16 << 20
        )
    except WebSocketError:
        return
    async with ws:
        with contextlib.suppress(WebSocketError):
            while True:
                message = await ws.receive()
                # websocat sends each line with its newline: a command may end with one
                command = (
                    message.removesuffix("\n").removesuffix("\r")
                    if isinstance(message, str)
                    else None
                )
                if command is not None and command.startswith("close:"):
                    _, code_text, reason = [*command.split(":", 2), ""][:3]
                    code = int(code_text) if code_text.isdigit() else 1000
                    await ws.aclose(code, reason)
                    return
                if command == "path":
                    await ws.send_text(ws.path)
                elif isinstance(message, str):
                    await ws.send_text(message)
                else:
                    await ws.send_binary(message)
