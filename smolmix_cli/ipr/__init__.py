"""The IP Packet Router protocol (IPR v8/v9/v10 over the LP SphinxStream frame), sans-io.

This package deals in Nym message payload bytes, sender tags and SURB counts; the
mixnet client carries them and knows nothing of what they hold.
"""
