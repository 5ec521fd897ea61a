"""Fetching the topology from a nym-api directory (spec 4.1, 4.2, 9.2).

The sans-io part (URLs, request building, answer decoding, page collection)
is separate from the small anyio shell (`NymApiClient`) that moves the bytes
with h11, so pagination and metadata rules are testable without sockets.

Answers may come gzip-compressed (nym-api's unstable routes sit behind a
`CompressionLayer`: nym `nym-api/src/unstable_routes/v2/nym_nodes/mod.rs`);
the decompressed size is bounded. Connecting uses Happy Eyeballs (RFC 8305:
the next resolved address is tried after 250 ms, the first to connect wins),
so a host with a broken IPv6 route costs a quarter second, not a timeout.

Every failure, whatever its cause (name resolution, refused connection, TLS,
timeout, an HTTP error status, a body that is not the nym-api shape), surfaces
as one `DirectoryUnavailable` with a one-line message, so the CLI can print it
and exit with its documented code.
"""

from __future__ import annotations

import json
import socket
import ssl
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
import h11
from anyio.streams.tls import TLSStream

from smolmix_cli.mixnet.directory.api_urls import (
    ApiUrl,
    DirectoryUnavailable,
    FailureKind,
    make_ssl_context,
)
from smolmix_cli.mixnet.topology.topology import (
    KeyRotationInfo,
    Node,
    NodesPage,
    RewardedSet,
    Topology,
    TopologyError,
    parse_key_rotation_info,
    parse_nodes_page,
    parse_rewarded_set,
)

DEFAULT_TIMEOUT = 10.0  # seconds per request attempt on one directory URL (small answers)
LARGE_TIMEOUT = 30.0  # the same for the large lists (`described` is megabytes on mainnet)
HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next resolved address is tried (RFC 8305)
MAX_BODY = 32 * 1024 * 1024  # bytes on the wire; mainnet's full skimmed list is a few MB
MAX_DECODED_BODY = 64 * 1024 * 1024  # bytes after gzip; refuses a decompression bomb
ROTATION_READS = 2  # a rotation mismatch between node lists and key-rotation-info: read again once
MAX_PAGES = 1000
USER_AGENT = "nym-http-api-client/1.21.0"
"""What upstream's Rust clients send when they set none (most do): nymtech/nym
common/http-api-client/src/lib.rs `client_defaults!(... user_agent =
format!("nym-http-api-client/{}", env!("CARGO_PKG_VERSION")))`, the workspace
version 1.21.0 (release 2026.9-venaco). It names no smolmix; a directory still
sees our Accept-Encoding (gzip only, where reqwest lists gzip, deflate, br, zstd)."""

PATH_REWARDED_SET = "v1/nym-nodes/rewarded-set"
PATH_KEY_ROTATION = "v1/epoch/key-rotation-info"
PATH_ACTIVE_MIXNODES = "v2/unstable/nym-nodes/skimmed/mixnodes/active"
PATH_ENTRY_GATEWAYS = "v2/unstable/nym-nodes/skimmed/entry-gateways"
PATH_EXIT_GATEWAYS = "v2/unstable/nym-nodes/skimmed/exit-gateways"
PATH_ALL_SKIMMED = "v2/unstable/nym-nodes/skimmed"
PATH_DESCRIBED = "v2/nym-nodes/described"
LARGE_PATHS = frozenset({PATH_DESCRIBED, PATH_ALL_SKIMMED})

_T = TypeVar("_T")


def build_request(
    api: ApiUrl, path: str, query: Mapping[str, str | int] | None = None
) -> h11.Request:
    """A GET asking for JSON (the format a Python client reads; spec 4.2)."""
    return h11.Request(
        method="GET",
        target=api.target(path, query),
        headers=[
            ("Host", api.host_header),
            ("User-Agent", USER_AGENT),
            ("Accept", "application/json"),
            ("Accept-Encoding", "gzip"),
            ("Connection", "close"),
        ],
    )


