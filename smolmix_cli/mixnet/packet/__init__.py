"""Nym's packet formats: Sphinx, Lioness, SURBs, payloads, MixPackets, sizes, node framing.

Sans-io bytes in and out; nothing here knows of messages, routes, gateways or sockets.
"""
