"""Failures in words for -v and `session status`: never a class name when there is text."""

from __future__ import annotations

from smolmix_cli.error_words import failure_words
from smolmix_cli.websocket import WebSocketHandshakeError


def test_words_not_class_names() -> None:
    handshake = WebSocketHandshakeError("cannot connect to ws://c:9000/: refused")
    assert failure_words(handshake) == "cannot connect to ws://c:9000/: refused"
    assert failure_words(ConnectionRefusedError(111, "Connection refused")) == "Connection refused"


def test_the_cause_speaks_when_the_error_is_silent() -> None:
    try:
        try:
            raise OSError(104, "Connection reset by peer")
        except OSError as inner:
            raise TimeoutError() from inner
    except TimeoutError as outer:
        assert failure_words(outer) == "Connection reset by peer"
    assert failure_words(TimeoutError()) == "TimeoutError"
