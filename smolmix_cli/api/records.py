"""DNS answers as records, as `smolmix resolve +short` and `Tunnel.resolve` give them."""

from __future__ import annotations

from dataclasses import dataclass

from smolmix_cli.apps.dns import DnsResult, type_name
from smolmix_cli.apps.dns_format import rdata_text


@dataclass(frozen=True, slots=True)
class Record:
    """One answer record, its data in dig's presentation (`resolve +short` prints `data`)."""

    name: str
    type: str
    ttl: int
    data: str


def answer_records(result: DnsResult) -> list[Record]:
    return [
        Record(str(rr.rname), type_name(rr.rtype), int(rr.ttl), rdata_text(rr))
        for rr in result.response.rr
    ]
