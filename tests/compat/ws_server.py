"""A recording WebSocket server on loopback for the websocat differential tests.

Raw wsproto over plain sockets in a thread, so the tests see everything a
client did on the wire: each message with its type, every ping, the close
code. What it sends back is chosen by the request path:

- `/echo`: every message comes back with its own type (pings are answered).
- `/say/NAME`: sends the messages of SCRIPTS[NAME] at once, then echoes.
- `/say/NAME/close`: sends them, then closes with 1000.
- `/silent`: answers pings, never sends or closes (for -E versus the default).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)

SCRIPTS: dict[str, list[str | bytes]] = {
    "text": ["one", "two words", ""],
    "newlines": ["a\nb", "c\r\nd", "tail\n", "\r"],
    "binary": [b"\x00\x01\xff", b"line\n", b"", b"\r\n"],
    "mixed": ["t1", b"b1\x00", "t2\n", b"\xc3\xa9"],
    "utf8": ["w\u00f6rld", "\u2603 snow"],
    "nul": ["a\x00b", b"c\x00"],
    "big": [bytes(range(256)) * 256],  # 64 KiB, one message
}


@dataclass
class Recorded:
    """One client connection as the server saw it."""

    path: str = ""
    messages: list[str | bytes] = field(default_factory=list)
    pings: int = 0
    close_code: int | None = None
    done: threading.Event = field(default_factory=threading.Event)


class RecordingServer:
    """Accepts connections in a thread until closed; `connections` in arrival order."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[Recorded] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            record = Recorded()
            self.connections.append(record)
            threading.Thread(target=self._serve, args=(sock, record), daemon=True).start()

    def _serve(self, sock: socket.socket, record: Recorded) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        parts: list[str | bytes] = []
        sock.settimeout(30)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        record.path = event.target
                        offer = ["echo"] if "echo" in event.subprotocols else []
                        sock.sendall(ws.send(AcceptConnection(subprotocol=(offer or [None])[0])))
                        self._opened(sock, ws, record)
                    elif isinstance(event, Message):
                        parts.append(event.data)
                        if event.message_finished:
                            whole = (
                                "".join(parts)
                                if isinstance(event, TextMessage)
                                else b"".join(
                                    bytes(p)
                                    for p in parts  # type: ignore[arg-type]
                                )
                            )
                            parts.clear()
                            record.messages.append(whole)
                            if not record.path.startswith("/silent"):
                                sock.sendall(ws.send(_message(whole)))
                    elif isinstance(event, Ping):
                        record.pings += 1
                        sock.sendall(ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        record.close_code = event.code
                        with contextlib.suppress(Exception):
                            sock.sendall(ws.send(event.response()))
                        return
        except (OSError, Exception):  # a client that vanished ends its connection
            return
        finally:
            record.done.set()
            with contextlib.suppress(OSError):
                sock.close()

    def _opened(self, sock: socket.socket, ws: WSConnection, record: Recorded) -> None:
        words = record.path.strip("/").split("/")
        if len(words) >= 2 and words[0] == "say":
            for message in SCRIPTS[words[1]]:
                sock.sendall(ws.send(_message(message)))
            if words[2:] == ["close"]:
                sock.sendall(ws.send(CloseConnection(code=1000)))


def _message(data: str | bytes) -> TextMessage | BytesMessage:
    return TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
