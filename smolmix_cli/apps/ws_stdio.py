"""websocat 1.13's rules for turning stdin into messages and messages into stdout, sans-io.

Scripts compare bytes, so these follow websocat's source (vi/websocat at tag v1.13.0):

- Sending, line mode (src/line_peer.rs, Line2PacketWrapper::read, lines 207-289): each stdin
  line is one text message *with* its newline ("a\\n", "b\\r\\n"); an unterminated tail is sent
  as it is at EOF. `--linemode-strip-newlines` drops the trailing "\\n" then "\\r"
  (deliver_the_line, lines 184-191). With `-0` records end at NUL and the NUL is not sent
  (the "happy case", lines 256-283; websocat 1.13 also sends a stray "\\0" message when one
  read holds several records, because deliver_the_line looks at the stale output buffer;
  we send what the happy case sends, see docs/compat.md). Invalid UTF-8 goes out with
  U+FFFD in its place (src/ws_peer.rs, WsWriteWrapper::write: "Sending lossy data").
- Sending, binary mode (-b): each read of stdin is one binary message, bytes untouched. With
  `--base64` each line is decoded first, and sent as it is, without its newline, when it
  is not base64 (ws_peer.rs lines 392-404, "Sending message as is").
- Receiving, line mode (line_peer.rs, Packet2LineWrapper::read, lines 95-139): per message,
  text or binary, one trailing "\\n" then one "\\r" are chomped, every other "\\n" and "\\r"
  becomes a space, and one "\\n" is added; with `-0` a trailing NUL is chomped and a NUL
  added. With `--base64` a binary message is printed as one base64 line first
  (ws_peer.rs process_prefixes_and_base64, lines 183-211).
- Receiving, binary mode: messages back to back, no separators.

`--jsonl` is smolmix's own (websocat has only --jsonrpc): one JSON object per message in
both directions, so a recorded session replays byte for byte, empty messages included.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

Message = str | bytes


@dataclass(frozen=True)
class StdioMode:
    binary: bool = False
    """-b: reads are binary messages; messages are written back to back."""
    null: bool = False
    """-0: NUL ends a record instead of a newline."""
    strip_newlines: bool = False
    """--linemode-strip-newlines: the line's "\\n" / "\\r\\n" is not sent."""
    base64: bool = False
    """--base64: binary messages printed as base64 lines; with -b, input lines decoded."""
    jsonl: bool = False
    """--jsonl: JSON message events in both directions."""


class StdinFormatError(ValueError):
    """A --jsonl input line that is not a message event."""


@dataclass
class MessageSplitter:
    """stdin bytes in, messages out, as websocat cuts them."""

    mode: StdioMode
    _pending: bytearray = field(default_factory=bytearray)
    _line_number: int = 0

    def feed(self, chunk: bytes) -> list[Message]:
        mode = self.mode
        if mode.binary and not mode.base64 and not mode.jsonl:
            return [bytes(chunk)] if chunk else []
        self._pending += chunk
        end = b"\0" if mode.null and not mode.jsonl else b"\n"
        messages: list[Message] = []
        while (at := self._pending.find(end)) >= 0:
            record = bytes(self._pending[: at + 1])
            del self._pending[: at + 1]
            message = self._message(record)
            if message is not None:
                messages.append(message)
        return messages

    def finish(self) -> list[Message]:
        """The unterminated tail at EOF, sent as it is (websocat: "possibly incomplete line")."""
        if not self._pending:
            return []
        record = bytes(self._pending)
        self._pending.clear()
        message = self._message(record)
        return [] if message is None else [message]

    def _message(self, record: bytes) -> Message | None:
        mode = self.mode
        if mode.jsonl:
            self._line_number += 1
            return parse_event(record, self._line_number)
        if mode.null:
            return _text(record.removesuffix(b"\0"), mode.binary)
        if mode.binary:  # -b --base64: one line, one decoded message
            line = record.removesuffix(b"\n").removesuffix(b"\r")
            try:
                return base64.b64decode(line, validate=True)
            except (binascii.Error, ValueError):
                return line  # websocat sends the chomped line as it is
        if mode.strip_newlines:
            record = record.removesuffix(b"\n").removesuffix(b"\r")
        return _text(record, False)


def _text(record: bytes, binary: bool) -> Message:
    return record if binary else record.decode("utf-8", "replace")


def render(message: Message, mode: StdioMode) -> bytes:
    """One received message as websocat writes it to stdout."""
    if mode.jsonl:
        return render_event(message_event(message))
    data = message.encode() if isinstance(message, str) else bytes(message)
    if mode.base64 and isinstance(message, bytes):
        data = base64.b64encode(data) + b"\n"
    if mode.binary:
        return data
    if mode.null:
        return data.removesuffix(b"\0") + b"\0"
    data = data.removesuffix(b"\n").removesuffix(b"\r")
    return data.replace(b"\n", b" ").replace(b"\r", b" ") + b"\n"


def message_event(message: Message) -> dict[str, Any]:
    if isinstance(message, str):
        return {"event": "message", "type": "text", "data": message}
    return {
        "event": "message",
        "type": "binary",
        "data_base64": base64.b64encode(message).decode(),
    }


def render_event(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode() + b"\n"


def parse_event(line: bytes, number: int = 0) -> Message | None:
    """A --jsonl input line: a message event as printed (other events, blank lines: None)."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise StdinFormatError(f"stdin line {number}: not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise StdinFormatError(f"stdin line {number}: not a JSON object")
    if record.get("event", "message") != "message":
        return None  # open/close events of a recorded session replay as nothing
    kind = record.get("type", "text")
    if kind == "text" and isinstance(record.get("data"), str):
        return str(record["data"])
    if kind == "binary" and isinstance(record.get("data_base64"), str):
        try:
            return base64.b64decode(record["data_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise StdinFormatError(f"stdin line {number}: data_base64 is not base64") from None
    raise StdinFormatError(
        f"stdin line {number}: want {{'type': 'text', 'data': ...}} "
        "or {'type': 'binary', 'data_base64': ...}"
    )
