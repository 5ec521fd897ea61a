"""A local Nym-compatible network: mix nodes, gateways, directory, exit (see docs/architecture.md).

`network.py` starts the whole network; `directory.py` and `ca.py` serve it, and the
rooms are `nodes/`, `exit/` and `origin/`. Every node speaks the same wire formats as
the client modules in `smolmix_cli.mixnet`; nothing here reimplements a protocol the client has.
"""
