"""Messages to and from packets: padding, fragments, SURB-ACKs, reply SURBs, reassembly.

Sans-io with explicit time; no sockets, and what a message's bytes mean is not its business.
"""
