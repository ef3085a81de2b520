"""Per-client log lines that a burst turns into one summary a second.

The zipper logs every disconnect (as Go does), but 10,000 clients closing at once
wrote 10,000 lines in a few seconds, and formatting and writing them was most of the
Python work of the burst (issue 17's mass close), while new handshakes waited behind
it on the same event loop. Up to ``per_second`` lines a second are written one by
one; past that the rest are counted by reason and summed up in one line at the end of
the second (or, without a running event loop, with the next second's first line).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

__all__ = ["BurstLog"]

#: Distinct reasons a summary line names; the rest are counted as "other reasons".
MAX_REASONS = 8


class BurstLog:
    """INFO lines about one kind of event, at most ``per_second`` of them a second."""

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        per_second: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._what = what
        self.per_second = per_second
        self._clock = clock
        self._second = -1.0  # when the current second began
        self._written = 0  # lines written in it
        self._held: dict[str, int] = {}  # reason -> events summed up, not written
        self._summary: asyncio.TimerHandle | None = None

    def line(self, describe: Callable[[], str], reason: str) -> None:
        """Log ``<what>: <describe()>: <reason>``, or count it for the second's summary."""
        now = self._clock()
        if now - self._second >= 1.0:
            if self._held:
                self.flush()
            self._second = now
            self._written = 0
        if self._written < self.per_second:
            self._written += 1
            self._log.info("%s: %s: %s", self._what, describe(), reason)
            return
        held = self._held
        key = reason if reason in held or len(held) < MAX_REASONS else "other reasons"
        held[key] = held.get(key, 0) + 1
        if self._summary is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: summed up by the next second's first line
                return
            self._summary = loop.call_at(loop.time() + 1.0 - (now - self._second), self.flush)

    def flush(self) -> None:
        """Write the summary of the events counted but not written (if any)."""
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        held, self._held = self._held, {}
        if held:
            reasons = ", ".join(f"{reason} ({n:,})" for reason, n in held.items())
            self._log.info(
                "%s: %s more clients, not logged one by one (over %d a second): %s",
                self._what,
                f"{sum(held.values()):,}",
                self.per_second,
                reasons,
            )
