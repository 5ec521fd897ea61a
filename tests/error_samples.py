"""One failure of every kind the classification knows, with the code and line a user sees.

Shared by the classification's own tests, the commands' tests and the session's:
the same failure must end the same way wherever it happens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smolmix_cli.apps import errors as app
from smolmix_cli.config import NetworkConfigError
from smolmix_cli.exit_codes import CliError, ExitCode
from smolmix_cli.mixnet.client.client import ClientClosed, DeliveryFailed
from smolmix_cli.mixnet.client.core import ClientError
from smolmix_cli.mixnet.directory.api_urls import DirectoryUnavailable, FailureKind
from smolmix_cli.mixnet.gateway.client import (
    GatewayClientError,
    GatewayHandshakeTimeout,
    GatewayUnavailable,
)
from smolmix_cli.mixnet.topology.topology import NO_USABLE_ROUTE, NoUsableRoute
from smolmix_cli.netstack.aio import StackClosed, StackStopped
from smolmix_cli.session.daemon import SessionDaemonError
from smolmix_cli.session.factory import OptionError
from smolmix_cli.session.paths import SessionPathError
from smolmix_cli.session.remote_errors import SessionUnavailable
from smolmix_cli.tunnel import errors as tunnel

API = "https://validator.nymtech.net/api/"


@dataclass(frozen=True)
class Sample:
    make: Callable[[], BaseException]
    code: ExitCode
    line: str

    @property
    def id(self) -> str:
        return type(self.make()).__name__


def _s(make: Callable[[], BaseException], code: ExitCode, line: str) -> Sample:
    return Sample(make, code, line)


C = ExitCode

SAMPLES: list[Sample] = [
    # the process
    _s(KeyboardInterrupt, C.INTERRUPTED, "interrupted"),
    _s(TimeoutError, C.TIMEOUT, "timed out"),
    _s(
        lambda: ValueError("line one\nline two"), C.INTERNAL, "internal error: ValueError: line one"
    ),
    _s(
        lambda: CliError("no reply came back through the mixnet", 1),
        C.FAILURE,
        "no reply came back through the mixnet",
    ),
    # apps
    _s(lambda: app.AppError("boom"), C.FAILURE, "boom"),
    _s(
        lambda: app.ResolveError("Could not resolve host: a.test"),
        C.RESOLVE_FAILED,
        "Could not resolve host: a.test",
    ),
    _s(
        lambda: app.DnsLookupFailed("Could not resolve host: b.test"),
        C.RESOLVE_FAILED,
        "Could not resolve host: b.test",
    ),
    _s(
        lambda: app.ConnectError("Failed to connect to a.test port 80"),
        C.CONNECT_FAILED,
        "Failed to connect to a.test port 80",
    ),
    _s(lambda: app.OperationTimeout("Connection timed out"), C.TIMEOUT, "Connection timed out"),
    _s(lambda: app.SendError("send failed"), C.SEND_ERROR, "send failed"),
    _s(
        lambda: app.RecvError("Recv failure: Connection reset by peer"),
        C.RECV_ERROR,
        "Recv failure: Connection reset by peer",
    ),
    _s(lambda: app.TlsError("TLS handshake failed"), C.TLS_ERROR, "TLS handshake failed"),
    _s(
        lambda: app.CertificateError("certificate verify failed"),
        C.CERTIFICATE_ERROR,
        "certificate verify failed",
    ),
    _s(lambda: app.CaFileError("cannot read CA file x"), C.CA_FILE_ERROR, "cannot read CA file x"),
    _s(lambda: app.UsageError("bad header"), C.USAGE, "bad header"),
    _s(
        lambda: app.UnsupportedProtocol("Protocol ftp not supported"),
        C.FAILURE,
        "Protocol ftp not supported",
    ),
    _s(lambda: app.MalformedUrl("URL rejected"), C.MALFORMED_URL, "URL rejected"),
    _s(lambda: app.PartialFile("transfer closed early"), C.PARTIAL_FILE, "transfer closed early"),
    _s(
        lambda: app.HttpStatusError("The requested URL returned error: 404", 404),
        C.HTTP_ERROR,
        "The requested URL returned error: 404",
    ),
    _s(lambda: app.WriteError("Failure writing output"), C.WRITE_ERROR, "Failure writing output"),
    _s(lambda: app.ReadError("Failed to open/read"), C.READ_ERROR, "Failed to open/read"),
    _s(lambda: app.RangeError("range ignored"), C.RANGE_ERROR, "range ignored"),
    _s(
        lambda: app.TooManyRedirects("Maximum (5) redirects followed"),
        C.TOO_MANY_REDIRECTS,
        "Maximum (5) redirects followed",
    ),
    _s(lambda: app.EmptyReply("Empty reply from server"), C.EMPTY_REPLY, "Empty reply from server"),
    _s(lambda: app.BadResponse("Weird server reply"), C.WEIRD_REPLY, "Weird server reply"),
    _s(lambda: app.BadContentEncoding("bad gzip"), C.BAD_CONTENT_ENCODING, "bad gzip"),
    _s(lambda: app.DnsError("internal"), C.DNS_INTERNAL, "internal"),
    _s(lambda: app.DnsUsageError("bad name"), C.FAILURE, "bad name"),
    _s(
        lambda: app.DnsNoReply("no servers could be reached"),
        C.DNS_NO_REPLY,
        "no servers could be reached",
    ),
    _s(lambda: app.DnsMalformed("reply id mismatch"), C.DNS_NO_REPLY, "reply id mismatch"),
    _s(lambda: app.WsError("bad"), C.FAILURE, "bad"),
    _s(
        lambda: app.WsHandshakeError("websocket upgrade refused with HTTP 403", 403),
        C.HTTP_ERROR,
        "websocket upgrade refused with HTTP 403",
    ),
    _s(lambda: app.WsClosed(4001, "bye"), C.WS_ABNORMAL_CLOSE, "closed 4001 bye"),
    # the tunnel
    _s(
        lambda: tunnel.TunnelConnectError("connection to 10.0.0.1:80 refused"),
        C.CONNECT_FAILED,
        "connection to 10.0.0.1:80 refused",
    ),
    _s(
        lambda: tunnel.ExitPolicyDenied("the exit's policy refuses 10.0.0.1:25"),
        C.CONNECT_FAILED,
        "the exit's policy refuses 10.0.0.1:25",
    ),
    _s(
        lambda: tunnel.TunnelTimeout("connection to 10.0.0.1:80 timed out"),
        C.TIMEOUT,
        "connection to 10.0.0.1:80 timed out",
    ),
    _s(lambda: tunnel.TunnelUnavailable("tunnel failed: x"), C.IPR_HANDSHAKE, "tunnel failed: x"),
    _s(lambda: tunnel.NoExitAvailable("no usable exit"), C.IPR_HANDSHAKE, "no usable exit"),
    _s(
        lambda: tunnel.IprHandshakeFailed("the exit refused the connect"),
        C.IPR_HANDSHAKE,
        "the exit refused the connect",
    ),
    _s(lambda: tunnel.TunnelClosed("tunnel is shut down"), C.IPR_HANDSHAKE, "tunnel is shut down"),
    _s(
        lambda: tunnel.GatewayLost("lost the gateway for 30 s (refused)"),
        C.IPR_HANDSHAKE,
        "lost the gateway for 30 s (refused)",
    ),
    _s(
        lambda: StackStopped("the network stack stopped"),
        C.IPR_HANDSHAKE,
        "the tunnel closed: the network stack stopped",
    ),
    _s(
        lambda: StackClosed("stack is not running"),
        C.IPR_HANDSHAKE,
        "the tunnel closed: stack is not running",
    ),
    # the session and the options
    _s(
        lambda: SessionUnavailable("no session on /run/x: refused"),
        C.NETWORK_UNREACHABLE,
        "no session on /run/x: refused",
    ),
    _s(lambda: SessionDaemonError("a session already runs"), C.FAILURE, "a session already runs"),
    _s(
        lambda: SessionPathError("/run/x is not a directory"),
        C.FAILURE,
        "/run/x is not a directory",
    ),
    _s(lambda: OptionError("bad --ipr address: x"), C.USAGE, "bad --ipr address: x"),
    _s(
        lambda: NetworkConfigError("unknown network 'x'"),
        C.TESTNET_UNAVAILABLE,
        "unknown network 'x'",
    ),
    # the mixnet
    _s(
        lambda: DirectoryUnavailable(FailureKind.CONNECT, API, "refused"),
        C.NETWORK_UNREACHABLE,
        f"Nym directory unavailable: {API}: cannot connect (refused)",
    ),
    _s(
        lambda: DirectoryUnavailable(FailureKind.HTTP, API, "status 503"),
        C.DIRECTORY_INVALID,
        f"Nym directory unavailable: {API}: HTTP error (status 503)",
    ),
    _s(
        lambda: NoUsableRoute(NO_USABLE_ROUTE),
        C.DIRECTORY_INVALID,
        f"no route through the mixnet: {NO_USABLE_ROUTE}",
    ),
    _s(
        lambda: GatewayClientError("connection ended"),
        C.GATEWAY_REFUSED,
        "gateway refused: connection ended",
    ),
    _s(
        lambda: GatewayHandshakeTimeout("gateway handshake timed out"),
        C.GATEWAY_REFUSED,
        "gateway handshake timed out",
    ),
    _s(
        lambda: GatewayUnavailable("cannot use gateway at ws://g:9000/: refused"),
        C.NETWORK_UNREACHABLE,
        "gateway unreachable: cannot use gateway at ws://g:9000/: refused",
    ),
    _s(
        lambda: ClientError("delays must not be negative"),
        C.FAILURE,
        "mixnet client: delays must not be negative",
    ),
    _s(
        lambda: ClientClosed("mixnet client is closed"),
        C.NETWORK_UNREACHABLE,
        "lost the gateway: mixnet client is closed",
    ),
    _s(
        lambda: DeliveryFailed("message 7: no ack"),
        C.FAILURE,
        "message not delivered: message 7: no ack",
    ),
]
