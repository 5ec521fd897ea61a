"""Where the Nym directory (nym-api) is, and how reading it fails.

Kept apart from nym_api.py (the client, which pulls in the topology and its
crypto) so that network configuration and error classification stay cheap to
import on the attach path.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from smolmix_cli.mixnet.errors import MixnetError

if TYPE_CHECKING:
    import ssl


class FailureKind(enum.Enum):
    """Why a directory request failed; the CLI picks exit codes from this."""

    RESOLVE = "cannot resolve host"
    CONNECT = "cannot connect"
    TLS = "TLS handshake failed"
    TIMEOUT = "timed out"
    HTTP = "HTTP error"
    MALFORMED = "malformed answer"


class DirectoryUnavailable(MixnetError):
    """No directory URL gave a usable answer; `str()` is one line for the user."""

    def __init__(self, kind: FailureKind, url: str, detail: str = "", tried: int = 1) -> None:
        self.kind = kind
        self.url = url
        self.detail = detail
        self.tried = tried
        text = f"Nym directory unavailable: {url}: {kind.value}"
        if detail:
            text += f" ({detail})"
        if tried > 1:
            text += f"; {tried - 1} fallback URL(s) failed too"
        super().__init__(" ".join(text.split()))


@dataclass(frozen=True, slots=True)
class ApiUrl:
    """A nym-api base URL, optionally reached through a fronting host (SNI + TCP)."""

    url: str
    front_host: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DirectoryUnavailable(FailureKind.MALFORMED, self.url, "not an http(s) URL")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise DirectoryUnavailable(FailureKind.MALFORMED, self.url, "bad port") from None

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host is not None
        return host

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        return port if port is not None else (443 if self.scheme == "https" else 80)

    @property
    def connect_host(self) -> str:
        """Where TCP and TLS go; differs from `host` only when domain-fronted."""
        return self.front_host or self.host

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    def target(self, path: str, query: Mapping[str, str | int] | None = None) -> str:
        """Request target: the base URL's path joined with an API path (no leading slash)."""
        base = urlsplit(self.url).path or "/"
        if not base.endswith("/"):
            base += "/"
        target = base + path.lstrip("/")
        if query:
            target += "?" + urlencode({k: str(v) for k, v in query.items()})
        return target

    def full(self, path: str, query: Mapping[str, str | int] | None = None) -> str:
        return f"{self.scheme}://{self.host_header}{self.target(path, query)}"


# spec 4.1: nym:common/network-defaults/src/mainnet.rs (NYM_API and its fallbacks)
MAINNET_API_URLS: tuple[ApiUrl, ...] = (
    ApiUrl("https://validator.nymtech.net/api/"),
    ApiUrl("https://nym-frontdoor.global.ssl.fastly.net/api/", "yelp.global.ssl.fastly.net"),
    ApiUrl("https://cdn1.media-platform.net/api/"),
)


def make_ssl_context(ca_file: Path | str | None = None) -> ssl.SSLContext:
    import ssl  # here: naming a network (the attach path) needs no TLS

    """Verify against `ca_file` if given (a local network's CA), else certifi's roots."""
    if ca_file is not None:
        return ssl.create_default_context(cafile=str(ca_file))
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
