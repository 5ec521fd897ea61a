"""Typed errors of the application layer, each carrying the exit code a user sees.

Numbers follow curl for fetch (and ws transport failures), dig for resolve:
scripts compare them, so a meaning that carries over keeps its number.
"""

from __future__ import annotations


class AppError(Exception):
    """Base class of every application-layer failure; `exit_code` is what the CLI returns."""

    exit_code: int = 1
    transfer: object | None = None
    """For fetch: the Transfer record at the time of failure (for -w)."""

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


# -- transport (raised by connectors, mapped by the engines) -------------------


class TransportError(AppError):
    """The stream below the application protocol failed."""


class ResolveError(TransportError):
    """The destination name did not resolve (curl 6)."""

    exit_code = 6


class ConnectError(TransportError):
    """TCP connection could not be opened (curl 7)."""

    exit_code = 7


class OperationTimeout(TransportError):
    """A connect or total time limit expired (curl 28)."""

    exit_code = 28


class SendError(TransportError):
    """Sending on an open stream failed (curl 55)."""

    exit_code = 55


class RecvError(TransportError):
    """Receiving on an open stream failed (curl 56)."""

    exit_code = 56


# -- TLS ----------------------------------------------------------------------


class TlsError(AppError):
    """TLS handshake failed (curl 35)."""

    exit_code = 35


class CertificateError(TlsError):
    """The peer certificate did not verify (curl 60)."""

    exit_code = 60


class CaFileError(TlsError):
    """The CA file given with --cacert cannot be read (curl 77)."""

    exit_code = 77


# -- HTTP ---------------------------------------------------------------------


class HttpError(AppError):
    """Base of fetch failures that are not plain transport errors."""


class UsageError(HttpError):
    """Bad option values: a header, form field or body source (curl 2)."""

    exit_code = 2


class UnsupportedProtocol(HttpError):
    """URL scheme is not http or https (curl 1)."""

    exit_code = 1


class MalformedUrl(HttpError):
    """URL cannot be parsed (curl 3)."""

    exit_code = 3


class PartialFile(HttpError):
    """Body ended before its announced length (curl 18)."""

    exit_code = 18


class HttpStatusError(HttpError):
    """HTTP status >= 400 with --fail / --fail-with-body (curl 22)."""

    exit_code = 22

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class WriteError(HttpError):
    """Writing the body to its sink failed (curl 23)."""

    exit_code = 23


class ReadError(HttpError):
    """Reading an upload source failed (curl 26)."""

    exit_code = 26


class RangeError(HttpError):
    """Resume or range asked for, server ignored it (curl 33)."""

    exit_code = 33


class TooManyRedirects(HttpError):
    """More redirects than --max-redirs allows (curl 47)."""

    exit_code = 47


class EmptyReply(HttpError):
    """The server closed without sending a response (curl 52)."""

    exit_code = 52


class BadResponse(HttpError):
    """The server sent bytes that are not HTTP/1.1 (curl 8, weird server reply)."""

    exit_code = 8


class BadContentEncoding(HttpError):
    """A --compressed body did not decode (curl 61)."""

    exit_code = 61


# -- DNS ----------------------------------------------------------------------

DIG_OK = 0
DIG_USAGE = 1
DIG_NO_REPLY = 9
DIG_INTERNAL = 10


class DnsError(AppError):
    """Base of resolve failures; exit codes follow dig."""

    exit_code = DIG_INTERNAL


class DnsUsageError(DnsError):
    """Bad name, type or server given by the user (dig 1)."""

    exit_code = DIG_USAGE


class DnsNoReply(DnsError):
    """No usable reply from the server after all tries (dig 9)."""

    exit_code = DIG_NO_REPLY


class DnsMalformed(DnsError):
    """A reply that does not parse or does not match the query (dropped; dig 9 if none other)."""

    exit_code = DIG_NO_REPLY


class DnsLookupFailed(ResolveError):
    """Name resolution for a connection failed (NXDOMAIN, no address, no reply): curl 6."""

    exit_code = 6


# -- WebSocket ----------------------------------------------------------------

WS_ABNORMAL_CLOSE_EXIT = 12
"""Exit code of `smolmix ws` when the connection ended with a code other than 1000/1001
(a proposal: curl gives 12 no meaning a ws user could meet)."""


class WsError(AppError):
    """WebSocket failure outside the transport (handshake refused, bad URL)."""

    exit_code = 1


class WsHandshakeError(WsError):
    """The upgrade was refused or the answer was not a valid WebSocket upgrade."""

    exit_code = 22

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WsClosed(WsError):
    """The connection ended: `code` and `reason` from the close frame (1006 if lost)."""

    def __init__(self, code: int, reason: str = "", *, local: bool = False) -> None:
        super().__init__(f"closed {code} {reason}".rstrip())
        self.code = code
        self.reason = reason
        self.local = local
        self.exit_code = 0 if code in (1000, 1001) else WS_ABNORMAL_CLOSE_EXIT
