"""The mixnet client: a sans-io core and its anyio shell, the key store, mixnet ping.

The one room that ties packet, message, topology and gateway together; payloads stay opaque.
"""
