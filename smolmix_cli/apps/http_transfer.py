"""The records a fetch reports: heads as they crossed the wire, and curl's -w numbers.

They are plain data so -i / -D / -v / -w and the JSON output can be rendered by the CLI
without reaching into the client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from smolmix_cli.apps.http_headers import get_header
from smolmix_cli.apps.http_url import Url


@dataclass
class ResponseHead:
    status: int
    reason: str
    http_version: str
    headers: list[tuple[str, str]]
    url: Url

    def header(self, name: str) -> str | None:
        return get_header(self.headers, name)

    def raw(self) -> bytes:
        """Status line and headers as received (case preserved), for -i / -D."""
        lines = [f"HTTP/{self.http_version} {self.status} {self.reason}".rstrip()]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


@dataclass(frozen=True)
class RequestHead:
    """A request head exactly as it went on the wire (after every header the client adds)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> RequestHead:
        """Parse back the head h11 serialised: the request line and headers as they were sent."""
        lines = raw.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = tuple(
            (name, value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        )
        return cls(method, target, headers, raw)


@dataclass
class Transfer:
    """What curl's -w variables report about one URL."""

    url: str
    url_effective: str = ""
    method: str = "GET"
    http_code: int = 0
    http_version: str = ""
    num_redirects: int = 0
    num_connects: int = 0
    num_retries: int = 0
    redirect_url: str = ""
    content_type: str = ""
    size_download: int = 0
    size_upload: int = 0
    size_header: int = 0
    size_request: int = 0
    time_connect: float = 0.0
    time_appconnect: float = 0.0
    time_pretransfer: float = 0.0
    time_starttransfer: float = 0.0
    time_redirect: float = 0.0
    time_total: float = 0.0
    remote_host: str = ""
    remote_ip: str = ""
    """Peer address if the stream reports one (the tunnel may, or may not)."""
    remote_port: int = 0
    local_ip: str = ""
    local_port: int = 0
    filename_effective: str = ""
    """The -o / -O file the body went to ("" for stdout)."""
    urlnum: int = 0
    """This URL's index on the command line (after globbing), from 0."""
    referer: str = ""
    ssl_verify_result: int = 0
    """0: verified, or not TLS, or -k (smolmix never keeps a connection that failed it)."""
    scheme: str = ""
    tls_version: str = ""
    reused_connection: bool = False
    exitcode: int = 0
    errormsg: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    """Headers of the last response (for %header{name})."""
    _t0: float = 0.0

    @property
    def speed_download(self) -> float:
        return self.size_download / self.time_total if self.time_total > 0 else 0.0

    @property
    def speed_upload(self) -> float:
        return self.size_upload / self.time_total if self.time_total > 0 else 0.0

    @property
    def started(self) -> bool:
        """Whether an attempt began (a deadline may cut a transfer before its first)."""
        return self._t0 > 0

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def as_dict(self) -> dict[str, Any]:
        """curl's %{json} keys (those we can know)."""
        return {
            "url": self.url,
            "url_effective": self.url_effective,
            "method": self.method,
            "http_code": self.http_code,
            "response_code": self.http_code,
            "http_version": self.http_version,
            "num_redirects": self.num_redirects,
            "num_connects": self.num_connects,
            "num_retries": self.num_retries,
            "redirect_url": self.redirect_url or None,
            "content_type": self.content_type or None,
            "size_download": self.size_download,
            "size_upload": self.size_upload,
            "size_header": self.size_header,
            "size_request": self.size_request,
            "speed_download": round(self.speed_download),
            "speed_upload": round(self.speed_upload),
            "time_namelookup": 0.0,
            "time_connect": round(self.time_connect, 6),
            "time_appconnect": round(self.time_appconnect, 6),
            "time_pretransfer": round(self.time_pretransfer, 6),
            "time_starttransfer": round(self.time_starttransfer, 6),
            "time_redirect": round(self.time_redirect, 6),
            "time_total": round(self.time_total, 6),
            "remote_ip": self.remote_ip or None,
            "remote_port": self.remote_port,
            "local_ip": self.local_ip or None,
            "local_port": self.local_port,
            "filename_effective": self.filename_effective or None,
            "num_headers": len(self.headers),
            "urlnum": self.urlnum,
            "referer": self.referer or None,
            "ssl_verify_result": self.ssl_verify_result,
            "scheme": self.scheme.upper(),
            "exitcode": self.exitcode,
            "errormsg": self.errormsg or None,
        }
