"""Wake-up primitives shared by the anyio shells.

`new_wakeup()`: a one-shot flag for the netstack shell's hot paths. Same
contract as `anyio.Event` (set once, any number of waiters, waiting is
cancellable), but on asyncio it is one future per waiter: a fresh
`anyio.Event` per wake-up costs a backend lookup and an asyncio.Event that
takes a global lock the first time it is awaited, and the shell makes
several per packet batch (py-spy put them at ~15 % of a loss benchmark).
Other backends (trio) get `anyio.Event` itself.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import anyio


class Wakeup(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> None: ...


class _LoopWakeup:
    __slots__ = ("_futures", "_loop", "_set")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set = False
        self._futures: list[asyncio.Future[None]] = []

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        for fut in self._futures:
            if not fut.done():  # a cancelled waiter's future is done already
                fut.set_result(None)
        self._futures.clear()

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        if self._set:
            return
        fut = self._loop.create_future()
        self._futures.append(fut)
        await fut


def new_wakeup() -> Wakeup:
    """A fresh, unset wake-up for the running event loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio)
        return anyio.Event()
    return _LoopWakeup(loop)


class Signal:
    """A re-armable wake-up: `wait` returns once per `set` (anyio.Event is one-shot).

    Level-triggered: a `set` with nobody waiting is kept for the next `wait`.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event = anyio.Event()
