"""curl's rules between one response head and the next step, without I/O.

Both fetch shells (the async engine, http_client.py, and the blocking attach shell,
http_blocking.py) ask these what a head means: what -w records, whether to follow a
redirect, and what to do with the body (deliver, drop, or fail with curl's number).
Keeping the rules here is what keeps the two shells' output identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from smolmix_cli.apps.errors import AppError, HttpStatusError, RangeError, TooManyRedirects
from smolmix_cli.apps.http_conditions import meets_time_condition
from smolmix_cli.apps.http_options import FetchOptions
from smolmix_cli.apps.http_request import OutgoingRequest, redirect_request
from smolmix_cli.apps.http_transfer import ResponseHead, Transfer
from smolmix_cli.apps.http_url import join_url

if TYPE_CHECKING:
    from smolmix_cli.apps.http_decode import ContentDecoder

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})


def start_attempt(transfer: Transfer) -> None:
    """One attempt's counters start over (a retry reports only its own)."""
    transfer.num_redirects = 0
    transfer.time_redirect = 0.0
    transfer.size_header = 0
    transfer.size_download = 0


def record_head(
    request: OutgoingRequest, head: ResponseHead, opts: FetchOptions, transfer: Transfer
) -> None:
    """What -w reports about a head (every hop's), and the cookies it sets."""
    transfer.url_effective = str(request.url)
    transfer.method = request.method
    transfer.http_code = head.status
    transfer.http_version = head.http_version
    transfer.headers = head.headers
    transfer.content_type = head.header("content-type") or ""
    transfer.size_header += len(head.raw())
    if opts.cookie_jar is not None:
        opts.cookie_jar.ingest(request.url, head.headers)
    location = head.header("location")
    transfer.redirect_url = ""
    if location is not None and 300 <= head.status < 400 and head.status != 304:
        try:
            transfer.redirect_url = str(join_url(request.url, location))
        except AppError:
            transfer.redirect_url = ""


def follows(head: ResponseHead, opts: FetchOptions) -> bool:
    """-L and a redirect with somewhere to go: the shell drops this body, then `next_hop`."""
    return (
        opts.follow_redirects
        and head.status in REDIRECT_STATUS | {300}
        and head.header("location") is not None
    )


def next_hop(
    request: OutgoingRequest, head: ResponseHead, opts: FetchOptions, transfer: Transfer
) -> OutgoingRequest:
    """The redirect's request (curl's method rules), counted against --max-redirs."""
    if transfer.num_redirects >= opts.max_redirects:
        raise TooManyRedirects(f"Maximum ({opts.max_redirects}) redirects followed")
    transfer.num_redirects += 1
    transfer.time_redirect = transfer.elapsed()
    location = head.header("location")
    assert location is not None  # follows() said so
    return redirect_request(request, head, location, opts)


@dataclass(frozen=True)
class Verdict:
    """What to do with a final head's body: `action` first, then raise `error` if any."""

    action: str
    """"deliver" (to the sink), "close" (drop it with the connection), "discard" (read and
    drop it, keeping the connection)."""
    error: AppError | None = None


def verdict(head: ResponseHead, opts: FetchOptions, transfer: Transfer) -> Verdict:
    """-z, -C and -f on a final head, as curl applies them."""
    if head.status == 200 and not meets_time_condition(opts.time_condition, head):
        # curl simulates a 304 when the server ignored -z: no body, code 304
        transfer.http_code = 304
        return Verdict("close")
    if opts.resume_from and head.status == 416:
        # curl: resuming a file that is already complete is not an error.
        return Verdict("discard")
    if opts.resume_from and head.status == 200:
        error = RangeError("HTTP server doesn't seem to support byte ranges. Cannot resume.")
        return Verdict("close", error)
    if head.status >= 400 and opts.fail and not opts.fail_with_body:
        return Verdict("close", status_error(head))
    return Verdict("deliver")


def fails_after_body(head: ResponseHead, opts: FetchOptions) -> bool:
    """--fail-with-body: the body goes out, then exit 22."""
    return head.status >= 400 and opts.fail_with_body


def status_error(head: ResponseHead) -> HttpStatusError:
    return HttpStatusError(f"The requested URL returned error: {head.status}", head.status)


def body_decoder(head: ResponseHead, opts: FetchOptions) -> ContentDecoder | None:
    """--compressed: the decoder for the body's Content-Encoding (None: as received)."""
    if not opts.compressed:
        return None
    from smolmix_cli.apps.http_decode import decoder_for  # zlib: with --compressed only

    return decoder_for(head.header("content-encoding"))
