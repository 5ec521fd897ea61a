"""smolmix for programs: a tunnel through the Nym mixnet, as the commands use it.

    async with smolmix_cli.api.connect(network="testnet") as tunnel:
        response = await tunnel.fetch("https://demo.smolmix.test/")

`connect` (async) and `connect_sync` (blocking) yield a tunnel with `fetch`,
`websocket`, `resolve`, `addresses`, `open_tcp` and `udp_exchange`; failures
are `Error` subclasses whose `code` is the CLI's exit code. The httpx
transports live in `smolmix_cli.api.httpx_transport` (the `[httpx]` extra).
README.md ("Python API") has runnable examples; tests/api runs them.
"""

from smolmix_cli.api.errors import (
    ConnectError,
    DnsError,
    Error,
    HttpError,
    NetworkError,
    ResolveError,
    Timeout,
    TlsError,
    UsageError,
    WebSocketClosed,
)
from smolmix_cli.api.records import Record
from smolmix_cli.api.response import Response
from smolmix_cli.api.sync import SyncResponse, SyncStream, SyncTunnel, SyncWebSocket, connect_sync
from smolmix_cli.api.tunnel import Tunnel, connect
from smolmix_cli.api.websocket import WebSocket
from smolmix_cli.exit_codes import ExitCode
from smolmix_cli.options import GlobalOptions

__all__ = [
    "ConnectError",
    "DnsError",
    "Error",
    "ExitCode",
    "GlobalOptions",
    "HttpError",
    "NetworkError",
    "Record",
    "ResolveError",
    "Response",
    "SyncResponse",
    "SyncStream",
    "SyncTunnel",
    "SyncWebSocket",
    "Timeout",
    "TlsError",
    "Tunnel",
    "UsageError",
    "WebSocket",
    "WebSocketClosed",
    "connect",
    "connect_sync",
]
