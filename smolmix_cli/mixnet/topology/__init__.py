"""The mixnet as a client sees it: nodes, layers, key rotation, and route and delay choice.

Built from directory answers; it never fetches them itself.
"""
