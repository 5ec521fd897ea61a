"""Accept loops that no peer can end: the session's listeners face every local user,
the local network's face every client and every hostile test.

A connect-then-reset, a flood that exhausts file descriptors or a handler bug
must cost that one connection, never the listener (and with it the session).
Each failure is counted and logged at debug level; accept errors back off
briefly so an exhausted descriptor table does not spin the loop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc

log = logging.getLogger(__name__)

ACCEPT_BACKOFF = 0.1  # seconds after an accept error (EMFILE, ENOBUFS): let streams close
_T = TypeVar("_T", bound=anyio.abc.AsyncResource)
_T_co = TypeVar("_T_co", covariant=True)


class Accepting(Protocol[_T_co]):
    async def accept(self) -> _T_co: ...


def contained(
    handler: Callable[[_T], Coroutine[Any, Any, None]], on_failure: Callable[[BaseException], None]
) -> Callable[[_T], Coroutine[Any, Any, None]]:
    """`handler` with every Exception it raises reported to `on_failure` instead of raised."""

    async def guarded(conn: _T) -> None:
        try:
            await handler(conn)
        except Exception as exc:
            on_failure(exc)
            log.debug("connection failed: %s: %s", type(exc).__name__, exc)
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await conn.aclose()  # best effort: the connection already failed

    return guarded


async def serve_contained(
    listener: Any,
    handler: Callable[[_T], Coroutine[Any, Any, None]],
    on_failure: Callable[[BaseException], None],
) -> None:
    """Serve every connection of `listener` (an anyio MultiListener, or anything with
    `accept()`) with `handler`, each failure contained."""
    guarded = contained(handler, on_failure)
    listeners = getattr(listener, "listeners", None) or [listener]
    async with anyio.create_task_group() as tg:
        for one in listeners:
            tg.start_soon(_accept_loop, one, guarded, on_failure, tg)


async def _accept_loop(
    listener: Accepting[_T],
    guarded: Callable[[_T], Coroutine[Any, Any, None]],
    on_failure: Callable[[BaseException], None],
    tg: anyio.abc.TaskGroup,
) -> None:
    while True:
        try:
            conn = await listener.accept()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return  # the listener itself was closed: the server is ending
        except OSError as exc:
            on_failure(exc)
            if exc.errno not in (errno.ECONNABORTED, errno.EINTR, errno.EPROTO):
                log.debug("accept failed: %s; retrying in %.1f s", exc, ACCEPT_BACKOFF)
                await anyio.sleep(ACCEPT_BACKOFF)
            continue
        tg.start_soon(guarded, conn)
