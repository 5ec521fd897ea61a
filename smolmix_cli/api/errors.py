"""The API's errors: one type per kind of failure, each carrying the CLI's exit code.

Every failure is classified by `smolmix_cli.errors_map.classify`, the table the
commands use, so `err.code` is the number `smolmix fetch|ws|resolve` would exit
with and `str(err)` its line; the type is chosen by that code, so a program can
catch `ConnectError` without knowing which layer refused. The original
exception stays as `__cause__`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from smolmix_cli.errors_map import classify
from smolmix_cli.exit_codes import ExitCode


class Error(Exception):
    """Base of every API failure; `code` is the CLI's exit code for it."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


class UsageError(Error):
    """A bad argument: option value, header, URL (exit 2, 3)."""


class NetworkError(Error):
    """The tunnel could not come up or went away: directory, gateway, exit, session (5, 97, 110-112)."""


class ResolveError(Error):
    """A destination name did not resolve through the tunnel (6)."""


class ConnectError(Error):
    """TCP through the tunnel was refused, reset or denied by the exit policy (7)."""


class Timeout(Error, TimeoutError):
    """A connect, read or total deadline expired (28)."""


class TlsError(Error):
    """TLS handshake, certificate or CA file failure (35, 60, 77)."""


class HttpError(Error):
    """The HTTP exchange failed: bad reply, cut body, too many redirects... (8, 18, 22, 47, 52...)."""


class DnsError(Error):
    """`resolve` got no usable reply (9) or failed internally (10)."""


class WebSocketClosed(Error):
    """The WebSocket ended; `close_code` is the close frame's (1006: lost without one)."""

    close_code: int = 1006
    reason: str = ""


_BY_CODE: dict[ExitCode, type[Error]] = {
    ExitCode.USAGE: UsageError,
    ExitCode.MALFORMED_URL: UsageError,
    ExitCode.NETWORK_UNREACHABLE: NetworkError,
    ExitCode.IPR_HANDSHAKE: NetworkError,
    ExitCode.DIRECTORY_INVALID: NetworkError,
    ExitCode.GATEWAY_REFUSED: NetworkError,
    ExitCode.TESTNET_UNAVAILABLE: NetworkError,
    ExitCode.RESOLVE_FAILED: ResolveError,
    ExitCode.CONNECT_FAILED: ConnectError,
    ExitCode.TIMEOUT: Timeout,
    ExitCode.TLS_ERROR: TlsError,
    ExitCode.CERTIFICATE_ERROR: TlsError,
    ExitCode.CA_FILE_ERROR: TlsError,
    ExitCode.WEIRD_REPLY: HttpError,
    ExitCode.PARTIAL_FILE: HttpError,
    ExitCode.HTTP_ERROR: HttpError,
    ExitCode.WRITE_ERROR: HttpError,
    ExitCode.READ_ERROR: HttpError,
    ExitCode.RANGE_ERROR: HttpError,
    ExitCode.TOO_MANY_REDIRECTS: HttpError,
    ExitCode.EMPTY_REPLY: HttpError,
    ExitCode.SEND_ERROR: HttpError,
    ExitCode.RECV_ERROR: HttpError,
    ExitCode.BAD_CONTENT_ENCODING: HttpError,
    ExitCode.DNS_NO_REPLY: DnsError,
    ExitCode.DNS_INTERNAL: DnsError,
    ExitCode.WS_ABNORMAL_CLOSE: WebSocketClosed,
}


def error_for(exc: BaseException) -> Error:
    """The API error for a failure from any layer (an API error stays itself)."""
    if isinstance(exc, Error):
        return exc
    from smolmix_cli.apps.errors import WsClosed

    line = classify(exc)
    error = _BY_CODE.get(line.code, Error)(str(line), line.code)
    if isinstance(error, WebSocketClosed) and isinstance(exc, WsClosed):
        error.close_code, error.reason = exc.code, exc.reason
    error.__cause__ = exc
    return error


@contextmanager
def translated() -> Iterator[None]:
    """Failures inside leave as API errors; cancellation and KeyboardInterrupt pass through."""
    try:
        yield
    except Error:
        raise
    except Exception as exc:
        raise error_for(exc) from exc
