"""smolmix: curl, websocat and dig over the Nym mixnet."""

__version__ = "0.1.0"
