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

from yomo.errors import YomoError

__all__ = ["describe", "ignore_quic_errors", "map_quic_errors"]

log = logging.getLogger("yomo.transport")


def describe(exc: BaseException) -> str:
    """A short text for a lower-layer error: its message, else its type's name."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, (asyncio.TimeoutError, builtins.TimeoutError)) and not str(exc):
        return "timed out"
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def map_quic_errors(error: Callable[[str], YomoError]) -> Iterator[None]:
    """Run QUIC-library calls; whatever they raise becomes ``error(describe(exc))``.

    ``error`` builds the yomo error from the library's text (a ``ConnectError``
    for a dial, a ``ConnectionClosedError`` for a write on a dead connection, a
    ``TransportError`` for a socket that cannot be bound). yomo errors pass
    through unchanged; the cause is always chained.
    """
    try:
        yield
    except YomoError:
        raise
    # The boundary itself: the libraries raise builtins (ConnectionError, OSError,
    # RuntimeError, ValueError, AssertionError, BufferError) and their own
    # QuicConnectionError; here each one means the QUIC connection or socket failed.
    except Exception as exc:
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