def decode_body(url: str, content_encoding: str, body: bytes) -> bytes:
    """The body with its content coding (none or gzip) undone, at most MAX_DECODED_BODY."""
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "x-gzip"):
        raise DirectoryUnavailable(
            FailureKind.MALFORMED, url, f"unsupported content encoding {coding!r}"
        )
    out = bytearray()
    rest = body
    try:
        while rest:
            member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += member.decompress(rest, MAX_DECODED_BODY + 1 - len(out))
            if len(out) > MAX_DECODED_BODY or member.unconsumed_tail:
                raise DirectoryUnavailable(
                    FailureKind.MALFORMED,
                    url,
                    f"answer over {MAX_DECODED_BODY // (1024 * 1024)} MiB once decompressed",
                )
            if not member.eof:
                raise DirectoryUnavailable(FailureKind.MALFORMED, url, "truncated gzip body")
            rest = member.unused_data  # gzip allows several members back to back
    except zlib.error as exc:
        raise DirectoryUnavailable(FailureKind.MALFORMED, url, f"bad gzip body ({exc})") from None
    return bytes(out)


def decode_answer(url: str, status: int, body: bytes, content_encoding: str = "") -> Any:
    """The JSON of a 2xx answer, or DirectoryUnavailable naming what was wrong."""
    if not 200 <= status < 300:
        raise DirectoryUnavailable(FailureKind.HTTP, url, f"status {status}")
    body = decode_body(url, content_encoding, body)
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise DirectoryUnavailable(FailureKind.MALFORMED, url, "body is not JSON") from None


class PageCollector:
    """Pagination rule of spec 4.2: page 0 on, until `total` nodes, metadata agreeing."""

    def __init__(self, url: str, max_pages: int = MAX_PAGES) -> None:
        self.url = url
        self.max_pages = max_pages
        self.pages: list[NodesPage] = []
        self.collected = 0

    @property
    def next_page(self) -> int:
        return len(self.pages)

    def add(self, body: Any) -> bool:
        """Take one page's JSON; True when another page must be fetched."""
        try:
            page = parse_nodes_page(body)
        except TopologyError as exc:
            raise DirectoryUnavailable(FailureKind.MALFORMED, self.url, str(exc)) from None
        if self.pages:
            first = self.pages[0]
            if (page.absolute_epoch_id, page.rotation_id) != (
                first.absolute_epoch_id,
                first.rotation_id,
            ):
                raise DirectoryUnavailable(
                    FailureKind.MALFORMED, self.url, "pages disagree on epoch or key rotation"
                )
        self.pages.append(page)
        self.collected += page.received
        if self.collected >= page.total:
            return False
        if not page.received:
            raise DirectoryUnavailable(
                FailureKind.MALFORMED,
                self.url,
                f"page {page.page} is empty but only {self.collected} of {page.total} nodes seen",
            )
        if len(self.pages) >= self.max_pages:
            raise DirectoryUnavailable(FailureKind.MALFORMED, self.url, "too many pages")
        return True

    @property
    def nodes(self) -> list[Node]:
        return [node for page in self.pages for node in page.nodes]


