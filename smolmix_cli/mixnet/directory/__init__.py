"""The directory client: fetching the topology from a nym-api (sans-io core, h11 shell).

It hands back a Topology and nothing else: no routing, no client state.
"""
