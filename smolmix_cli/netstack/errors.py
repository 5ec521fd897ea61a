"""Error types of the userspace stack.

Packet parsers raise `MalformedPacket` (or a subclass); the stack catches it,
counts the drop and carries on, so no malformed input escapes the stack.
Socket-level failures a user can act on derive from `NetstackError`.
"""

from __future__ import annotations


class NetstackError(Exception):
    """Base class of every error the stack raises."""


class MalformedPacket(NetstackError):
    """Bytes from the wire that do not form a packet we accept."""


class ConnectionRefused(NetstackError):
    """The peer answered a SYN with RST (or ICMP unreachable)."""


class ConnectionReset(NetstackError):
    """The peer reset an established connection."""


class ConnectionTimedOut(NetstackError):
    """Retransmissions or keepalive probes went unanswered for too long."""


class ConnectionClosed(NetstackError):
    """The socket was used after it had been closed or aborted locally."""


class AddressInUse(NetstackError):
    """No free local port, or the requested one is taken."""
