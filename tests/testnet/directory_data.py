"""Directory contents for tests: the probe's topology shape with fresh real keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from smolmix_cli.mixnet.keys import Ed25519KeyPair, X25519KeyPair
from smolmix_cli.mixnet.topology.topology import EntryDetails, NodeRole, SupportedRoles
from smolmix_cli.testnet.ca import create_ca
from smolmix_cli.testnet.directory import DirectoryNode, DirectoryServer, DirectoryState


def mixnode(node_id: int, layer: int, port: int) -> DirectoryNode:
    return DirectoryNode(
        node_id=node_id,
        identity=Ed25519KeyPair.generate().public_bytes,
        sphinx_key=X25519KeyPair.generate().public_bytes,
        ip="127.0.0.1",
        mix_port=port,
        role=NodeRole.MIXNODE,
        layer=layer,
        supported_roles=SupportedRoles(mixnode=True),
    )


def gateway(node_id: int, role: NodeRole, port: int, ws_port: int) -> DirectoryNode:
    exit_capable = role is NodeRole.EXIT_GATEWAY
    return DirectoryNode(
        node_id=node_id,
        identity=Ed25519KeyPair.generate().public_bytes,
        sphinx_key=X25519KeyPair.generate().public_bytes,
        ip="127.0.0.1",
        mix_port=port,
        role=role,
        entry=EntryDetails(None, ws_port, None),
        supported_roles=SupportedRoles(entry=True, exit_nr=exit_capable, exit_ipr=exit_capable),
    )


def probe_like_nodes(per_layer: int = 1) -> list[DirectoryNode]:
    """Gateways 1 (entry) and 2 (exit), mix nodes 11.. on layers 1-3."""
    nodes = [
        gateway(1, NodeRole.ENTRY_GATEWAY, 1789, 9000),
        gateway(2, NodeRole.EXIT_GATEWAY, 1790, 9002),
    ]
    next_id = 11
    for layer in (1, 2, 3):
        for _ in range(per_layer):
            nodes.append(mixnode(next_id, layer, 1780 + next_id))
            next_id += 1
    return nodes


def probe_like_state(per_layer: int = 1) -> DirectoryState:
    return DirectoryState(probe_like_nodes(per_layer), absolute_epoch_id=100, rotation_id=10)


def with_directory_server(
    state: DirectoryState,
    body: Callable[[DirectoryServer], Awaitable[Any]],
    ssl_dir: Path | None = None,
) -> Any:
    """Run `body` against a directory serving `state` (HTTPS with a fresh CA in `ssl_dir`)."""

    async def main() -> Any:
        ctx = create_ca(ssl_dir).server_context() if ssl_dir is not None else None
        server = DirectoryServer(state, ssl_context=ctx)
        async with anyio.create_task_group() as tg:
            await tg.start(server.serve)
            try:
                with anyio.fail_after(20):
                    return await body(server)
            finally:
                server.stop()

    return anyio.run(main)
