"""The one place where a QUIC library's errors become yomo errors.

Modelled on httpx's ``map_httpcore_exceptions``: every call into qh3, aioquic
or aiopquic that can fail runs inside ``map_quic_errors``, which turns what the
library raised into the yomo error the caller names, with the library's error
as ``__cause__``. Nothing else in yomo catches a QUIC library's exceptions.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Literal, NoReturn

from yomo.errors import YomoError

__all__ = ["describe", "ignore_quic_errors", "map_quic_errors", "raise_mapped"]

log = logging.getLogger("yomo.transport")


def describe(exc: BaseException) -> str:
    """A short text for a lower-layer error: its message, else its type's name."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, (asyncio.TimeoutError, builtins.TimeoutError)) and not str(exc):
        return "timed out"
    return str(exc) or type(exc).__name__


class map_quic_errors:
    """Run QUIC-library calls; whatever they raise becomes ``error(describe(exc))``.

    ``error`` builds the yomo error from the library's text (a ``ConnectError``
    for a dial, a ``ConnectionClosedError`` for a write on a dead connection, a
    ``TransportError`` for a socket that cannot be bound). yomo errors and
    non-``Exception`` signals (cancellation, KeyboardInterrupt) pass through
    unchanged; the cause is always chained. A class, not a generator: it wraps
    every frame written, so it must cost little.
    """

    __slots__ = ("_error",)

    def __init__(self, error: Callable[[str], YomoError]) -> None:
        self._error = error

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is None or not isinstance(exc, Exception):
            return False
        raise_mapped(self._error, exc)


def raise_mapped(error: Callable[[str], YomoError], exc: Exception) -> NoReturn:
    """Raise what ``exc``, raised by a QUIC library, becomes: ``error(describe(exc))``.

    ``map_quic_errors`` in one function, for the per-frame write path, which calls it
    from a plain ``except Exception`` (a ``with`` costs ~0.2 us per frame there).
    """
    if isinstance(exc, YomoError):
        raise exc
    # The boundary itself: the libraries raise builtins (ConnectionError, OSError,
    # RuntimeError, ValueError, AssertionError, BufferError) and their own
    # QuicConnectionError; here each one means the QUIC connection or socket failed.
    raise error(describe(exc)) from exc


@contextlib.contextmanager
def ignore_quic_errors() -> Iterator[None]:
    """Run a best-effort QUIC-library call (a PING, a close, a statistic); failures are ignored.

    For calls whose failure changes nothing: the connection is closing or gone,
    and its close is reported on its own path.
    """
    try:
        yield
    # The boundary, for best-effort calls: whatever the library raises here (see
    # ``map_quic_errors``) means its connection is already gone.
    except Exception:
        log.debug("QUIC library call failed (ignored)", exc_info=True)
