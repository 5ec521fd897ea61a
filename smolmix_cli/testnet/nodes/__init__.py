"""The local network's nodes: mix nodes, gateways and what they share (processing, links, ...).

Every wire format comes from smolmix_cli.mixnet; no protocol the client has is redone here.
"""
