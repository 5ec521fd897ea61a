"""A worker process of the local network: runs the nodes the main process hands it.

Started by `workers.open_workers` as `python -m smolmix_cli.testnet.worker`; requests come
on stdin, answers go out on the original stdout (print() goes to stderr, so it cannot
corrupt them). The nodes are built by the same `LocalNetwork` methods the single-process
network uses, so a node behaves the same whichever process it is in. Stdin closing is the
only stop signal (Ctrl-C reaches the whole process group; the parent decides).
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import traceback
from typing import IO, Any

import anyio
import anyio.abc
import anyio.to_thread

from smolmix_cli.mixnet.keys import X25519KeyPair
from smolmix_cli.testnet.control import halt_here, relaunch_here, rotate_here, set_layer_here
from smolmix_cli.testnet.network import LocalNetwork
from smolmix_cli.testnet.nodes.node_spec import NodeSpec
from smolmix_cli.testnet.workers import encode, read_message


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class WorkerHost:
    """The requests a worker answers, against one `LocalNetwork` used as a node host."""

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self.tg = tg
        self.network: LocalNetwork | None = None

    async def handle(self, op: str, args: tuple[Any, ...]) -> Any:
        if op == "init":
            self.network = LocalNetwork(args[0])
            self.network.host_in(self.tg)
            return os.getpid()
        network = self.network
        if network is None:
            raise RuntimeError("init first")
        if op == "start_node":
            spec = NodeSpec.from_json(args[0])
            return (await network.start_here(spec)).to_json(private=True)
        if op == "start_exit":
            gateway, network.directory_url, network.origin_ports = args
            spec = NodeSpec.from_json(gateway)
            network.specs.setdefault(spec.node_id, spec)  # its gateway may run elsewhere
            return str(await network.serve_exit(spec.node_id))
        if op == "halt":
            node_id, kill = args
            return await halt_here(network, node_id, kill=kill)
        if op == "relaunch":
            spec, keep = NodeSpec.from_json(args[0]), args[1]
            await relaunch_here(network, spec, keep_registry=keep)
            return network.specs[spec.node_id].to_json(private=True)
        if op == "rotate":
            node_id, private, rotation_id = args
            key = X25519KeyPair.from_private_bytes(private)
            return rotate_here(network, node_id, key, rotation_id).to_json(private=True)
        if op == "set_layer":
            return set_layer_here(network, *args)
        if op == "stop_exit":
            return await network.stop_exit(args[0])
        if op == "status":
            return {**network.local_status(), "pid": os.getpid(), "cpu_s": cpu_seconds()}
        raise ValueError(f"unknown request {op!r}")


async def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    async with anyio.create_task_group() as tg:
        host = WorkerHost(tg)
        while True:
            message = await anyio.to_thread.run_sync(read_message, requests, abandon_on_cancel=True)
            if message is None:
                break  # the parent closed our stdin (or is gone): stop every node
            op, args = message
            try:
                answer = (True, await host.handle(op, args))
            except Exception as exc:
                traceback.print_exc()
                answer = (False, f"{type(exc).__name__}: {exc}")
            answers.write(encode(answer))
            answers.flush()
        tg.cancel_scope.cancel()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    anyio.run(serve, sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
