"""Application protocols over tunnel streams: HTTP/1.1, TLS, WebSocket, DNS.

Everything here talks to the network only through a `Connector` (see
`connector.py`), so the same code runs over the mixnet tunnel and, in tests,
over loopback sockets. Nothing in this package opens an OS socket to a
destination or calls the OS resolver.
"""
