"""SIGINT and SIGTERM end a client's ``wait()``, as they end Go's ``Client.Wait``.

Go: core/client.go Wait (signal.Notify for SIGINT and SIGTERM, then the client
closes). Python delivers signals to the main thread only, so ``wait()`` takes
them there while it waits, and only where nobody else handles them: the
default handlers (Ctrl-C's KeyboardInterrupt, SIGTERM's exit) and
``asyncio.run``'s own Ctrl-C handler. A program that installed handlers of its
own (``loop.add_signal_handler``, ``signal.signal``; ``yomo run`` does) keeps
them, and the previous handlers are back when ``wait()`` returns. Like Go's,
one signal reaches every client waiting at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

__all__ = [
    "STOP_SIGNALS",
    "add_loop_signals",
    "remove_loop_signals",
    "stop_signals",
    "wait_on_signals",
    "wait_or_close",
]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

SignalCallback = Callable[[str], None]
_callbacks: list[SignalCallback] = []
_previous: dict[signal.Signals, Any] = {}


def _free(handler: Any) -> bool:
    """True for a handler nobody chose: the default ones, or asyncio.run's Ctrl-C handler."""
    if handler in (signal.SIG_DFL, signal.default_int_handler):
        return True
    func = getattr(handler, "func", None)  # asyncio.Runner: partial(self._on_sigint, ...)
    return (
        isinstance(handler, functools.partial)
        and getattr(func, "__name__", "") == "_on_sigint"
        and type(getattr(func, "__self__", None)).__name__ == "Runner"
    )


def _dispatch(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    for callback in list(_callbacks):
        callback(name)


def add_loop_signals(
    loop: asyncio.AbstractEventLoop, callback: SignalCallback
) -> list[signal.Signals]:
    """Call ``callback(signal name)`` on SIGINT and SIGTERM, as the loop's own handlers
    (the CLI's commands); returns those installed, for ``remove_loop_signals``."""
    installed = []
    for sig in STOP_SIGNALS:
        try:
            loop.add_signal_handler(sig, callback, sig.name)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            continue
        installed.append(sig)
    return installed


def remove_loop_signals(loop: asyncio.AbstractEventLoop, installed: list[signal.Signals]) -> None:
    """Undo ``add_loop_signals``."""
    for sig in installed:
        loop.remove_signal_handler(sig)


@contextlib.contextmanager
def stop_signals(callback: SignalCallback) -> Iterator[bool]:
    """While inside, SIGINT and SIGTERM call ``callback(signal name)``, where they are free.

    Yields whether any signal is taken (never off the main thread).
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    _callbacks.append(callback)
    if len(_callbacks) == 1:
        for sig in STOP_SIGNALS:
            handler = signal.getsignal(sig)
            if _free(handler):
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(sig, _dispatch)
                    _previous[sig] = handler
    try:
        yield bool(_previous)
    finally:
        _callbacks.remove(callback)
        if not _callbacks:
            for sig, handler in _previous.items():
                signal.signal(sig, handler)
            _previous.clear()


async def wait_or_close(
    closed: Awaitable[None],
    close: Callable[[], Awaitable[Any]],
    stop: asyncio.Event,
    received: list[str],
    log: logging.Logger,
    who: str,
) -> None:
    """Wait for ``closed``; if ``stop`` is set first (a signal came), ``close()`` and return."""
    ending = asyncio.ensure_future(closed)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({ending, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        left = [task for task in (ending, stopping) if not task.done()]
        for task in left:
            task.cancel()
        if left:  # let them end here: a pending task left behind is an error at exit
            await asyncio.wait(left)
    if not ending.cancelled():
        ending.result()
        return
    log.info("%s: received %s, closing", who, received[0] if received else "a signal")
    await close()


async def wait_on_signals(
    closed: Awaitable[None], close: Callable[[], Awaitable[Any]], log: logging.Logger, who: str
) -> None:
    """``wait()`` of the asyncio clients: until ``closed``, or a signal closes the client."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(name: str) -> None:
        received.append(name)
        loop.call_soon_threadsafe(stop.set)

    with stop_signals(on_signal):
        await wait_or_close(closed, close, stop, received, log, who)
