"""Tunnel failures, as the apps layer's transport errors so engines map them without knowing us.

`TunnelUnavailable` covers the tunnel itself (no exit, the exit refused or went
silent, shut down); the others belong to one connection.
"""

from __future__ import annotations

from smolmix_cli.apps.errors import ConnectError, OperationTimeout, TransportError


class TunnelError(TransportError):
    """Base class of every tunnel failure."""


class TunnelUnavailable(TunnelError):
    """The tunnel is not (or no longer) carrying traffic; the message says why."""


class NoExitAvailable(TunnelUnavailable):
    """The directory lists no usable exit (IPR address, recent build, performance > 0)."""


class IprHandshakeFailed(TunnelUnavailable):
    """The exit IPR refused the connect, never answered, or did not answer a ping."""


class TunnelClosed(TunnelUnavailable):
    """The tunnel was shut down (or failed) while the operation waited."""


class GatewayLost(TunnelUnavailable):
    """The entry gateway stayed unreachable past the tunnel's grace period.

    The gateway client keeps reconnecting on its own; this bounds how long a
    tunnel may look ready while nothing can leave it, so a session replaces it.
    """


class TunnelConnectError(TunnelError, ConnectError):
    """A TCP connection through the tunnel was refused or reset while opening."""


class ExitPolicyDenied(TunnelConnectError):
    """The exit's policy refuses this destination (it answered with an exit-policy notice)."""


class TunnelTimeout(TunnelError, OperationTimeout):
    """A connect or UDP exchange through the tunnel got no answer in time."""
