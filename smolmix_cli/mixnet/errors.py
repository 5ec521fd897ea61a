"""Error types of the mixnet packet layer.

Every parser and cryptographic check in `smolmix_cli.mixnet` raises a subclass
of `MixnetError`, never a bare ValueError or IndexError, so that nodes and the
client can drop bad input with one `except` clause.
"""

from __future__ import annotations


class MixnetError(Exception):
    """Base class of every error the mixnet layer raises."""


class MalformedData(MixnetError):
    """Bytes that do not parse as the structure expected (length, tag, field)."""


class IntegrityError(MixnetError):
    """A MAC, digest or authenticated-encryption tag did not verify."""


class InvalidKey(MixnetError):
    """A key or address of the wrong length, alphabet or curve encoding."""


class ReplayDetected(MixnetError):
    """A packet whose replay tag was already seen in this key epoch."""
