"""`RemoteTunnel`: the apps Connector (+ resolve, status) of a running background session.

Each operation is one connection to the session's Unix socket (see
protocol.py). A TCP stream is that connection itself once the daemon said
yes, so reading and writing it costs no framing. Errors come back classified
(line and exit code) and are raised here so that they classify the same
again, so a command prints and exits exactly as with an in-process tunnel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.abc import SocketAttribute

from smolmix_cli.apps.connector import OriginStream
from smolmix_cli.session import protocol as proto
from smolmix_cli.session.remote_errors import SessionUnavailable, rebuild_error
from smolmix_cli.session.unix import connect_unix
from smolmix_cli.tunnel.status import TunnelStatus

CONNECT_TIMEOUT = 5.0


class AttachedStream(anyio.abc.ByteStream):
    """The spliced connection as a byte stream; bytes read past the answer frame come first.

    `marks`: the daemon frames the way back (protocol.end_frame), so that a destination's
    FIN ends the stream and a reset, a broken tunnel or a session gone mid-stream raise
    `anyio.BrokenResourceError` with the words for it, as an in-process stream would.
    Without it (a daemon that does not know `end_mark`) every end looks like a FIN.
    """

    def __init__(
        self,
        conn: anyio.abc.SocketStream,
        first: bytes,
        remote: tuple[str, int] | None,
        marks: proto.FrameDecoder | None = None,
    ) -> None:
        self._conn = conn
        self._first = first
        self._remote = remote
        self._marks = marks
        self._ended: str | None = None
        """"fin", or why the stream broke; set by the end frame."""

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._first:
            data, self._first = self._first[:max_bytes], self._first[max_bytes:]
            return data
        if self._marks is None:
            return await self._conn.receive(max_bytes)
        return await self._receive_marked(max_bytes)

    async def _receive_marked(self, max_bytes: int) -> bytes:
        marks = self._marks
        assert marks is not None
        while True:
            if self._ended is not None:
                if self._ended == "fin":
                    raise anyio.EndOfStream
                raise anyio.BrokenResourceError(self._ended)
            try:
                frame = marks.next_frame()
            except proto.ProtocolError as exc:
                self._ended = f"the session sent a malformed stream ({exc})"
                continue
            if frame is None:
                try:
                    marks.feed(await self._conn.receive())
                except anyio.EndOfStream:
                    self._ended = "the session ended the stream without its end (it stopped?)"
                continue
            end = frame.header.get("end")
            if end is None:
                if frame.data:
                    self._first = frame.data[max_bytes:]
                    return frame.data[:max_bytes]
                continue
            message = frame.header.get("message")
            broken = message if isinstance(message, str) and message else "the stream broke"
            self._ended = "fin" if end == "fin" else broken

    async def send(self, item: bytes) -> None:
        await self._conn.send(item)

    async def send_eof(self) -> None:
        await self._conn.send_eof()

    async def aclose(self) -> None:
        await self._conn.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        remote = self._remote
        if remote is None:
            return {}
        return {
            SocketAttribute.remote_address: lambda: remote,
            SocketAttribute.remote_port: lambda: remote[1],
        }


class RemoteTunnel:
    """A Connector backed by the session daemon listening on `path`."""

    def __init__(
        self, path: Path, status: dict[str, Any] | None = None, *, reuse: bool = True
    ) -> None:
        self.path = path
        self.last_status: dict[str, Any] = status or {}
        self.reuse = reuse
        """Let the session keep this command's origin connections warm, and hand it warm ones
        (off with --fresh-connections)."""

    async def _call(
        self, request: proto.Request
    ) -> tuple[anyio.abc.SocketStream, proto.Frame, proto.FrameDecoder]:
        """Send one request; the open connection, the answer frame and the decoder's leftovers."""
        try:
            with anyio.fail_after(CONNECT_TIMEOUT):
                conn = await connect_unix(self.path, CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise SessionUnavailable(f"no session on {self.path}: {exc}") from None
        decoder = proto.FrameDecoder()
        try:
            await conn.send(proto.request_frame(request))
            while (frame := decoder.next_frame()) is None:
                decoder.feed(await conn.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError, proto.ProtocolError) as exc:
            await conn.aclose()
            raise SessionUnavailable(f"the session on {self.path} hung up: {exc}") from None
        except BaseException:
            await conn.aclose()
            raise
        answer = proto.parse_answer(frame)
        if isinstance(answer, proto.RemoteError):
            await conn.aclose()
            raise rebuild_error(answer)
        return conn, frame, decoder

    async def _simple(self, request: proto.Request) -> proto.Frame:
        conn, frame, _ = await self._call(request)
        await conn.aclose()
        return frame

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        conn, frame, decoder = await self._call(
            proto.Request("open_tcp", host=host, port=port, end_mark=True)
        )
        address = proto.answer_address(frame.header.get("remote"))
        if frame.header.get("end_mark") is True:  # the rest is framed: the decoder keeps it
            return AttachedStream(conn, b"", address, decoder)
        return AttachedStream(conn, decoder.rest(), address)

    async def open_origin(
        self,
        host: str,
        port: int,
        *,
        server_name: str | None,
        verify: bool,
        cafile: str | None,
        fresh: bool,
    ) -> OriginStream:
        if "open_http" not in self.last_status.get("ops", ()):
            return await self._origin_here(host, port, server_name, verify, cafile)
        request = proto.open_http(
            host,
            port,
            server_name=server_name,
            verify=verify,
            cafile=cafile,
            reuse=self.reuse,
            fresh=fresh,
        )
        conn, frame, decoder = await self._call(request)
        h = frame.header
        address = proto.answer_address(h.get("remote"))
        return OriginStream(
            AttachedStream(conn, b"", address, decoder),
            reused=h.get("reused") is True,
            tls_version=str(h.get("tls_version") or ""),
            tcp_seconds=proto.answer_seconds(h.get("tcp_s")),
            tls_seconds=proto.answer_seconds(h.get("tls_s")),
            remote=address,
        )

    async def _origin_here(
        self, host: str, port: int, server_name: str | None, verify: bool, cafile: str | None
    ) -> OriginStream:
        """A session from before `open_http`: a plain stream, TLS in this process."""
        from smolmix_cli.apps import tls

        started = anyio.current_time()
        stream = await self.open_tcp(host, port)
        connected = anyio.current_time()
        address = proto.answer_address(
            list(stream.extra(SocketAttribute.remote_address, None) or ())
        )
        version = ""
        if server_name is not None:
            context = tls.client_context(verify=verify, cafile=cafile)
            stream = await tls.wrap_client(stream, server_name, context)
            version = tls.negotiated(stream).get("tls_version", "")
        return OriginStream(
            stream,
            reused=False,
            tls_version=version,
            tcp_seconds=connected - started,
            tls_seconds=anyio.current_time() - connected,
            remote=address,
        )

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
        request = proto.Request(
            "udp_exchange", host=host, port=port, timeout=timeout, payload=payload
        )
        return (await self._simple(request)).data

    async def resolve(self, name: str) -> list[str]:
        found = (await self._simple(proto.Request("resolve", name=name))).header.get("addresses")
        if not isinstance(found, list) or not all(isinstance(a, str) for a in found):
            raise SessionUnavailable("the session sent a malformed resolve answer")
        return found

    async def status(self, wait: float = 0.0) -> dict[str, Any]:
        """The daemon's status; with `wait`, first wait up to that long for its tunnel to be ready."""
        frame = await self._simple(proto.Request("status", timeout=wait))
        status = frame.header.get("status")
        if not isinstance(status, dict):
            raise SessionUnavailable("the session sent a malformed status answer")
        self.last_status = status
        return status

    async def stop(self) -> None:
        await self._simple(proto.Request("stop"))

    def snapshot(self) -> TunnelStatus:
        """The tunnel's status as of the last `status()` call (the in-process tunnel's type)."""
        return TunnelStatus.from_json(self.last_status)
