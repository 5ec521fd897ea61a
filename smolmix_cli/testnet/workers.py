"""The local network's worker processes, seen from the main one (`testnet up --processes N`).

One event loop carries every node's Sphinx work, the exit's NAT and the demo origin, so a
local benchmark measures the network's core as much as the client's. With N processes the
nodes are spread over the main process and N-1 workers (`python -m smolmix_cli.testnet.worker`),
each running its share with the same code `LocalNetwork` runs in-process; the nodes already
talk over loopback sockets, so only starting them and reading their counters crosses the pipes.

The pipes carry length-prefixed pickles between a parent and the children it started
(nothing else reads them). A worker ends when its stdin closes, so one whose parent was
killed outright still exits: no stray processes after `testnet down`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

FRAME = struct.Struct(">I")
STOP_TIMEOUT = 10.0
WORKER_MODULE = "smolmix_cli.testnet.worker"
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])

Unit = tuple[str, int]  # ("exit", node_id) for an exit IPR, ("node", node_id) for a node


class WorkerError(Exception):
    """A worker failed a request (the text is its exception) or went away."""


def encode(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME.pack(len(data)) + data


def read_message(stream: IO[bytes]) -> Any | None:
    """The next message from a blocking pipe; None at its end."""
    header = stream.read(FRAME.size)
    if len(header) < FRAME.size:
        return None
    (size,) = FRAME.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def place(units: list[Unit], processes: int) -> dict[Unit, int]:
    """Unit -> process index (0: the main one), round-robin from the first worker.

    `units` come heaviest first (exit IPRs, gateways, mix nodes), so the main process, which
    also serves the directory and the demo origin, gets the lighter share; with one process
    per unit and one more, every node has a process of its own.
    """
    if processes <= 1:
        return dict.fromkeys(units, 0)
    return {unit: (i + 1) % processes for i, unit in enumerate(units)}


class Placement:
    """Which process runs which unit, and the workers once they run (none: all here)."""

    def __init__(self, placement: dict[Unit, int] | None = None) -> None:
        self.placement = placement or {}
        self.workers: list[Worker] = []

    def started(self, workers: list[Worker]) -> None:
        self.workers = workers
        for unit, index in self.placement.items():
            if index:
                workers[index - 1].units.append(unit)

    def worker_of(self, unit: Unit) -> Worker | None:
        index = self.placement.get(unit, 0)
        return self.workers[index - 1] if index and self.workers else None

    def table(self, main: list[str]) -> list[dict[str, Any]]:
        """Each process's pid and what it runs (`exit-N`: the exit IPR behind gateway N)."""

        def names(index: int) -> list[str]:
            return [
                f"exit-{i}" if kind == "exit" else str(i)
                for (kind, i), at in self.placement.items()
                if at == index
            ]

        here = {"pid": os.getpid(), "runs": [*main, *names(0)]}
        return [here, *({"pid": w.pid, "runs": names(w.index)} for w in self.workers)]


class Worker:
    """One worker process; `call` sends a request and waits for its answer (one at a time)."""

    def __init__(self, index: int, process: anyio.abc.Process) -> None:
        self.index = index
        self.process = process
        self.units: list[Unit] = []
        self._reader = BufferedByteReceiveStream(process.stdout)  # type: ignore[arg-type]
        self._lock = anyio.Lock()

    @property
    def pid(self) -> int:
        return self.process.pid

    async def call(self, op: str, *args: Any) -> Any:
        assert self.process.stdin is not None
        try:
            async with self._lock:
                await self.process.stdin.send(encode((op, args)))
                (size,) = FRAME.unpack(await self._reader.receive_exactly(FRAME.size))
                ok, value = pickle.loads(await self._reader.receive_exactly(size))
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.IncompleteRead) as exc:
            raise WorkerError(f"worker {self.index} (pid {self.pid}) went away") from exc
        if not ok:
            raise WorkerError(f"worker {self.index} (pid {self.pid}): {value}")
        return value


async def watch(worker: Worker) -> None:
    """Fail the network when a worker dies under it (a half network would mislead tests)."""
    code = await worker.process.wait()
    raise WorkerError(f"worker {worker.index} (pid {worker.pid}) exited with status {code}")


def _worker_env() -> dict[str, str]:
    """The parent's environment with this checkout first, so a worker runs the same code."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + path if path else "")
    return env


@asynccontextmanager
async def open_workers(count: int, options: Any) -> AsyncIterator[list[Worker]]:
    """`count` workers, each told the network's options; closed (and waited for) on exit."""
    workers: list[Worker] = []
    try:
        for index in range(1, count + 1):
            process = await anyio.open_process(
                [sys.executable, "-m", WORKER_MODULE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,
                env=_worker_env(),
            )
            workers.append(Worker(index, process))
        async with anyio.create_task_group() as tg:
            for worker in workers:
                tg.start_soon(worker.call, "init", options)
        yield workers
    finally:
        with anyio.CancelScope(shield=True):
            await close_workers(workers)


async def close_workers(workers: list[Worker]) -> None:
    """Close every worker's stdin (its signal to stop), then wait; kill the ones that hang."""
    for worker in workers:
        with contextlib.suppress(Exception):
            assert worker.process.stdin is not None
            await worker.process.stdin.aclose()
    for worker in workers:
        with anyio.move_on_after(STOP_TIMEOUT):
            await worker.process.wait()
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            await worker.process.wait()
