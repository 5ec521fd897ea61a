"""Content decoding for --compressed: gzip and deflate, streamed piece by piece.

Only the encodings the client offers (`Accept-Encoding: deflate, gzip`) are decoded;
anything else passes through as received, as curl does.
"""

from __future__ import annotations

import zlib

from smolmix_cli.apps.errors import BadContentEncoding


class ContentDecoder:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._z = zlib.decompressobj(wbits)
        self._started = False

    def feed(self, data: bytes) -> bytes:
        try:
            out = self._z.decompress(data)
        except zlib.error as exc:
            if self.encoding == "deflate" and not self._started:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                self._started = True
                return self.feed(data)
            raise BadContentEncoding(f"Error while processing content unencoding: {exc}") from None
        self._started = True
        return out

    def flush(self) -> bytes:
        try:
            return self._z.flush()
        except zlib.error as exc:
            raise BadContentEncoding(f"Error while processing content unencoding: {exc}") from None


def decoder_for(encoding: str | None) -> ContentDecoder | None:
    """A decoder for a Content-Encoding value, or None to pass the body through."""
    if encoding is None:
        return None
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return ContentDecoder(encoding)
    return None
