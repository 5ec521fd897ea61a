"""Typed errors of the application layer.

Each type stands for one failure a user can tell apart; which exit code it
becomes (curl's for fetch and ws, dig's for resolve) is decided in one place,
smolmix_cli.errors_map, next to the mixnet's and the tunnel's errors.
"""

from __future__ import annotations


class AppError(Exception):
    """Base class of every application-layer failure."""

    transfer: object | None = None
    """For fetch: the Transfer record at the time of failure (for -w)."""


# -- transport (raised by connectors, mapped by the engines) -------------------


class TransportError(AppError):
    """The stream below the application protocol failed."""


class ResolveError(TransportError):
    """The destination name did not resolve."""


class ConnectError(TransportError):
    """TCP connection could not be opened."""


class OperationTimeout(TransportError):
    """A connect or total time limit expired."""


class SendError(TransportError):
    """Sending on an open stream failed."""


class RecvError(TransportError):
    """Receiving on an open stream failed."""


# -- TLS ----------------------------------------------------------------------


class TlsError(AppError):
    """TLS handshake failed."""


class CertificateError(TlsError):
    """The peer certificate did not verify."""


class CaFileError(TlsError):
    """The CA file given with --cacert cannot be read."""


# -- HTTP ---------------------------------------------------------------------


class HttpError(AppError):
    """Base of fetch failures that are not plain transport errors."""


class UsageError(HttpError):
    """Bad option values: a header, form field or body source."""


class UnsupportedProtocol(HttpError):
    """URL scheme is not http or https."""


class MalformedUrl(HttpError):
    """URL cannot be parsed."""


class PartialFile(HttpError):
    """Body ended before its announced length."""


class HttpStatusError(HttpError):
    """HTTP status >= 400 with --fail / --fail-with-body."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class WriteError(HttpError):
    """Writing the body to its sink failed."""


class ReadError(HttpError):
    """Reading an upload source failed."""


class RangeError(HttpError):
    """Resume or range asked for, server ignored it."""


class TooManyRedirects(HttpError):
    """More redirects than --max-redirs allows."""


class EmptyReply(HttpError):
    """The server closed without sending a response."""


class BadResponse(HttpError):
    """The server sent bytes that are not HTTP/1.1."""


class BadContentEncoding(HttpError):
    """A --compressed body did not decode."""


# -- DNS ----------------------------------------------------------------------


class DnsError(AppError):
    """Base of `smolmix resolve` failures (exit codes as dig's)."""


class DnsUsageError(DnsError):
    """Bad name, type or server given by the user."""


class DnsNoReply(DnsError):
    """No usable reply from the server after all tries."""


class DnsMalformed(DnsError):
    """A reply that does not parse or does not match the query (dropped; counts as no reply if none other)."""


class DnsLookupFailed(ResolveError):
    """Name resolution for a connection failed (NXDOMAIN, no address, no reply)."""


# -- WebSocket ----------------------------------------------------------------


class WsError(AppError):
    """WebSocket failure outside the transport (handshake refused, bad URL)."""


class WsHandshakeError(WsError):
    """The upgrade was refused or the answer was not a valid WebSocket upgrade."""

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

    @property
    def normal(self) -> bool:
        """1000 (normal) or 1001 (going away): `smolmix ws` exits 0."""
        return self.code in (1000, 1001)
