"""Exit codes and the one place where failures become one stderr line.

curl's numbers where the meaning carries over (fetch, ws), dig's for resolve
(0 for any answer, 1 usage, 9 no reply, 10 internal), so scripts that already
test those tools' codes keep working; the mixnet's own failures get 5, 97 and
codes above curl's range (110+). The table is documented in docs/exit-codes.md; the two
must change together (a test compares them).
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import click


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # the operation ran but failed (ping: no reply; fetch: bad scheme; resolve: usage)
    USAGE = 2  # click's usage errors, bad option values (-H, -F, @file)
    MALFORMED_URL = 3
    NETWORK_UNREACHABLE = 5  # no directory URL / gateway reachable (resolve, connect, TLS, timeout)
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
    DIRECTORY_INVALID = 110  # the directory answered, but with an error or an unusable topology
    GATEWAY_REFUSED = 111  # gateway handshake, registration, authentication or bandwidth refused
    TESTNET_UNAVAILABLE = 112  # local network not running / cannot start / bad network file
    INTERRUPTED = 130  # SIGINT (128 + 2)


class CliError(Exception):
    """A failure the user can act on: one line of text and an exit code."""

    def __init__(self, message: str, code: ExitCode | int) -> None:
        super().__init__(" ".join(message.split()))
        try:
            self.code = ExitCode(int(code))
        except ValueError:
            self.code = ExitCode.INTERNAL


def classify(exc: BaseException) -> CliError:
    """Map an exception from any layer to the user's one line and exit code."""
    if isinstance(exc, CliError):
        return exc
    from smolmix_cli.apps.errors import AppError

    if isinstance(exc, AppError) or type(exc).__name__ == "SessionError":
        return CliError(str(exc) or type(exc).__name__, int(getattr(exc, "exit_code", 1)))
    from smolmix_cli.config import NetworkConfigError

    if isinstance(exc, NetworkConfigError):
        return CliError(str(exc), ExitCode.TESTNET_UNAVAILABLE)
    from smolmix_cli.mixnet.directory.nym_api import DirectoryUnavailable, FailureKind

    if isinstance(exc, DirectoryUnavailable):
        unreachable = exc.kind in (
            FailureKind.RESOLVE,
            FailureKind.CONNECT,
            FailureKind.TLS,
            FailureKind.TIMEOUT,
        )
        code = ExitCode.NETWORK_UNREACHABLE if unreachable else ExitCode.DIRECTORY_INVALID
        return CliError(str(exc), code)
    from smolmix_cli.mixnet.topology.topology import NoRoute

    if isinstance(exc, NoRoute):
        return CliError(f"no route through the mixnet: {exc}", ExitCode.DIRECTORY_INVALID)
    if isinstance(exc, TimeoutError):
        return CliError("timed out", ExitCode.TIMEOUT)
    for cls in type(exc).__mro__:  # the gateway client's error types, by name (no import cycle)
        if cls.__name__ in _BY_NAME:
            code, prefix = _BY_NAME[cls.__name__]
            return CliError(f"{prefix}: {exc}", code)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return CliError(f"internal error: {type(exc).__name__}: {text}", ExitCode.INTERNAL)


# Errors of modules other branches own, matched by class name so this table does not
# import them (and fail) before they exist.
_BY_NAME: dict[str, tuple[ExitCode, str]] = {
    "GatewayUnavailable": (ExitCode.NETWORK_UNREACHABLE, "gateway unreachable"),
    "GatewayHandshakeTimeout": (ExitCode.GATEWAY_REFUSED, "gateway handshake timed out"),
    "GatewayClientError": (ExitCode.GATEWAY_REFUSED, "gateway refused"),
    "GatewayUnreachable": (ExitCode.NETWORK_UNREACHABLE, "gateway unreachable"),
    "ClientClosed": (ExitCode.NETWORK_UNREACHABLE, "lost the gateway"),
    "DeliveryFailed": (ExitCode.FAILURE, "message not delivered"),
    "ClientError": (ExitCode.FAILURE, "mixnet client"),
    "GatewayConnectError": (ExitCode.NETWORK_UNREACHABLE, "gateway unreachable"),
    "WebSocketError": (ExitCode.NETWORK_UNREACHABLE, "gateway connection failed"),
    "HandshakeError": (ExitCode.GATEWAY_REFUSED, "gateway handshake failed"),
    "GatewayError": (ExitCode.GATEWAY_REFUSED, "gateway refused"),
    "GatewayProtocolError": (ExitCode.GATEWAY_REFUSED, "gateway protocol error"),
}


def fail(error: CliError) -> NoReturn:
    click.echo(f"smolmix: {error}", err=True)
    sys.exit(int(error.code))


P = ParamSpec("P")
R = TypeVar("R")


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command body: any failure becomes one stderr line and its exit code."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("smolmix: interrupted", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))
        except SystemExit:
            raise
        except BaseException as exc:  # the single translation point
            fail(classify(_unwrap(exc)))

    return wrapper


def _unwrap(exc: BaseException) -> BaseException:
    """The first real failure inside (nested) exception groups from task groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
