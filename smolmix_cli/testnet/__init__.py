"""A local Nym-compatible network: mix nodes, gateways, directory, exit (see DESIGN.md).

Every node here speaks the same wire formats as the client modules in
`smolmix_cli.mixnet`; nothing in this package reimplements a protocol the client has.
"""