class NymApiClient:
    """Reads a nym-api over HTTP(S); falls back through the URL list in order."""

    def __init__(
        self,
        urls: Sequence[ApiUrl],
        *,
        ca_file: Path | str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        large_timeout: float | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one directory URL is needed")
        self.urls = tuple(urls)
        self.timeout = timeout
        self.large_timeout = max(timeout, LARGE_TIMEOUT if large_timeout is None else large_timeout)
        self._ca_file = ca_file
        self._ssl_context = ssl_context
        self._preferred = 0

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = make_ssl_context(self._ca_file)
        return self._ssl_context

    async def get_json(self, path: str, query: Mapping[str, str | int] | None = None) -> Any:
        """GET one API path as JSON from the first URL that answers."""
        order = list(range(self._preferred, len(self.urls))) + list(range(self._preferred))
        first_error: DirectoryUnavailable | None = None
        for index in order:
            api = self.urls[index]
            try:
                result = await self._get_once(api, path, query)
            except DirectoryUnavailable as exc:
                if first_error is None:
                    first_error = exc
                continue
            self._preferred = index
            return result
        assert first_error is not None
        raise DirectoryUnavailable(
            first_error.kind, first_error.url, first_error.detail, tried=len(order)
        )

    def timeout_for(self, path: str) -> float:
        """Per-request bound: longer for the lists that are megabytes on mainnet."""
        return self.large_timeout if path.strip("/") in LARGE_PATHS else self.timeout

    async def _get_once(self, api: ApiUrl, path: str, query: Mapping[str, str | int] | None) -> Any:
        url = api.full(path, query)
        timeout = self.timeout_for(path)
        try:
            with anyio.fail_after(timeout):
                status, coding, body = await self._exchange(
                    api, build_request(api, path, query), url
                )
        except TimeoutError:
            raise DirectoryUnavailable(
                FailureKind.TIMEOUT, url, f"no answer within {timeout:g} s"
            ) from None
        return decode_answer(url, status, body, coding)

    async def _exchange(
        self, api: ApiUrl, request: h11.Request, url: str
    ) -> tuple[int, str, bytes]:
        stream = await self._connect(api, url)
        async with stream:
            conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
            try:
                await stream.send(conn.send(request) + conn.send(h11.EndOfMessage()))
                status = 0
                coding = ""
                body = bytearray()
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        try:
                            data = await stream.receive(65536)
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            data = b""
                        except ssl.SSLError as exc:
                            raise DirectoryUnavailable(FailureKind.TLS, url, str(exc)) from None
                        conn.receive_data(data)
                        continue
                    if isinstance(event, h11.Response):
                        status = event.status_code
                        coding = ",".join(
                            v.decode("latin-1")
                            for k, v in event.headers
                            if k == b"content-encoding"
                        )
                    elif isinstance(event, h11.Data):
                        body += event.data
                        if len(body) > MAX_BODY:
                            raise DirectoryUnavailable(
                                FailureKind.MALFORMED, url, "answer too large"
                            )
                    elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                        if status == 0:
                            raise DirectoryUnavailable(
                                FailureKind.MALFORMED, url, "connection closed without an answer"
                            )
                        return status, coding, bytes(body)
            except h11.RemoteProtocolError as exc:
                raise DirectoryUnavailable(FailureKind.MALFORMED, url, f"bad HTTP: {exc}") from None
            except (anyio.BrokenResourceError, OSError) as exc:
                raise DirectoryUnavailable(FailureKind.CONNECT, url, _os_detail(exc)) from None

    async def _connect(self, api: ApiUrl, url: str) -> anyio.abc.ByteStream:
        host = api.connect_host
        try:
            infos = await anyio.getaddrinfo(host, api.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise DirectoryUnavailable(FailureKind.RESOLVE, url, _os_detail(exc)) from None
        addresses = interleave_families([(info[0], str(info[4][0])) for info in infos])
        if not addresses:
            raise DirectoryUnavailable(FailureKind.RESOLVE, url, "no addresses")
        try:
            tcp = await connect_happy_eyeballs(addresses, api.port)
        except OSError as exc:
            raise DirectoryUnavailable(FailureKind.CONNECT, url, _os_detail(exc)) from None
        if api.scheme == "http":
            return tcp
        try:
            return await TLSStream.wrap(
                tcp, hostname=host, ssl_context=self._context(), standard_compatible=False
            )
        except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
            await tcp.aclose()
            raise DirectoryUnavailable(FailureKind.TLS, url, _os_detail(exc)) from None

    # --- the endpoints the client reads (spec 4.2, 9.2) --------------------------------

    async def get_nodes(self, path: str, per_page: int | None = None) -> list[Node]:
        """Every node of a paged `skimmed` list."""
        return [n for page in await self.get_node_pages(path, per_page) for n in page.nodes]

    async def get_node_pages(self, path: str, per_page: int | None = None) -> list[NodesPage]:
        """Every page of a `skimmed` node list (page 0 on, until `total`)."""
        api_url = self.urls[self._preferred].full(path)
        collector = PageCollector(api_url)
        while True:
            query: dict[str, str | int] = {"page": collector.next_page}
            if per_page is not None:
                query["per_page"] = per_page
            if not collector.add(await self.get_json(path, query)):
                return collector.pages

    async def rewarded_set(self) -> RewardedSet:
        return await self._get_parsed(PATH_REWARDED_SET, parse_rewarded_set)

    async def key_rotation_info(self) -> KeyRotationInfo:
        return await self._get_parsed(PATH_KEY_ROTATION, parse_key_rotation_info)

    async def _get_parsed(self, path: str, parse: Callable[[Any], _T]) -> _T:
        """One endpoint's JSON through its parser; a body that does not parse is MALFORMED."""
        body = await self.get_json(path)
        try:
            return parse(body)
        except TopologyError as exc:
            raise DirectoryUnavailable(
                FailureKind.MALFORMED, self.urls[self._preferred].full(path), str(exc)
            ) from None

    async def entry_gateways(self) -> list[Node]:
        return await self.get_nodes(PATH_ENTRY_GATEWAYS)

    async def topology(self) -> Topology:
        """Rewarded set + active mixnodes + entry gateways, as the client reads them (9.2).

        At a rotation boundary the cached node lists can lag key-rotation-info; the
        lists are read once more, and if they still differ their own `rotation_id`
        wins, as in the Rust client, which takes it from the lists' metadata and never
        compares (nym `common/client-core/src/client/topology_control/nym_api_provider.rs`).
        """
        where = self.urls[self._preferred].full(PATH_ENTRY_GATEWAYS)
        for _ in range(ROTATION_READS):
            rotation = await self.key_rotation_info()
            rewarded = await self.rewarded_set()
            pages = await self.get_node_pages(PATH_ACTIVE_MIXNODES)
            pages += await self.get_node_pages(PATH_ENTRY_GATEWAYS)
            where = self.urls[self._preferred].full(PATH_ENTRY_GATEWAYS)
            rotations = {(p.rotation_id, p.absolute_epoch_id) for p in pages}
            if len(rotations) <= 1 and all(
                p.rotation_id == rotation.current_key_rotation_id for p in pages
            ):
                break
        try:
            return Topology.from_directory(
                rewarded, pages, next_rotation_at=rotation.next_rotation_at()
            )
        except TopologyError as exc:
            raise DirectoryUnavailable(FailureKind.MALFORMED, where, str(exc)) from None


def interleave_families(addresses: Sequence[tuple[int, str]]) -> list[str]:
    """Resolved (family, address) pairs in RFC 8305 section 4 order: the resolver's
    first family leads, then the families alternate; duplicates dropped."""
    by_family: dict[int, list[str]] = {}
    for family, address in addresses:
        seen = by_family.setdefault(family, [])
        if address not in seen:
            seen.append(address)
    queues = list(by_family.values())
    ordered: list[str] = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


async def connect_happy_eyeballs(
    addresses: Sequence[str], port: int, delay: float = HAPPY_EYEBALLS_DELAY
) -> anyio.abc.SocketStream:
    """The first TCP connection of staggered attempts (RFC 8305): the next address is
    tried `delay` seconds after the last began, or at once when it failed; the winner
    cancels the rest, a late second success is closed. OSError (the first failure)
    when all fail.

    anyio.connect_tcp races the same way but resolves with its own internal lookup;
    resolving here keeps a resolver failure distinct (RESOLVE, not CONNECT).
    """
    winner: anyio.abc.SocketStream | None = None
    errors: list[OSError] = []

    async def attempt(address: str, done: anyio.Event, tg: anyio.abc.TaskGroup) -> None:
        nonlocal winner
        try:
            stream = await anyio.connect_tcp(address, port)
        except OSError as exc:
            errors.append(exc)
            done.set()
            return
        if winner is None:
            winner = stream
            tg.cancel_scope.cancel()
        else:
            await stream.aclose()

    async with anyio.create_task_group() as tg:
        for address in addresses:
            done = anyio.Event()
            tg.start_soon(attempt, address, done, tg)
            with anyio.move_on_after(delay):
                await done.wait()
    if winner is None:
        raise errors[0] if errors else OSError("no address to connect to")
    return winner


def _os_detail(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__
