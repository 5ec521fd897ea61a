"""DNS through the tunnel as `smolmix resolve` asks it: its default server, answers as records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from smolmix_cli.apps.dns import DnsResult, type_name
from smolmix_cli.apps.dns_format import rdata_text
from smolmix_cli.apps.dns_transports import DnsServer, parse_server
from smolmix_cli.options import GlobalOptions

if TYPE_CHECKING:
    from smolmix_cli.session.factory import Session

UPSTREAM_RESOLVER = "1.1.1.1"
"""The server when neither --dns-server nor the network names one (upstream smolmix-dns's)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One answer record, its data in dig's presentation (`resolve +short` prints `data`)."""

    name: str
    type: str
    ttl: int
    data: str


def default_resolver(options: GlobalOptions, session: Session) -> DnsServer:
    """The first --dns-server, else the network's resolver (local networks name one), else
    1.1.1.1: `smolmix resolve` without @SERVER and `Tunnel.resolve` without `server`."""
    if options.dns_servers:
        return parse_server(options.dns_servers[0])
    if session.network.dns_resolver:
        return parse_server(session.network.dns_resolver)
    return parse_server(UPSTREAM_RESOLVER)


def answer_records(result: DnsResult) -> list[Record]:
    return [
        Record(str(rr.rname), type_name(rr.rtype), int(rr.ttl), rdata_text(rr))
        for rr in result.response.rr
    ]
