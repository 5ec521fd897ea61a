"""Where commands get their tunnel: `open_tunnel(global_options)` (see factory.py).

Names are loaded on first use so that importing a session module (the
attach path, `session status`) does not import the tunnel and the mixnet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smolmix_cli.session.factory import Session, load_network, open_tunnel, tunnel_options

__all__ = ["Session", "load_network", "open_tunnel", "tunnel_options"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from smolmix_cli.session import factory

        return getattr(factory, name)
    raise AttributeError(name)
