"""`connect()`: a tunnel for programs, from the factory the commands get theirs from.

`connect` builds the same `GlobalOptions` the command line would and enters
`session.open_tunnel`, so a program boots in-process or attaches to the
network's background session by the CLI's rules, trusts the same CAs (the
local network's own) and fails with the same exit codes (api/errors.py).
The `Tunnel` it yields owns one HTTP client (one keep-alive pool, as one
`smolmix fetch` run) and a task group that streams response bodies.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal

import anyio
import anyio.abc

from smolmix_cli.api.errors import UsageError, error_for, translated
from smolmix_cli.api.records import Record, answer_records
from smolmix_cli.api.response import Headers, ProgressCallback, Response, fetch_options, start_fetch
from smolmix_cli.api.websocket import WebSocket
from smolmix_cli.apps import dns, ws
from smolmix_cli.apps.dns_transports import parse_server, query_server
from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.options import DEFAULT_BOOT_TIMEOUT, GlobalOptions
from smolmix_cli.session.factory import dns_server

if TYPE_CHECKING:
    from smolmix_cli.session.factory import Session

SessionMode = Literal["auto", "start", "off"]
PhaseCallback = Callable[[str], None]


class CountingConnector:
    """The session's connector, counting the TCP streams opened through it."""

    def __init__(self, session: Session) -> None:
        self._tunnel = session.tunnel
        self.tcp_opened = 0

    async def open_tcp(self, host: str, port: int) -> anyio.abc.ByteStream:
        stream = await self._tunnel.open_tcp(host, port)
        self.tcp_opened += 1
        return stream

    async def udp_exchange(self, host: str, port: int, payload: bytes, timeout: float) -> bytes:
        return await self._tunnel.udp_exchange(host, port, payload, timeout)


