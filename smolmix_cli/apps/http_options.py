"""What one `smolmix fetch` asks of the HTTP client: curl's options, already parsed.

The CLI fills it in; the client, its connection pool and its request builder only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smolmix_cli.apps.http_body import Body
from smolmix_cli.apps.http_headers import DEFAULT_USER_AGENT, HeaderEdit
from smolmix_cli.apps.http_route import Route

if TYPE_CHECKING:
    from smolmix_cli.apps.http_cookies import CookieJar


@dataclass
class FetchOptions:
    method: str | None = None
    """Explicit -X; None picks GET, or POST when there is a body."""
    header_edits: list[HeaderEdit] = field(default_factory=list)
    body: Body | None = None
    follow_redirects: bool = False
    max_redirects: int = 50
    """curl's default cap for -L (--max-redirs)."""
    compressed: bool = False
    connect_timeout: float | None = None
    max_time: float | None = None
    retry: int = 0
    retry_delay: float | None = None
    """Fixed delay between retries; None: 1 s doubling up to 10 min (curl)."""
    retry_max_time: float | None = None
    retry_all_errors: bool = False
    fail: bool = False
    fail_with_body: bool = False
    user: str | None = None
    """`user:password` for basic auth (-u)."""
    user_agent: str | None = DEFAULT_USER_AGENT
    referer: str | None = None
    cookie: str | None = None
    """-b's literal cookies (`a=1; b=2`), sent after the jar's."""
    cookie_jar: CookieJar | None = None
    """The cookie engine (-b FILE or -c): fed by every response, asked by every hop."""
    connect_to: list[Route] = field(default_factory=list)
    resolve: list[Route] = field(default_factory=list)
    """--connect-to / --resolve: where the tunnel connects instead (http_route.py)."""
    time_condition: tuple[str, str] | None = None
    """-z: ("If-Modified-Since" or "If-Unmodified-Since", HTTP date), sent after Cookie."""
    range: str | None = None
    """Byte range as curl's -r `a-b`."""
    resume_from: int | None = None
    """Offset already on disk (-C); adds `Range: bytes=N-` and requires 206."""
    verify: bool = True
    cafile: str | None = None
    head_only: bool = False
    """-I: send HEAD (unless -X) and expect no body."""
