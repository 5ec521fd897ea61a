"""The session control protocol codec: vectors, documented examples, byte-at-a-time, fuzz."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smolmix_cli.session import protocol as proto
from smolmix_cli.session.protocol import Frame, ProtocolError, Request, VersionMismatch

DOC = Path(__file__).resolve().parents[2] / "docs" / "session-protocol.md"

REQUESTS = [
    Request("open_tcp", host="example.org", port=443),
    Request("open_tcp", host="2001:db8::1", port=22),
    Request("udp_exchange", host="198.18.0.1", port=53, timeout=5.0, payload=b"\x00\x01query"),
    Request("resolve", name="demo.smolmix.test"),
    Request("status"),
    Request("status", timeout=30.0),
    Request("stop"),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r.op)
def test_requests_round_trip_whole_and_byte_at_a_time(request_: Request) -> None:
    wire = proto.request_frame(request_)
    assert wire[:4] == b"SMX\x01"
    decoder = proto.FrameDecoder()
    for i in range(len(wire)):
        assert decoder.next_frame() is None
        decoder.feed(wire[i : i + 1])
    frame = decoder.next_frame()
    assert frame is not None
    assert proto.parse_request(frame) == request_
    assert decoder.rest() == b""


def test_bytes_after_the_answer_belong_to_the_stream() -> None:
    decoder = proto.FrameDecoder()
    decoder.feed(proto.ok_frame(remote=["192.0.2.1", 80]) + b"HTTP/1.1 200 OK\r\n")
    frame = decoder.next_frame()
    assert frame is not None
    assert proto.parse_answer(frame) == {"ok": True, "remote": ["192.0.2.1", 80]}
    assert decoder.rest() == b"HTTP/1.1 200 OK\r\n"
    assert decoder.next_frame() is None


def test_answers() -> None:
    ok = Frame(*_decode(proto.ok_frame(b"reply", extra=1)))
    assert ok.data == b"reply" and proto.parse_answer(ok) == {"ok": True, "extra": 1}
    err = Frame(*_decode(proto.error_frame("ResolveError", "Could not resolve host: x", 6)))
    assert proto.parse_answer(err) == proto.RemoteError(
        "ResolveError", "Could not resolve host: x", 6
    )
    for header in (
        {},
        {"ok": 1},
        {"ok": False},
        {"ok": False, "error": {"type": "X"}},
        {"ok": False, "error": {"type": "X", "message": "m", "exit_code": 999}},
    ):
        with pytest.raises(ProtocolError):
            proto.parse_answer(Frame(header))


def _decode(wire: bytes) -> tuple[dict[str, object], bytes]:
    decoder = proto.FrameDecoder()
    decoder.feed(wire)
    frame = decoder.next_frame()
    assert frame is not None
    return frame.header, frame.data


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"op": "fly"}, b"", "unknown op"),
        ({"op": "open_tcp", "host": "", "port": 80}, b"", "host"),
        ({"op": "open_tcp", "host": "a", "port": 0}, b"", "port"),
        ({"op": "open_tcp", "host": "a", "port": 65536}, b"", "port"),
        ({"op": "open_tcp", "host": "a", "port": True}, b"", "port"),
        ({"op": "open_tcp", "host": "a" * 256, "port": 1}, b"", "host"),
        ({"op": "udp_exchange", "host": "a", "port": 53}, b"x", "timeout"),
        ({"op": "udp_exchange", "host": "a", "port": 53, "timeout": -1}, b"x", "timeout"),
        ({"op": "resolve"}, b"", "name"),
        ({"op": "status", "wait": "soon"}, b"", "wait"),
    ],
)
def test_invalid_requests(header: dict[str, object], data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        proto.parse_request(Frame(header, data))


def test_version_magic_and_size_limits() -> None:
    wire = bytearray(proto.request_frame(Request("stop")))
    wire[3] = 2
    decoder = proto.FrameDecoder()
    decoder.feed(bytes(wire))
    with pytest.raises(VersionMismatch):
        decoder.next_frame()
    decoder = proto.FrameDecoder()
    decoder.feed(b"GE")  # an early mismatch is detected before a whole header arrives
    with pytest.raises(ProtocolError):
        decoder.next_frame()
    decoder = proto.FrameDecoder()
    decoder.feed(proto.HEADER.pack(b"SMX", 1, proto.MAX_JSON + 1, 0))
    with pytest.raises(ProtocolError, match="too large"):
        decoder.next_frame()
    decoder = proto.FrameDecoder()
    decoder.feed(proto.HEADER.pack(b"SMX", 1, 2, 0) + b"[]")
    with pytest.raises(ProtocolError, match="object"):
        decoder.next_frame()
    with pytest.raises(ProtocolError):
        proto.encode({}, b"x" * (proto.MAX_DATA + 1))


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    decoder = proto.FrameDecoder()
    decoder.feed(data)
    try:
        frame = decoder.next_frame()
        if frame is not None:
            proto.parse_request(frame)
            proto.parse_answer(frame)
    except ProtocolError:
        pass


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
        max_size=5,
    ),
    st.binary(max_size=50),
)
def test_any_header_parses_as_request_or_raises_protocol_error(
    header: dict[str, object], data: bytes
) -> None:
    with contextlib.suppress(ProtocolError):
        proto.parse_request(Frame(header, data))


def test_documented_examples_match_the_codec() -> None:
    if not DOC.exists():
        pytest.skip(f"{DOC} is missing")
    blocks = re.findall(r"```frame\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 4
    for block in blocks:
        lines = block.splitlines()
        header = bytes.fromhex(lines[0].replace(" ", ""))
        body = lines[1].encode()
        data = "\n".join(lines[2:]).encode()
        fields = json.loads(body)
        assert proto.encode(fields, data) == header + body + data
