"""Exit codes, and the error that already knows its code and its one line of text.

A leaf: every layer may raise `CliError` without importing the layers that
classify other errors (smolmix_cli.errors_map). curl's numbers where the
meaning carries over (fetch, ws), dig's for resolve (0 for any answer,
1 usage, 9 no reply, 10 internal), so scripts that already test those tools'
codes keep working; the mixnet's own failures get 5, 97 and codes above
curl's range (110+). docs/exit-codes.md documents the table; the two must
change together (tests/test_exit_codes.py compares them).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # the operation ran but failed (ping: no reply; fetch: bad scheme; resolve: usage)
    USAGE = 2  # click's usage errors, bad option values (-H, -F, @file)
    MALFORMED_URL = 3
    NETWORK_UNREACHABLE = 5  # no directory URL / gateway / session reachable
    RESOLVE_FAILED = 6  # the destination name did not resolve through the tunnel
    CONNECT_FAILED = 7  # TCP through the tunnel refused, reset, or denied by the exit policy
    WEIRD_REPLY = 8  # the server's bytes are not HTTP/1.1
    DNS_NO_REPLY = 9  # resolve: no server replied (dig's 9)
    DNS_INTERNAL = 10  # resolve: internal error (dig's 10)
    WS_ABNORMAL_CLOSE = 12  # ws: closed with a code other than 1000/1001
    PARTIAL_FILE = 18
    HTTP_ERROR = 22  # HTTP >= 400 with -f/--fail-with-body; ws: upgrade refused
    WRITE_ERROR = 23
    READ_ERROR = 26  # an upload source could not be read
    TIMEOUT = 28  # the command's own deadline expired (-m, --connect-timeout, --boot-timeout)
    RANGE_ERROR = 33
    TLS_ERROR = 35
    TOO_MANY_REDIRECTS = 47
    EMPTY_REPLY = 52
    SEND_ERROR = 55
    RECV_ERROR = 56
    CERTIFICATE_ERROR = 60
    BAD_CONTENT_ENCODING = 61
    INTERNAL = 70  # a bug: an exception nobody expected
    CA_FILE_ERROR = 77
    IPR_HANDSHAKE = 97  # the exit IPR refused or never answered; no usable exit
    DIRECTORY_INVALID = 110  # the directory answered unusably; no route through the mixnet
    GATEWAY_REFUSED = 111  # gateway handshake, registration, authentication or bandwidth refused
    TESTNET_UNAVAILABLE = 112  # local network not running / cannot start / bad network file
    INTERRUPTED = 130  # SIGINT (128 + 2)


class CliError(Exception):
    """A failure already put the way the user sees it: one line of text and an exit code."""

    def __init__(self, message: str, code: ExitCode | int) -> None:
        super().__init__(" ".join(message.split()))
        try:
            self.code = ExitCode(int(code))
        except ValueError:
            self.code = ExitCode.INTERNAL


def first_failure(exc: BaseException) -> BaseException:
    """The first real failure inside (nested) exception groups from task groups: what a user's
    one line is about, wherever the failure surfaced."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
