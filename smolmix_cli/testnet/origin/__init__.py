"""The demo origin: HTTP(S), WebSocket and DNS servers on loopback that the exits map to.

Plain servers: nothing here knows that a request came through the mixnet.
"""
