"""Where commands get their tunnel: `open_tunnel(global_options)` (see factory.py)."""

from smolmix_cli.session.factory import Session, load_network, open_tunnel, tunnel_options

__all__ = ["Session", "load_network", "open_tunnel", "tunnel_options"]
