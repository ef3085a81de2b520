"""Small helpers every QUIC backend module shares: close texts, keep-alive, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

from .settings import CLOSE_CODE, QuicSettings

__all__ = ["describe_code", "in_background", "keep_alive_interval", "retrieve"]


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
