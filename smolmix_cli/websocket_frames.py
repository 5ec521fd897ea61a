"""Reading WebSocket frame headers as they arrive, to refuse an oversized message at once.

Sans-io and separate from the connection (smolmix_cli.websocket) because it
sees the raw bytes before wsproto does: wsproto only reports a frame once its
payload arrived, so a 100 MiB announcement would otherwise hold the connection
until the bytes or a timeout came.
"""

from __future__ import annotations


class FrameLengthGuard:
    """Follows frame boundaries in the received bytes to read each header's announced length.

    wsproto waits for a frame's payload before it says anything about the frame, so a
    header announcing 100 MiB would hold the connection until the bytes (or a timeout)
    came. This sees the length at the header and lets the connection refuse it (1009)
    at once. Sans-io: bytes in, the first announced message size over the limit out.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._head = bytearray()
        self._skip = 0
        self._message = 0
        """Bytes announced so far by the frames of the message being received."""

    def feed(self, data: bytes) -> int | None:
        """The announced size of a message over the limit, once its header arrived."""
        at = 0
        while at < len(data):
            if self._skip:
                taken = min(self._skip, len(data) - at)
                self._skip -= taken
                at += taken
                continue
            self._head.append(data[at])
            at += 1
            announced = self._header_done()
            if announced is not None:
                return announced
        return None

    def _header_done(self) -> int | None:
        head = self._head
        if len(head) < 2:
            return None
        short = head[1] & 0x7F
        extended = 2 if short == 126 else 8 if short == 127 else 0
        need = 2 + extended + (4 if head[1] & 0x80 else 0)
        if len(head) < need:
            return None
        length = int.from_bytes(head[2 : 2 + extended], "big") if extended else short
        opcode, fin = head[0] & 0x0F, bool(head[0] & 0x80)
        self._head = bytearray()
        self._skip = length
        if opcode >= 8:  # control frames interleave with a message and stay small
            return None
        self._message = length if opcode else self._message + length
        announced = self._message
        if fin:
            self._message = 0
        return announced if announced > self._limit else None
