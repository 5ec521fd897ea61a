"""Small helpers shared by the app tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from smolmix_cli.apps.http_client import HttpClient
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_transfer import ResponseHead, Transfer


@dataclass
class Collected:
    body: bytearray = field(default_factory=bytearray)
    heads: list[ResponseHead] = field(default_factory=list)
    sha: Any = field(default_factory=hashlib.sha256)
    keep: bool = True

    async def sink(self, data: bytes) -> None:
        self.sha.update(data)
        if self.keep:
            self.body += data

    async def on_head(self, head: ResponseHead) -> None:
        self.heads.append(head)


async def get(
    client: HttpClient, url: str, *, keep: bool = True, **options: Any
) -> tuple[Collected, Transfer]:
    out = Collected(keep=keep)
    transfer = await client.fetch(url, out.sink, FetchOptions(**options), on_head=out.on_head)
    return out, transfer
