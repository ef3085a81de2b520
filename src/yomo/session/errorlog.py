"""The default error handler's log: a traceback once, then repeats counted, not repeated."""

from __future__ import annotations

import logging
import time
from typing import Any

__all__ = ["RepeatedErrorLog"]


class RepeatedErrorLog:
    """Logs errors the way a person can read them: a handler's traceback the first time,
    then the same error (type, message and place) only counted, and reported as
    "... repeated N times" when another error comes or ``every`` seconds have passed."""

    def __init__(self, log: logging.Logger, every: float = 10.0) -> None:
        self.log = log
        self.every = every
        self._key: tuple[Any, ...] | None = None
        self._what = ""
        self._repeats = 0
        self._since = 0.0

    def report(self, who: str, error: BaseException) -> None:
        """Log ``error`` of ``who`` (its cause's traceback when it wraps a handler's error)."""
        cause = getattr(error, "error", None)
        inner = cause if isinstance(cause, BaseException) else None
        key = _error_key(inner or error)
        now = time.monotonic()
        if key == self._key:
            self._repeats += 1
            if now - self._since >= self.every:
                self.flush(now)
            return
        self.flush(now)
        self._key, self._what, self._since = key, f"{who}: {error}", now
        if inner is not None and inner.__traceback__ is not None:
            exc_info = (type(inner), inner, inner.__traceback__)
            self.log.error("%s", self._what, exc_info=exc_info)
        else:
            self.log.error("%s", self._what)

    def flush(self, now: float | None = None) -> None:
        """Report the repeats counted so far (when the client closes, for instance)."""
        now = time.monotonic() if now is None else now
        if self._repeats:
            self.log.error("%s ... repeated %d times", self._what, self._repeats)
        self._repeats = 0
        self._since = now


def _error_key(error: BaseException) -> tuple[Any, ...]:
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = (tb.tb_frame.f_code.co_filename, tb.tb_lineno) if tb is not None else None
    return (type(error), str(error)[:200], where)
