"""Userspace IPv4/IPv6 TCP/UDP stack: sans-io cores, thin anyio adapters."""
