"""Every layer's errors -> one exit code and one line: the single classification.

An ordered map from exception type to (exit code, message prefix), looked up
along the exception's MRO so the most specific class wins (as httpx maps
httpcore's exceptions). Commands, the session daemon (its error frames) and
the attached side (which re-raises them) all classify here, so a failure has
the same code and text wherever it happens. The table is built on the first
failure: importing this module costs nothing on the success path.

This module sits above apps, tunnel, mixnet, netstack, config and session (it imports
their error types); only smolmix_cli.exit_codes sits below everything.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from smolmix_cli.exit_codes import CliError, ExitCode, first_failure


class Rule(NamedTuple):
    code: ExitCode
    prefix: str = ""
    """Put before the exception's own text ("" when that text already says it all)."""


Entry = Rule | Callable[[Any], Rule]
"""A rule, or (rarely) a function of the exception when one type covers two codes."""


@functools.cache
def table() -> Mapping[type[BaseException], Entry]:
    """The classification, grouped by layer; order is for reading, the MRO decides."""
    from smolmix_cli.apps import errors as app
    from smolmix_cli.config import NetworkConfigError
    from smolmix_cli.mixnet.client.client import ClientClosed, DeliveryFailed
    from smolmix_cli.mixnet.client.core import ClientError
    from smolmix_cli.mixnet.directory.api_urls import DirectoryUnavailable
    from smolmix_cli.mixnet.gateway.client import (
        GatewayClientError,
        GatewayHandshakeTimeout,
        GatewayUnavailable,
    )
    from smolmix_cli.mixnet.topology.topology import NoUsableRoute
    from smolmix_cli.netstack.aio import StackClosed, StackStopped
    from smolmix_cli.session.daemon import SessionDaemonError
    from smolmix_cli.session.factory import OptionError
    from smolmix_cli.session.paths import SessionPathError
    from smolmix_cli.session.remote_errors import SessionUnavailable
    from smolmix_cli.tunnel.errors import TunnelUnavailable

    code = ExitCode
    return {
        # -- the process
        KeyboardInterrupt: Rule(code.INTERRUPTED, "interrupted"),
        TimeoutError: Rule(code.TIMEOUT, "timed out"),
        # -- apps: curl's numbers (fetch, ws), dig's (resolve)
        app.AppError: Rule(code.FAILURE),
        app.ResolveError: Rule(code.RESOLVE_FAILED),
        app.ConnectError: Rule(code.CONNECT_FAILED),
        app.OperationTimeout: Rule(code.TIMEOUT),
        app.SendError: Rule(code.SEND_ERROR),
        app.RecvError: Rule(code.RECV_ERROR),
        app.TlsError: Rule(code.TLS_ERROR),
        app.CertificateError: Rule(code.CERTIFICATE_ERROR),
        app.CaFileError: Rule(code.CA_FILE_ERROR),
        app.UsageError: Rule(code.USAGE),
        app.UnsupportedProtocol: Rule(code.FAILURE),
        app.MalformedUrl: Rule(code.MALFORMED_URL),
        app.PartialFile: Rule(code.PARTIAL_FILE),
        app.HttpStatusError: Rule(code.HTTP_ERROR),
        app.WriteError: Rule(code.WRITE_ERROR),
        app.ReadError: Rule(code.READ_ERROR),
        app.RangeError: Rule(code.RANGE_ERROR),
        app.TooManyRedirects: Rule(code.TOO_MANY_REDIRECTS),
        app.EmptyReply: Rule(code.EMPTY_REPLY),
        app.BadResponse: Rule(code.WEIRD_REPLY),
        app.BadContentEncoding: Rule(code.BAD_CONTENT_ENCODING),
        app.DnsError: Rule(code.DNS_INTERNAL),
        app.DnsUsageError: Rule(code.FAILURE),
        app.DnsNoReply: Rule(code.DNS_NO_REPLY),
        app.DnsMalformed: Rule(code.DNS_NO_REPLY),
        app.WsError: Rule(code.FAILURE),
        app.WsHandshakeError: Rule(code.HTTP_ERROR),
        app.WsClosed: Rule(code.WS_ABNORMAL_CLOSE),
        # -- the tunnel (its connection errors are the apps' ConnectError, OperationTimeout)
        TunnelUnavailable: Rule(code.IPR_HANDSHAKE),
        # the tunnel's stack stopped under a stream or socket (the tunnel was shut down or lost)
        StackStopped: Rule(code.IPR_HANDSHAKE, "the tunnel closed"),
        StackClosed: Rule(code.IPR_HANDSHAKE, "the tunnel closed"),
        # -- the background session and the global options
        SessionUnavailable: Rule(code.NETWORK_UNREACHABLE),
        SessionDaemonError: Rule(code.FAILURE),
        SessionPathError: Rule(code.FAILURE),
        OptionError: Rule(code.USAGE),
        NetworkConfigError: Rule(code.TESTNET_UNAVAILABLE),
        # -- the mixnet: directory, route, gateway, client
        DirectoryUnavailable: _directory,
        NoUsableRoute: Rule(code.DIRECTORY_INVALID, "no route through the mixnet"),
        GatewayClientError: Rule(code.GATEWAY_REFUSED, "gateway refused"),
        GatewayHandshakeTimeout: Rule(code.GATEWAY_REFUSED),
        GatewayUnavailable: Rule(code.NETWORK_UNREACHABLE, "gateway unreachable"),
        ClientError: Rule(code.FAILURE, "mixnet client"),
        ClientClosed: Rule(code.NETWORK_UNREACHABLE, "lost the gateway"),
        DeliveryFailed: Rule(code.FAILURE, "message not delivered"),
    }


def _directory(exc: Any) -> Rule:
    """Directory URL unreachable (5) or answering unusably (110): the failure's kind says."""
    from smolmix_cli.mixnet.directory.api_urls import FailureKind

    unreachable = (FailureKind.RESOLVE, FailureKind.CONNECT, FailureKind.TLS, FailureKind.TIMEOUT)
    if exc.kind in unreachable:
        return Rule(ExitCode.NETWORK_UNREACHABLE)
    return Rule(ExitCode.DIRECTORY_INVALID)


def entry_for(kind: type[BaseException]) -> tuple[type[BaseException], Entry] | None:
    """The table's entry for this exception type: its most specific listed class."""
    entries = table()
    for cls in kind.__mro__:
        if cls in entries:
            return cls, entries[cls]
    return None


def classify(exc: BaseException) -> CliError:
    """The user's one line and exit code for a failure from any layer."""
    exc = first_failure(exc)
    if isinstance(exc, CliError):
        return exc
    found = entry_for(type(exc))
    if found is None:
        return CliError(
            f"internal error: {type(exc).__name__}: {_first_line(exc)}", ExitCode.INTERNAL
        )
    text = str(exc)
    entry = found[1]
    rule = entry if isinstance(entry, Rule) else entry(exc)
    if rule.prefix:
        return CliError(f"{rule.prefix}: {text}" if text.strip() else rule.prefix, rule.code)
    return CliError(text if text.strip() else type(exc).__name__, rule.code)


def _first_line(exc: BaseException) -> str:
    return next((line for line in str(exc).splitlines() if line.strip()), "")
