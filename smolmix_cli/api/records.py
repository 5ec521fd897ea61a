"""DNS through the tunnel as `smolmix resolve` asks it: its default server, answers as records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from smolmix_cli.apps.dns import DnsResult, type_name
from smolmix_cli.apps.dns_format import rdata_text
from smolmix_cli.apps.dns_transports import DnsServer
from smolmix_cli.options import GlobalOptions
from smolmix_cli.session.factory import dns_server

if TYPE_CHECKING:
    from smolmix_cli.session.factory import Session


@dataclass(frozen=True, slots=True)
class Record:
    """One answer record, its data in dig's presentation (`resolve +short` prints `data`)."""

    name: str
    type: str
    ttl: int
    data: str


def default_resolver(options: GlobalOptions, session: Session) -> DnsServer:
    """`Tunnel.resolve`'s server without `server=`, as `smolmix resolve`'s."""
    return dns_server(options, session.network)


def answer_records(result: DnsResult) -> list[Record]:
    return [
        Record(str(rr.rname), type_name(rr.rtype), int(rr.ttl), rdata_text(rr))
        for rr in result.response.rr
    ]
