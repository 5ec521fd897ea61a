"""Error types of the local network's exit IPR (policy text, configuration)."""

from __future__ import annotations

from smolmix_cli.ipr.errors import IprError


class ExitError(IprError):
    """Base class of what the exit IPR raises."""


class ExitPolicyError(ExitError):
    """Exit policy text that does not parse."""
