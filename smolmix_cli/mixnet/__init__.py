"""Nym's packet layer and mixnet client: keys, Sphinx, payloads, fragments, SURBs."""
