"""Error types of the IPR layer.

Every parser in `smolmix_cli.ipr` raises a subclass of `IprError`, never a bare
ValueError or IndexError, so the client and the exit can drop bad payloads with
one `except` clause.
"""

from __future__ import annotations


class IprError(Exception):
    """Base class of every error the IPR layer raises."""


class MalformedIprFrame(IprError):
    """An LP SphinxStream frame that does not parse (length, kind, message type)."""


class BincodeError(IprError):
    """Bytes that are not one bincode value of the expected type (truncated, bad tag, trailing)."""


class MalformedIprMessage(IprError):
    """An IPR request or response that does not parse, or a field out of range."""


class UnsupportedVersion(MalformedIprMessage):
    """An IPR protocol version this codec does not speak."""


class MalformedBundle(IprError):
    """A MultiIpPacketCodec bundle that ends inside a length prefix or a packet."""


class MalformedIpPacket(IprError):
    """An IP packet inside a bundle without a usable IPv4/IPv6 header and transport header."""
