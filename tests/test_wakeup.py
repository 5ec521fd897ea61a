"""Wake-up primitives: the one-shot flag behaves like anyio.Event, the signal re-arms."""

from __future__ import annotations

import anyio
import pytest

from smolmix_cli.wakeup import Signal, new_wakeup

pytestmark = [pytest.mark.anyio, pytest.mark.anyio_backends("asyncio", "trio")]


async def test_every_waiter_wakes_and_a_cancelled_one_does_not_disturb_the_rest() -> None:
    w = new_wakeup()
    woke: list[str] = []

    async def waiter(name: str) -> None:
        await w.wait()
        woke.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "a")
        tg.start_soon(waiter, "b")
        with anyio.move_on_after(0.01) as scope:
            await w.wait()  # a third waiter gives up before the flag is set
        assert scope.cancelled_caught and not w.is_set()
        w.set()
        w.set()  # idempotent
    assert sorted(woke) == ["a", "b"] and w.is_set()
    with anyio.fail_after(1):
        await w.wait()  # already set: returns at once


async def test_waiting_is_cancellable() -> None:
    w = new_wakeup()
    with anyio.move_on_after(0.01) as scope:
        await w.wait()
    assert scope.cancelled_caught
    w.set()  # setting after a cancelled wait is harmless
    assert w.is_set()


async def test_signal_rearms_and_keeps_a_set_made_before_the_wait() -> None:
    sig = Signal()
    sig.set()  # nobody waits yet: kept
    with anyio.fail_after(1):
        await sig.wait()
    with anyio.move_on_after(0.01) as scope:
        await sig.wait()  # consumed: waits again
    assert scope.cancelled_caught
    async with anyio.create_task_group() as tg:
        tg.start_soon(sig.wait)
        await anyio.sleep(0.01)
        sig.set()
