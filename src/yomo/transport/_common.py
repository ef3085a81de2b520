"""Small helpers every QUIC backend module shares: close texts, keep-alive, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from .settings import CLOSE_CODE, QuicSettings

__all__ = ["describe_code", "in_background", "keep_alive_interval", "retrieve", "within"]


def describe_code(code: int) -> str:
    """The close reason shown for a QUIC error code that came without a reason phrase."""
    if code == 0:
        return "connection closed"
    if code == CLOSE_CODE:
        return "closed by peer"
    return f"connection closed with error code {code:#x}"


def keep_alive_interval(settings: QuicSettings) -> float:
    """Seconds between keep-alive PINGs: ``keep_alive``, at most a third of the idle timeout."""
    return min(settings.keep_alive, settings.idle_timeout / 3)


def retrieve(future: asyncio.Future[Any]) -> None:
    """Done callback that marks a future's exception as retrieved (asyncio stays quiet)."""
    if not future.cancelled():
        future.exception()


_background: set[asyncio.Task[Any]] = set()


def in_background(coro: Awaitable[Any], timeout: float) -> None:
    """Run cleanup ``coro`` without waiting for it, bounded by ``timeout``, errors ignored."""

    async def run() -> None:
        # cleanup of a connection that is already gone: nothing to report, whatever it raises
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(coro, timeout)

    task = asyncio.get_running_loop().create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


async def within(
    task: asyncio.Future[Any],
    timeout: float,
    *,
    answered: Callable[[], bool] | None = None,
    grace: float = 0.0,
) -> Any:
    """``task``'s result if it is done within ``timeout`` s; else raise ``TimeoutError`` at once.

    With ``answered``: when ``timeout`` is up but ``answered()`` is true (the peer
    is talking, only slowly), wait until ``grace`` s after the start instead.
    Unlike ``asyncio.wait_for``, a task that times out (or whose waiter is
    cancelled) is not waited for: qh3's and aioquic's ``connect`` wait out the
    closing period of the abandoned connection (~2 s) before they return, which
    held a redial to a restarted zipper back by that much. The task is cancelled
    and its cleanup goes on in the background (bounded, errors ignored).
    """
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done and grace > timeout and answered is not None and answered():
            done, _ = await asyncio.wait({task}, timeout=grace - timeout)
    except BaseException:
        task.cancel()
        in_background(task, 3.0)
        raise
    if not done:
        task.cancel()
        in_background(task, 3.0)
        raise asyncio.TimeoutError
    return task.result()
