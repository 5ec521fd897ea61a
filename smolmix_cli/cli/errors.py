"""Exit codes and the one place where failures become one stderr line.

curl's numbers where the meaning carries over (5, 28), so scripts that already
test curl's codes keep working; the mixnet's own failures get codes above
curl's range (110+). The table is documented in docs/exit-codes.md; the two
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
    FAILURE = 1  # the operation ran but failed (ping: no reply at all)
    USAGE = 2  # click's usage errors
    NETWORK_UNREACHABLE = 5  # no directory URL / gateway reachable (resolve, connect, TLS, timeout)
    TIMEOUT = 28  # the command's own deadline expired
    INTERNAL = 70  # a bug: an exception nobody expected
    IPR_HANDSHAKE = 97  # reserved for fetch/ws/resolve: the exit IPR refused or never answered
    DIRECTORY_INVALID = 110  # the directory answered, but with an error or an unusable topology
    GATEWAY_REFUSED = 111  # gateway handshake, registration, authentication or bandwidth refused
    TESTNET_UNAVAILABLE = 112  # local network not running / cannot start / bad network file
    INTERRUPTED = 130  # SIGINT (128 + 2)


class CliError(Exception):
    """A failure the user can act on: one line of text and an exit code."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(" ".join(message.split()))
        self.code = code


def classify(exc: BaseException) -> CliError:
    """Map an exception from any layer to the user's one line and exit code."""
    if isinstance(exc, CliError):
        return exc
    from smolmix_cli.mixnet.nym_api import DirectoryUnavailable, FailureKind

    if isinstance(exc, DirectoryUnavailable):
        unreachable = exc.kind in (
            FailureKind.RESOLVE,
            FailureKind.CONNECT,
            FailureKind.TLS,
            FailureKind.TIMEOUT,
        )
        code = ExitCode.NETWORK_UNREACHABLE if unreachable else ExitCode.DIRECTORY_INVALID
        return CliError(str(exc), code)
    from smolmix_cli.mixnet.topology import NoRoute

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
