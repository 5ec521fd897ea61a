"""Which connections are interchangeable, and what -w records about the one a request takes.

Both fetch shells pool connections (http_pool.py for the async engine, http_blocking.py
for the blocking attach shell) and both must report time_connect, time_appconnect,
num_connects and the remote/local addresses as curl does; the rules live here, without
I/O, so that the two shells' -w output stays identical.
"""

from __future__ import annotations

from typing import Any, Protocol

from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_route import route
from smolmix_cli.apps.http_transfer import Transfer
from smolmix_cli.apps.http_url import Url


def origin_key(url: Url, opts: FetchOptions) -> tuple[Any, ...]:
    """Connections with the same key may carry each other's requests (same route and TLS)."""
    tls_key = (opts.verify, opts.cafile) if url.scheme == "https" else None
    target = route(url.host, url.port, opts.connect_to, opts.resolve)
    return (url.scheme, url.host, url.port, target, tls_key)


def record_idle(transfer: Transfer, url: Url) -> None:
    """A kept-alive connection of this command: curl reports connect (and TLS) as done now."""
    now = transfer.elapsed()
    transfer.time_connect = now
    transfer.time_appconnect = now if url.scheme == "https" else 0.0
    transfer.reused_connection = True


def record_session_origin(
    transfer: Transfer, url: Url, *, reused: bool, tls_seconds: float
) -> None:
    """A connection the session handed over (warm or just opened): its TLS time is split
    off so that time_connect still comes before time_appconnect."""
    now = transfer.elapsed()
    transfer.time_connect = max(0.0, now - tls_seconds)
    transfer.time_appconnect = now if url.scheme == "https" else 0.0
    transfer.reused_connection = reused
    if not reused:
        transfer.num_connects += 1


class ConnectionFacts(Protocol):
    """What either shell's connection knows about itself ("" and 0 where it cannot)."""

    remote_ip: str
    local_ip: str
    local_port: int
    tls_version: str


def describe(transfer: Transfer, url: Url, conn: ConnectionFacts) -> None:
    """-w's view of the connection a request goes out on."""
    transfer.remote_host, transfer.remote_port, transfer.scheme = url.host, url.port, url.scheme
    transfer.remote_ip = conn.remote_ip
    transfer.local_ip, transfer.local_port = conn.local_ip, conn.local_port
    transfer.tls_version = conn.tls_version
