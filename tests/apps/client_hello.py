"""A sans-io TLS ClientHello parser (RFC 8446 4.1.2, 4.2), for fingerprint tests.

`parse` takes the bytes a client sent first on a connection (TLS records) and
returns the hello's fields; `fingerprint` keeps only what a server or observer
can use to tell clients apart: everything but the per-connection random fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

RECORD_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1

EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_SIGNATURE_ALGORITHMS = 13
EXT_ALPN = 16
EXT_PADDING = 21
EXT_SUPPORTED_VERSIONS = 43
EXT_PSK_KEY_EXCHANGE_MODES = 45
EXT_KEY_SHARE = 51


class Incomplete(Exception):
    """More bytes are needed before the hello can be parsed."""


class Malformed(Exception):
    """The bytes are not a TLS ClientHello."""


@dataclass
class ClientHello:
    record_version: int
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: list[int]
    compression_methods: bytes
    extensions: list[tuple[int, bytes]] = field(default_factory=list)

    def extension(self, ext_type: int) -> bytes | None:
        for kind, data in self.extensions:
            if kind == ext_type:
                return data
        return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise Malformed(f"truncated: need {n} bytes at {self.pos} of {len(self.data)}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.uint(length_bytes))

    def done(self) -> bool:
        return self.pos == len(self.data)


def _u16_list(data: bytes) -> list[int]:
    if len(data) % 2:
        raise Malformed("odd length in a list of 16-bit values")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def handshake_message(wire: bytes) -> tuple[int, bytes]:
    """The record version and the first handshake message, reassembled across records."""
    message = b""
    record_version = 0
    pos = 0
    while True:
        if len(wire) < pos + 5:
            raise Incomplete
        content_type = wire[pos]
        version = int.from_bytes(wire[pos + 1 : pos + 3], "big")
        length = int.from_bytes(wire[pos + 3 : pos + 5], "big")
        if content_type != RECORD_HANDSHAKE:
            raise Malformed(f"record type {content_type}, not handshake")
        if len(wire) < pos + 5 + length:
            raise Incomplete
        record_version = record_version or version
        message += wire[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(message) >= 4 and len(message) >= 4 + int.from_bytes(message[1:4], "big"):
            return record_version, message[: 4 + int.from_bytes(message[1:4], "big")]


def parse(wire: bytes) -> ClientHello:
    """The ClientHello at the start of `wire`; raises Incomplete until it is all there."""
    record_version, message = handshake_message(wire)
    if message[0] != HANDSHAKE_CLIENT_HELLO:
        raise Malformed(f"handshake type {message[0]}, not ClientHello")
    r = _Reader(message[4:])
    hello = ClientHello(
        record_version=record_version,
        legacy_version=r.uint(2),
        random=r.take(32),
        session_id=r.vector(1),
        cipher_suites=_u16_list(r.vector(2)),
        compression_methods=r.vector(1),
    )
    if not r.done():
        ext = _Reader(r.vector(2))
        while not ext.done():
            hello.extensions.append((ext.uint(2), ext.vector(2)))
    if not r.done():
        raise Malformed("bytes after the extensions")
    return hello


def _key_share_groups(data: bytes) -> list[tuple[int, int]]:
    """(group, key length) per offered share: the key bytes are per connection."""
    shares = _Reader(_Reader(data).vector(2))
    out = []
    while not shares.done():
        group = shares.uint(2)
        out.append((group, len(shares.vector(2))))
    return out


def _alpn(data: bytes) -> list[str]:
    names = _Reader(_Reader(data).vector(2))
    out = []
    while not names.done():
        out.append(names.vector(1).decode("ascii", "replace"))
    return out


def _u16_vector(length_bytes: int) -> Callable[[bytes], list[int]]:
    return lambda data: _u16_list(_Reader(data).vector(length_bytes))


def fingerprint(hello: ClientHello) -> dict[str, object]:
    """The hello without its per-connection fields: random, session id bytes (their
    length stays), key share bytes (group and length stay) and padding length (it
    only fills the hello to a size, so follows from the rest)."""
    decoders: dict[int, Callable[[bytes], object]] = {
        EXT_SUPPORTED_GROUPS: _u16_vector(2),
        EXT_SIGNATURE_ALGORITHMS: _u16_vector(2),
        EXT_SUPPORTED_VERSIONS: _u16_vector(1),
        EXT_PSK_KEY_EXCHANGE_MODES: lambda d: list(_Reader(d).vector(1)),
        EXT_ALPN: _alpn,
        EXT_KEY_SHARE: _key_share_groups,
        EXT_PADDING: lambda d: "padding",
    }
    extensions: list[tuple[int, object]] = []
    for kind, data in hello.extensions:
        decode = decoders.get(kind)
        extensions.append((kind, decode(data) if decode else data.hex()))
    return {
        "record_version": hex(hello.record_version),
        "legacy_version": hex(hello.legacy_version),
        "session_id_length": len(hello.session_id),
        "cipher_suites": [hex(c) for c in hello.cipher_suites],
        "compression_methods": hello.compression_methods.hex(),
        "extensions": extensions,
    }
