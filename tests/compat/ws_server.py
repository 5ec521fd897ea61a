"""A recording WebSocket server on loopback for the websocat differential tests.

Raw wsproto over plain sockets in a thread, so the tests see everything a
client did on the wire: each message with its type, every ping, the close
code. What it sends back is chosen by the request path:

- `/echo`: every message comes back with its own type (pings are answered).
- `/say/NAME`: sends the messages of SCRIPTS[NAME] at once, then echoes.
- `/say/NAME/close[/CODE]`: sends them, then closes with CODE (1000).
- `/silent`: answers pings and close frames, never sends (for -E versus the default).
- `/linger/SECONDS`: as /silent, then closes with 1000 after SECONDS.
- `/refuse`: answers the upgrade with 403.

A query string (`?run=...`) only names the run; the tests find their connection by it.
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
    RejectConnection,
    Request,
    TextMessage,
)

SCRIPTS: dict[str, list[str | bytes]] = {
    "text": ["one", "two words"],
    "newlines": ["a\nb", "c\r\nd", "tail\n", "\r"],
    "crlf": ["x\r\n", "y\n\r", "\r\n\r\n", "\n\n"],
    "empty": ["x", "", "y"],
    "binary": [b"\x00\x01\xff", b"line\n", b"\r\n"],
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

    def find(self, run: str, timeout: float = 5.0) -> Recorded | None:
        """The connection whose request named this run, once it has ended."""
        for record in list(self.connections):
            if record.path.endswith(f"?run={run}"):
                record.done.wait(timeout)
                return record
        return None

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
        lock = threading.Lock()  # a /linger timer sends from another thread
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
                        if record.path.startswith("/refuse"):
                            sock.sendall(ws.send(RejectConnection(status_code=403)))
                            return
                        offer = "echo" if "echo" in event.subprotocols else None
                        sock.sendall(ws.send(AcceptConnection(subprotocol=offer)))
                        self._opened(sock, ws, record, lock)
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
                            if not record.path.startswith(("/silent", "/linger")):
                                with lock:
                                    sock.sendall(ws.send(_message(whole)))
                    elif isinstance(event, Ping):
                        record.pings += 1
                        with lock:
                            sock.sendall(ws.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        record.close_code = event.code
                        with lock, contextlib.suppress(Exception):
                            sock.sendall(ws.send(event.response()))
                        return
        except Exception:  # a client that vanished (or spoke nonsense) ends its connection
            return
        finally:
            record.done.set()
            with contextlib.suppress(OSError):
                sock.close()

    def _opened(
        self, sock: socket.socket, ws: WSConnection, record: Recorded, lock: threading.Lock
    ) -> None:
        words = record.path.partition("?")[0].strip("/").split("/")
        if len(words) >= 2 and words[0] == "say":
            with lock:
                for message in SCRIPTS[words[1]]:
                    sock.sendall(ws.send(_message(message)))
                if words[2:3] == ["close"]:
                    code = int(words[3]) if len(words) > 3 else 1000
                    sock.sendall(ws.send(CloseConnection(code=code)))
        elif len(words) == 2 and words[0] == "linger":

            def close() -> None:
                with lock, contextlib.suppress(Exception):
                    sock.sendall(ws.send(CloseConnection(code=1000)))

            timer = threading.Timer(float(words[1]), close)
            timer.daemon = True
            timer.start()


def _message(data: str | bytes) -> TextMessage | BytesMessage:
    return TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
