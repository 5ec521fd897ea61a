"""The request a fetch sends: built once from curl's options, rewritten per redirect hop.

Redirects follow curl's rules (303, and 301/302 after POST, turn into GET without a
body) and keep credentials on the origin they were given for.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from smolmix_cli.apps.errors import ReadError
from smolmix_cli.apps.http_body import Body
from smolmix_cli.apps.http_headers import apply_edits, has_header, without
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_transfer import ResponseHead
from smolmix_cli.apps.http_url import Url, join_url


@dataclass
class OutgoingRequest:
    url: Url
    method: str
    headers: list[tuple[str, str]]
    body: Body | None


def first_request(url: Url, opts: FetchOptions) -> OutgoingRequest:
    """The first hop's head in curl 7.88's header order (a fingerprint; scripts diff it too):
    Host, Authorization, Range, User-Agent, Accept, Accept-Encoding, Referer, Cookie,
    If-Modified-Since, the -H
    headers, then Content-Length and Content-Type."""
    body = opts.body
    method = opts.method or ("HEAD" if opts.head_only else "POST" if body else "GET")
    headers: list[tuple[str, str]] = [("Host", url.host_header)]
    credentials = opts.user
    if credentials is None and url.user is not None:
        credentials = f"{url.user}:{url.password or ''}"
    if credentials is not None:
        token = base64.b64encode(credentials.encode()).decode()
        headers.append(("Authorization", f"Basic {token}"))
    if opts.resume_from:
        headers.append(("Range", f"bytes={opts.resume_from}-"))
    elif opts.range:
        headers.append(("Range", f"bytes={opts.range}"))
    if opts.user_agent:
        headers.append(("User-Agent", opts.user_agent))
    headers.append(("Accept", "*/*"))
    if opts.compressed:
        headers.append(("Accept-Encoding", "deflate, gzip"))
    if opts.referer:
        headers.append(("Referer", opts.referer))
    cookie = cookie_header(url, opts)
    if cookie:
        headers.append(("Cookie", cookie))
    if opts.time_condition:
        headers.append(opts.time_condition)
    headers = apply_edits(headers, opts.header_edits)
    if body is not None and body.length is not None and not has_header(headers, "content-length"):
        headers.append(("Content-Length", str(body.length)))
    if body is not None and body.content_type and not has_header(headers, "content-type"):
        headers.append(("Content-Type", body.content_type))
    return OutgoingRequest(url, method, headers, body)


def cookie_header(url: Url, opts: FetchOptions) -> str | None:
    """The jar's cookies for this URL, then -b's literal ones (curl's order)."""
    parts = [opts.cookie_jar.header_for(url) if opts.cookie_jar else None, opts.cookie]
    return "; ".join(p for p in parts if p) or None


def redirect_request(
    request: OutgoingRequest, head: ResponseHead, location: str, opts: FetchOptions
) -> OutgoingRequest:
    new_url = join_url(request.url, location)
    method, body, headers = request.method, request.body, list(request.headers)
    if (head.status == 303 and method != "HEAD") or (
        head.status in (301, 302) and method == "POST"
    ):
        method, body = "GET", None
        headers = without(headers, "content-type", "content-length", "transfer-encoding")
    if body is not None and not body.replayable:
        raise ReadError("cannot resend a one-shot upload body after a redirect")
    if new_url.origin != request.url.origin:
        # Credentials belong to the origin they were given for (curl without
        # --location-trusted; seed client strips cookies too).
        headers = without(headers, "authorization", "cookie", "proxy-authorization")
    headers = [(k, new_url.host_header) if k.lower() == "host" else (k, v) for k, v in headers]
    if opts.cookie_jar is not None:  # the engine decides again for the new URL
        cookie = cookie_header(new_url, opts)
        kept = without(headers, "cookie")
        if cookie:
            at = (i for i, (k, _) in enumerate(kept) if k.lower() not in _BEFORE_COOKIE)
            kept.insert(next(at, len(kept)), ("Cookie", cookie))
        headers = kept
    return OutgoingRequest(new_url, method, headers, body)


_BEFORE_COOKIE = {
    "host",
    "authorization",
    "range",
    "user-agent",
    "accept",
    "accept-encoding",
    "referer",
}
