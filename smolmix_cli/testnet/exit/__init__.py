"""The exit behind each exit gateway: the IPR (a mixnet client running IprRouter), NAT, policy.

The IPR protocol is smolmix_cli.ipr's; this room only runs it and carries packets to OS sockets.
"""
