"""`Tunnel.websocket`'s connection: `smolmix ws`'s engine with the API's errors."""

from __future__ import annotations

from smolmix_cli.api.errors import translated
from smolmix_cli.apps.ws import WsSession


class WebSocket:
    """An open WebSocket: `send` str (text) or bytes (binary), `receive` the next message.

    `receive` raises `WebSocketClosed` (with the peer's `close_code`) once it has ended.
    """

    def __init__(self, session: WsSession) -> None:
        self._session = session
        self.subprotocol = session.subprotocol
        self.url = session.url

    async def send(self, message: str | bytes, *, timeout: float | None = None) -> None:
        with translated():
            await self._session.send(message, timeout=timeout)

    async def receive(self, *, timeout: float | None = None) -> str | bytes:
        with translated():
            return await self._session.receive(timeout=timeout)

    async def ping(self, *, timeout: float = 45.0) -> float:
        """One ping's round trip, in seconds."""
        with translated():
            return await self._session.ping(timeout=timeout)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close with `code` (1000 or 3000-4999), waiting briefly for the peer's answer."""
        with translated():
            await self._session.close(code, reason)

    async def __aenter__(self) -> WebSocket:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
