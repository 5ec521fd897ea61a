"""The local network's directory: the nym-api endpoints clients read (spec 4.2, 8, 9.2).

`DirectoryState.answer()` is the sans-io part: a request (method, target) in,
an HTTP answer out, built from the running nodes' keys and ports. The shapes
follow what the published client accepted (directory-answers.json): JSON
bodies even when bincode is asked for, `performance` as a decimal string,
`status: null`, CORS on every answer and a 204 to every OPTIONS preflight.
Answers are gzip-compressed when the request accepts it, as nym-api's
`CompressionLayer` does (nym-api/src/unstable_routes/v2/nym_nodes/mod.rs).
`DirectoryServer` is the thin anyio + h11 shell around it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc
import h11
from anyio.streams.tls import TLSStream

from smolmix_cli.accept import serve_contained
from smolmix_cli.mixnet.base58 import b58encode
from smolmix_cli.mixnet.topology.topology import EntryDetails, NodeRole, SupportedRoles
from smolmix_cli.testnet.h11_io import next_event
from smolmix_cli.testnet.nodes.node_spec import NodeSpec

log = logging.getLogger(__name__)

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
MAX_REQUEST_HEAD = 16 * 1024
IDLE_TIMEOUT = 30.0  # seconds a client connection may sit without a complete request
MAX_CONNECTIONS = 256
STATUS_PATH = "/smolmix/status"
DEFAULT_WS_PORT = 9000  # nym-node's default mixnet websocket port (described answer)

CORS_HEADERS: tuple[tuple[str, str], ...] = (("Access-Control-Allow-Origin", "*"),)
PREFLIGHT_HEADERS: tuple[tuple[str, str], ...] = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"),
    ("Access-Control-Allow-Headers", "*"),
    ("Access-Control-Allow-Private-Network", "true"),
    ("Access-Control-Max-Age", "600"),
)


@dataclass(frozen=True, slots=True)
class DirectoryNode:
    """What the directory knows of one node (the running node supplies it)."""

    node_id: int
    identity: bytes  # ed25519 public key
    sphinx_key: bytes  # x25519 public key of the current rotation
    ip: str
    mix_port: int
    role: NodeRole
    layer: int | None = None
    entry: EntryDetails | None = None
    supported_roles: SupportedRoles = field(default_factory=SupportedRoles)
    performance: str = "1.0"
    ipr_address: str | None = None  # exit gateways: the IPR's Recipient text
    build_version: str = "1.31.0"
    more_ips: tuple[str, ...] = ()  # announced after `ip` (mainnet nodes often list v6 first)
    described_extra: Mapping[str, Any] | None = None  # merged into `described` (one level deep)

    @classmethod
    def from_spec(cls, spec: NodeSpec, ipr_address: str | None = None) -> DirectoryNode:
        """What a started node (ports bound) looks like in the directory."""
        text = str(spec.performance)
        return cls(
            node_id=spec.node_id,
            identity=spec.identity.public_bytes,
            sphinx_key=spec.sphinx.public_bytes,
            ip=spec.host,
            mix_port=spec.mix_port,
            role=spec.role,
            layer=spec.layer,
            entry=spec.entry,
            supported_roles=spec.supported_roles,
            performance=text if "." in text else text + ".0",
            ipr_address=ipr_address,
        )

    def role_json(self) -> Any:
        if self.role is NodeRole.MIXNODE:
            return {"Mixnode": {"layer": self.layer}}
        return self.role.value

    def skimmed(self) -> dict[str, Any]:
        """`SkimmedNodeV1` as nym-api writes it (field order as in the probe)."""
        return {
            "node_id": self.node_id,
            "ed25519_identity_pubkey": b58encode(self.identity),
            "ip_addresses": [self.ip, *self.more_ips],
            "mix_port": self.mix_port,
            "x25519_sphinx_pubkey": b58encode(self.sphinx_key),
            "role": self.role_json(),
            "supported_roles": {
                "mixnode": self.supported_roles.mixnode,
                "entry": self.supported_roles.entry,
                "exit_nr": self.supported_roles.exit_nr,
                "exit_ipr": self.supported_roles.exit_ipr,
            },
            "entry": None
            if self.entry is None
            else {
                "hostname": self.entry.hostname,
                "ws_port": self.entry.ws_port,
                "wss_port": self.entry.wss_port,
            },
            "performance": self.performance,
        }

    def described(self, rotation_id: int, last_polled: str) -> dict[str, Any]:
        """`NymNodeDescription` (v2 described), enough for IPR discovery (ipr spec 2.11)."""
        sphinx = b58encode(self.sphinx_key)
        answer: dict[str, Any] = {
            "node_id": self.node_id,
            "contract_node_type": "nym_node",
            "description": {
                "last_polled": last_polled,
                "host_information": {
                    "ip_address": [self.ip, *self.more_ips],
                    "hostname": None if self.entry is None else self.entry.hostname,
                    "keys": {
                        "ed25519": b58encode(self.identity),
                        "x25519": sphinx,
                        "current_x25519_sphinx_key": {
                            "rotation_id": rotation_id,
                            "public_key": sphinx,
                        },
                        "pre_announced_x25519_sphinx_key": None,
                        "x25519_versioned_noise": None,
                    },
                },
                "declared_role": {
                    "mixnode": self.supported_roles.mixnode,
                    "entry": self.supported_roles.entry,
                    "exit_nr": self.supported_roles.exit_nr,
                    "exit_ipr": self.supported_roles.exit_ipr,
                },
                "auxiliary_details": {
                    "location": None,
                    "announce_ports": {"verloc_port": None, "mix_port": self.mix_port},
                    "accepted_operator_terms_and_conditions": True,
                },
                "build_information": {
                    "binary_name": "nym-node",
                    "build_timestamp": last_polled,
                    "build_version": self.build_version,
                    "commit_sha": "0" * 40,
                    "commit_timestamp": last_polled,
                    "commit_branch": "smolmix-testnet",
                    "rustc_version": "0.0.0",
                    "rustc_channel": "stable",
                    "cargo_profile": "release",
                    "cargo_triple": "python",
                },
                "network_requester": None,
                "ip_packet_router": None
                if self.ipr_address is None
                else {"address": self.ipr_address},
                "authenticator": None,
                "wireguard": None,
                # required (not an Option) in NymNodeData: nym-node reports its websocket
                # ports in every mode, so nodes without an entry show the default port
                "mixnet_websockets": {"ws_port": DEFAULT_WS_PORT, "wss_port": None}
                if self.entry is None
                else {"ws_port": self.entry.ws_port, "wss_port": self.entry.wss_port},
                "lewes_protocol": None,
            },
        }
        description: dict[str, Any] = answer["description"]
        for key, value in (self.described_extra or {}).items():
            if isinstance(value, dict) and isinstance(description.get(key), dict):
                description[key] = {**description[key], **value}
            else:
                description[key] = value
        return answer


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_answer(status: int, value: Any) -> Answer:
    body = json.dumps(value, separators=(",", ":")).encode()
    return Answer(status, (("Content-Type", "application/json"), *CORS_HEADERS), body)


def _gzipped(answer: Answer) -> Answer:
    """The answer with its body gzip-compressed (mtime 0: equal bodies, equal bytes)."""
    body = gzip.compress(answer.body, compresslevel=6, mtime=0)
    headers = (*answer.headers, ("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding"))
    return Answer(answer.status, headers, body)


def accepts_gzip(header_values: Sequence[str]) -> bool:
    """Whether Accept-Encoding values allow gzip (a `q=0` refuses it)."""
    for value in header_values:
        for item in value.split(","):
            coding, _, params = item.strip().partition(";")
            if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
                continue
            q = params.strip().lower()
            if q.startswith("q=") and q[2:].strip() in ("0", "0.0", "0.00", "0.000"):
                continue
            return True
    return False


def _not_found(path: str) -> Answer:
    return _json_answer(404, {"message": f"the requested resource could not be found: {path}"})


class BadQuery(Exception):
    """A query parameter the directory cannot use (answered with 400)."""


def _int_param(params: dict[str, list[str]], name: str, default: int, high: int) -> int:
    values = params.get(name)
    if not values:
        return default
    text = values[-1]
    if not text.isdigit() or len(text) > 9:
        raise BadQuery(f"{name} must be a non-negative integer")
    return min(int(text), high)


class DirectoryState:
    """The data the directory serves, and the sans-io request router."""

    def __init__(
        self,
        nodes: Sequence[DirectoryNode],
        *,
        absolute_epoch_id: int = 100,
        rotation_id: int = 10,
        validity_epochs: int = 10,
        epoch_seconds: int = 3600,
        now: datetime | None = None,
        status_provider: Callable[[], Any] | None = None,
        paginate: bool = True,
    ) -> None:
        ids = [n.node_id for n in nodes]
        if len(set(ids)) != len(ids):
            raise ValueError("node ids must be unique")
        self.nodes = list(nodes)
        self.absolute_epoch_id = absolute_epoch_id
        self.rotation_id = rotation_id
        self.validity_epochs = validity_epochs
        self.epoch_seconds = epoch_seconds
        moment = now or datetime.now(UTC)
        self.refreshed_at = _rfc3339(moment)
        self.epoch_start = _rfc3339(moment - timedelta(minutes=5))
        self.status_provider = status_provider
        self.paginate = paginate  # False: as mainnet's nym-api, one page with everything
        self.requests = 0

    def update_node(self, node_id: int, **changes: Any) -> None:
        """Change what is served for one node (e.g. an exit's IPR address once it runs)."""
        for index, node in enumerate(self.nodes):
            if node.node_id == node_id:
                self.nodes[index] = replace(node, **changes)
                return
        raise KeyError(node_id)

    # --- node selections (which list a node appears in) --------------------------------

    def mixnodes(self) -> list[DirectoryNode]:
        return [n for n in self.nodes if n.role is NodeRole.MIXNODE]

    def all_mixnodes(self) -> list[DirectoryNode]:
        """Every node declaring the mixnode role, standby and inactive ones too."""
        return [n for n in self.nodes if n.supported_roles.mixnode]

    def entry_gateways(self) -> list[DirectoryNode]:
        return [n for n in self.nodes if n.supported_roles.entry and n.entry is not None]

    def exit_gateways(self) -> list[DirectoryNode]:
        return [n for n in self.nodes if n.supported_roles.exit and n.entry is not None]

    def rewarded_set(self) -> dict[str, Any]:
        def ids(pred: Callable[[DirectoryNode], bool]) -> list[int]:
            return [n.node_id for n in self.nodes if pred(n)]

        return {
            "epoch_id": self.absolute_epoch_id,
            "entry_gateways": ids(lambda n: n.role is NodeRole.ENTRY_GATEWAY),
            "exit_gateways": ids(lambda n: n.role is NodeRole.EXIT_GATEWAY),
            "layer1": ids(lambda n: n.role is NodeRole.MIXNODE and n.layer == 1),
            "layer2": ids(lambda n: n.role is NodeRole.MIXNODE and n.layer == 2),
            "layer3": ids(lambda n: n.role is NodeRole.MIXNODE and n.layer == 3),
            "standby": ids(lambda n: n.role is NodeRole.STANDBY),
        }

    def key_rotation_info(self) -> dict[str, Any]:
        start = self.absolute_epoch_id - (self.absolute_epoch_id % self.validity_epochs)
        return {
            "key_rotation_state": {"validity_epochs": self.validity_epochs, "initial_epoch_id": 0},
            "current_absolute_epoch_id": self.absolute_epoch_id,
            "current_epoch_start": self.epoch_start,
            "epoch_duration": {"secs": self.epoch_seconds, "nanos": 0},
            "progress": {
                "current_key_rotation_id": self.rotation_id,
                "current_rotation_starting_epoch": start,
                "current_rotation_ending_epoch": start + self.validity_epochs - 1,
            },
        }

    def _metadata(self) -> dict[str, Any]:
        return {
            "status": None,
            "absolute_epoch_id": self.absolute_epoch_id,
            "rotation_id": self.rotation_id,
            "refreshed_at": self.refreshed_at,
        }

    def _page(self, items: list[Any], params: dict[str, list[str]]) -> dict[str, Any]:
        page = _int_param(params, "page", 0, 10**9)
        size = _int_param(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE) or DEFAULT_PER_PAGE
        if not self.paginate:
            # nym-api ignores page/per_page (skimmed/helpers.rs: `let _ = query_params.page`)
            return {
                "pagination": {"total": len(items), "page": 0, "size": len(items)},
                "data": items,
            }
        return {
            "pagination": {"total": len(items), "page": page, "size": size},
            "data": items[page * size : (page + 1) * size],
        }

    def skimmed_page(self, nodes: list[DirectoryNode], params: dict[str, list[str]]) -> Any:
        return {
            "metadata": self._metadata(),
            "nodes": self._page([n.skimmed() for n in nodes], params),
        }

    # --- the router ---------------------------------------------------------------------

    def answer(self, method: str, target: str, *, gzip_ok: bool = False) -> Answer:
        """The answer to one request (gzip-compressed if `gzip_ok`); never raises on client
        input."""
        self.requests += 1
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        if method == "OPTIONS":
            return Answer(204, PREFLIGHT_HEADERS, b"")
        if method not in ("GET", "HEAD"):
            return _json_answer(405, {"message": f"method {method} not allowed"})
        params = parse_qs(parts.query, keep_blank_values=True)
        try:
            answer = self._route(path, params)
        except BadQuery as exc:
            answer = _json_answer(400, {"message": str(exc)})
        if gzip_ok and answer.body:
            answer = _gzipped(answer)
        if method == "HEAD":
            return Answer(answer.status, answer.headers, b"")
        return answer

    def _route(self, path: str, params: dict[str, list[str]]) -> Answer:
        skimmed = "/api/v2/unstable/nym-nodes/skimmed"
        lists: dict[str, Callable[[], list[DirectoryNode]]] = {
            skimmed: lambda: list(self.nodes),
            skimmed + "/active": lambda: [n for n in self.nodes if n.role is not NodeRole.INACTIVE],
            skimmed + "/mixnodes/active": self.mixnodes,
            skimmed + "/mixnodes/all": self.all_mixnodes,
            skimmed + "/entry-gateways": self.entry_gateways,
            skimmed + "/entry-gateways/all": self.entry_gateways,
            skimmed + "/exit-gateways": self.exit_gateways,
            skimmed + "/exit-gateways/all": self.exit_gateways,
        }
        if path in lists:
            return _json_answer(200, self.skimmed_page(lists[path](), params))
        if path == "/api/v1/nym-nodes/rewarded-set":
            return _json_answer(200, self.rewarded_set())
        if path == "/api/v1/epoch/key-rotation-info":
            return _json_answer(200, self.key_rotation_info())
        if path == "/api/v2/nym-nodes/described":
            items = [n.described(self.rotation_id, self.refreshed_at) for n in self.nodes]
            return _json_answer(200, self._page(items, params))
        if path == STATUS_PATH:
            status = self.status_provider() if self.status_provider else {}
            return _json_answer(200, status)
        return _not_found(path)


def _head_bytes(conn: h11.Connection, answer: Answer, keep_alive: bool) -> bytes:
    headers = [*answer.headers, ("Content-Length", str(len(answer.body)))]
    if not keep_alive:
        headers.append(("Connection", "close"))
    return conn.send(h11.Response(status_code=answer.status, headers=headers))


ControlHandler = Callable[[str, str, list[tuple[bytes, bytes]]], Awaitable[Answer | None]]
"""(method, target, headers) -> an answer, or None when the request is not its business."""


class DirectoryServer:
    """Serves a DirectoryState on a loopback TCP port (0 = pick a free one).

    `control`, if given, sees each request first (the local network's control endpoints).
    """

    def __init__(
        self,
        state: DirectoryState,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        control: ControlHandler | None = None,
    ) -> None:
        self.state = state
        self.control = control
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.counters = {"requests": 0, "bad_requests": 0, "connections": 0}
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._scope: anyio.CancelScope | None = None
        self._slots = anyio.Semaphore(MAX_CONNECTIONS)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/api/"

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        self._listener = listener
        self.port = int(listener.listeners[0].extra(anyio.abc.SocketAttribute.local_port))
        with anyio.CancelScope() as scope:
            self._scope = scope
            task_status.started()
            async with listener:
                await serve_contained(listener, self._handle_guarded, self._failed)

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    def _failed(self, exc: BaseException) -> None:
        del exc  # serve_contained logs it at debug
        self.counters["errors"] = self.counters.get("errors", 0) + 1

    async def _handle_guarded(self, tcp: anyio.abc.SocketStream) -> None:
        stream: anyio.abc.ByteStream = tcp
        async with tcp:
            if self.ssl_context is not None:
                try:
                    with anyio.fail_after(IDLE_TIMEOUT):
                        stream = await TLSStream.wrap(
                            tcp,
                            server_side=True,
                            ssl_context=self.ssl_context,
                            standard_compatible=False,
                        )
                except (
                    ssl.SSLError,
                    OSError,
                    TimeoutError,
                    anyio.BrokenResourceError,
                    anyio.EndOfStream,
                ):
                    self.counters["bad_requests"] += 1
                    return
            if self._slots.value == 0:
                return  # over the connection cap: close at once
            async with self._slots:
                self.counters["connections"] += 1
                with contextlib.suppress(anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                    await self._handle(stream)  # suppressed: the client went away

    async def _handle(self, stream: anyio.abc.ByteStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        while True:
            request: h11.Request | None = None
            with anyio.move_on_after(IDLE_TIMEOUT):
                try:
                    request = await self._read_request(conn, stream)
                except h11.RemoteProtocolError:
                    self.counters["bad_requests"] += 1
                    await self._send_error(conn, stream)
                    return
            if request is None:
                return
            self.counters["requests"] += 1
            method = request.method.decode("ascii", "replace")
            target = request.target.decode("ascii", "replace")
            answer = None
            if self.control is not None:
                answer = await self.control(method, target, list(request.headers))
            if answer is None:
                encodings = [
                    v.decode("latin-1") for k, v in request.headers if k == b"accept-encoding"
                ]
                answer = self.state.answer(method, target, gzip_ok=accepts_gzip(encodings))
            keep_alive = conn.our_state is h11.SEND_RESPONSE and _wants_keep_alive(request)
            data = _head_bytes(conn, answer, keep_alive)
            if answer.body:
                data += conn.send(h11.Data(data=answer.body))
            data += conn.send(h11.EndOfMessage())
            await stream.send(data)
            if not keep_alive or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    @staticmethod
    async def _read_request(
        conn: h11.Connection, stream: anyio.abc.ByteStream
    ) -> h11.Request | None:
        request: h11.Request | None = None
        body_size = 0
        while True:
            event = await next_event(conn, stream)
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage):
                return request
            elif isinstance(event, h11.ConnectionClosed):
                return None
            elif isinstance(event, h11.Data):
                body_size += len(event.data)
                if body_size > MAX_REQUEST_HEAD:
                    raise h11.RemoteProtocolError("request body too large")

    @staticmethod
    async def _send_error(conn: h11.Connection, stream: anyio.abc.ByteStream) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        answer = _json_answer(400, {"message": "bad request"})
        try:
            data = conn.send(
                h11.Response(
                    status_code=400,
                    headers=[
                        *answer.headers,
                        ("Content-Length", str(len(answer.body))),
                        ("Connection", "close"),
                    ],
                )
            )
            data += conn.send(h11.Data(data=answer.body)) + conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return
        await stream.send(data)


def _wants_keep_alive(request: h11.Request) -> bool:
    for name, value in request.headers:
        if name == b"connection" and b"close" in value.lower():
            return False
    return request.http_version != b"1.0"
