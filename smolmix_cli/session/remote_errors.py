"""How a session's refusals and errors come back to a command, for both attach shells.

The daemon sends a failure classified (its line and exit code); `rebuild_error` raises
it here so that it classifies the same again. No anyio here: the blocking attach shell
(session/attach.py) raises these as the async one (session/remote.py) does.
"""

from __future__ import annotations

from collections.abc import Callable

from smolmix_cli.apps.errors import AppError
from smolmix_cli.session import protocol as proto


class SessionUnavailable(AppError):
    """No session answers on the socket (gone, stale, not ours, or it could not start).

    Exits as curl's "could not resolve proxy" would: the session is this command's proxy.
    """


DAEMON_REFUSALS = ("PermissionError", "ProtocolError")
"""Error kinds the daemon answers with before it serves anything (docs/session-protocol.md):
not our session, or not a request it understands. To us, the session is unavailable."""


def rebuild_error(error: proto.RemoteError) -> Exception:
    """The daemon's error, raised here so it classifies to the same exit code and line.

    The daemon sends the classified line and code (smolmix_cli.errors_map). Failures the
    apps react to by type (a name that did not resolve, a refused connection, a timeout,
    the tunnel gone) come back as those types; any other failure is already final.
    """
    if error.kind in DAEMON_REFUSALS:
        return SessionUnavailable(error.message)
    from smolmix_cli.apps.errors import ResolveError
    from smolmix_cli.exit_codes import CliError, ExitCode
    from smolmix_cli.tunnel.errors import TunnelConnectError, TunnelTimeout, TunnelUnavailable

    as_raised: dict[int, Callable[[str], Exception]] = {
        ExitCode.RESOLVE_FAILED: ResolveError,
        ExitCode.CONNECT_FAILED: TunnelConnectError,
        ExitCode.TIMEOUT: TunnelTimeout,
        ExitCode.IPR_HANDSHAKE: TunnelUnavailable,
    }
    rebuild = as_raised.get(error.exit_code)
    if rebuild is not None:
        return rebuild(error.message)
    return CliError(error.message, error.exit_code)