class Tunnel:
    """A ready tunnel: HTTP, WebSocket, DNS, TCP and UDP through the mixnet."""

    def __init__(
        self, session: Session, options: GlobalOptions, task_group: anyio.abc.TaskGroup
    ) -> None:
        self.session = session
        self.options = options
        self.connector = CountingConnector(session)
        self.cafile = session.cafile(None)
        """The CA bundle TLS verifies against: certifi's roots plus this (the local network's CA)."""
        self._tg = task_group
        self._http = HttpClient(self.connector)

    @property
    def network(self) -> str:
        return self.session.network.name

    @property
    def attached(self) -> bool:
        """True: this tunnel is a background session's (nothing was booted here)."""
        return self.session.reused

    @property
    def boot_seconds(self) -> float:
        return self.session.boot_seconds

    @property
    def tcp_opened(self) -> int:
        """TCP streams opened through this tunnel so far (keep-alive reuse keeps it small)."""
        return self.connector.tcp_opened

    def status(self) -> dict[str, object]:
        """The tunnel's status (exit, addresses, phase) as `smolmix session status --json`."""
        return self.session.tunnel.snapshot().to_json()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(
        self,
        url: str,
        *,
        method: str | None = None,
        headers: Headers = (),
        body: bytes | None = None,
        follow_redirects: bool = False,
        max_redirects: int = 50,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        verify: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> Response:
        """An HTTP request; returns once the final response head is in, body still to read.

        `headers` add to or replace curl's defaults (a value of None removes one); `timeout`
        bounds the whole transfer, body included (curl's -m); `on_progress(received, total)`
        sees every body piece. Read the body (`read`, `aiter_bytes`) or `aclose` the response.
        """
        options = fetch_options(
            method=method,
            headers=headers,
            body=body,
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            timeout=timeout,
            connect_timeout=connect_timeout,
            verify=verify,
            cafile=self.cafile if verify else None,
        )
        with translated():
            return await start_fetch(self._tg, self._http, url, options, on_progress)

    async def websocket(
        self,
        url: str,
        *,
        subprotocols: Sequence[str] = (),
        headers: Headers = (),
        connect_timeout: float | None = ws.DEFAULT_CONNECT_TIMEOUT,
        verify: bool = True,
    ) -> WebSocket:
        """An open WebSocket (ws:// or wss://); use it as an async context manager."""
        from smolmix_cli.apps.http_headers import HeaderEdit

        items = headers.items() if isinstance(headers, Mapping) else headers
        options = ws.WsOptions(
            header_edits=[HeaderEdit(k, v) for k, v in items],
            subprotocols=list(subprotocols),
            verify=verify,
            cafile=self.cafile if verify else None,
            connect_timeout=connect_timeout,
        )
        with translated():
            return WebSocket(await ws.connect(self.connector, url, options))

    async def resolve(
        self,
        name: str,
        record_type: str = "A",
        *,
        server: str | None = None,
        tcp: bool = False,
        timeout: float = dns.DEFAULT_TIMEOUT,
        tries: int = dns.DEFAULT_TRIES,
    ) -> list[Record]:
        """The answer records for one question, asked as `smolmix resolve` asks it.

        `server`: `resolve`'s @SERVER forms (IP[:PORT], tcp://, tls://HOST, https://.../dns-query);
        default the network's resolver. NXDOMAIN is an empty list, as dig's exit 0 is.
        """
        with translated():
            where = (
                parse_server(server) if server else dns_server(self.options, self.session.network)
            )
            result = await query_server(
                self.connector,
                where,
                name,
                dns.parse_qtype(record_type),
                tcp=tcp,
                timeout=timeout,
                tries=tries,
                cafile=self.cafile,
            )
            return answer_records(result)

    async def addresses(self, name: str) -> list[str]:
        """The addresses the tunnel itself connects to for `name` (its resolver, its cache)."""
        with translated():
            return await self.session.tunnel.resolve(name)

    async def open_tcp(
        self, host: str, port: int, *, tls: bool = False, verify: bool = True
    ) -> anyio.abc.ByteStream:
        """A TCP stream through the exit (names resolved through the tunnel); `tls` wraps it
        in TLS verified for `host` as fetch verifies."""
        from smolmix_cli.apps import tls as tls_policy

        with translated():
            stream = await self.connector.open_tcp(host, port)
            if tls:
                context = tls_policy.client_context(
                    verify=verify, cafile=self.cafile if verify else None, alpn=()
                )
                stream = await tls_policy.wrap_client(stream, host, context)
            return stream

    async def udp_exchange(
        self, host: str, port: int, payload: bytes, *, timeout: float = 5.0
    ) -> bytes:
        """Send one datagram through the exit and return the first reply (Timeout if none)."""
        with translated():
            return await self.connector.udp_exchange(host, port, payload, timeout)


def global_options(
    network: str | os.PathLike[str] | None,
    session: SessionMode | None,
    boot_timeout: float,
    options: GlobalOptions | None,
) -> GlobalOptions:
    """The CLI's global options for these arguments; unset ones read the CLI's variables."""
    base = options if options is not None else GlobalOptions()
    if network is None:
        network = base.network or os.environ.get("SMOLMIX_NETWORK") or None
    mode: str | None = session
    if mode is None:
        no_session = os.environ.get("SMOLMIX_NO_SESSION", "").lower() not in (
            "",
            "0",
            "false",
            "no",
        )
        mode = "off" if no_session else os.environ.get("SMOLMIX_SESSION") or base.session
    if mode not in ("auto", "start", "off"):
        raise UsageError(f"session must be auto, start or off, not {mode!r}", ExitCode.USAGE)
    return dataclasses.replace(
        base,
        network=os.fspath(network) if network is not None else None,
        session=mode,
        boot_timeout=boot_timeout,
    )


def _unheard(_phase: str) -> None:
    """No `on_phase`: the library stays quiet (the CLI prints these lines)."""


@asynccontextmanager
async def connect(
    network: str | os.PathLike[str] | None = None,
    *,
    session: SessionMode | None = None,
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
    on_phase: PhaseCallback | None = None,
    options: GlobalOptions | None = None,
) -> AsyncIterator[Tunnel]:
    """A ready tunnel, closed on exit. As `smolmix [--network N] [--session S]`:

    `network`: "mainnet", "testnet" or a network file (default: $SMOLMIX_NETWORK, else
    mainnet); `session`: "auto" attaches to the network's background session if one runs,
    "start" starts one if not, "off" always boots here (default: $SMOLMIX_SESSION, or "off"
    with $SMOLMIX_NO_SESSION, else "auto"); `on_phase` sees each boot phase (the CLI's -v);
    `options`: any other global option (exit, gateway, cover traffic, MTU...).
    """
    from smolmix_cli.session import load_network, open_tunnel

    globals_ = global_options(network, session, boot_timeout, options)
    failure: Exception | None = None
    try:
        # as the CLI's, but a local network started on demand says so to on_phase, not stderr
        chosen = await anyio.to_thread.run_sync(load_network, globals_, on_phase or _unheard)
        async with (
            open_tunnel(globals_, network=chosen, on_phase=on_phase) as opened,
            anyio.create_task_group() as tg,
        ):
            tunnel = Tunnel(opened, globals_, tg)
            try:
                yield tunnel
            except Exception as exc:  # the caller's own: raised as is, not in a group
                failure = exc
            finally:
                tg.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await tunnel.aclose()
    except Exception as exc:  # the boot's or the teardown's
        raise error_for(exc) from exc
    if failure is not None:
        raise failure
