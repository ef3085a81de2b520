"""Runs a stream function's cron handler on its schedule.

Go: sfn.go Connect (the ``cron.New()`` job). Each run gets fresh metadata (the
function's id as source id, a new tid) and, with tracing on, a span named after
the function with ``sfn_handler_type`` ``corn_handler`` (Go's spelling, so one
dashboard query finds both); its trace ids travel on what the run writes.

Unlike Go, runs never overlap: a run that takes longer than the period delays
the next, and the times it missed are skipped (Go starts each run in its own
goroutine, so slow runs pile up).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from yomo.wire import SOURCE_ID, TID

from .context import CronContext, build_frame
from .schedule import Schedule, parse_schedule
from .tracing import CRON_HANDLER, Tracing

__all__ = ["CronRunner", "parse_schedule"]


class CronRunner:
    """Calls ``fn(CronContext)`` at each time of ``schedule``, until cancelled.

    Args:
        name: the function's name (span name, logs).
        schedule: when to run (``parse_schedule(spec)``).
        fn: the handler, plain (run on a worker thread) or ``async def``.
        tracing: the function's tracing.
        client_id: the function's client id, the source id of what a run writes.
        new_id: a fresh transaction id.
        send: writes one encoded frame from the loop.
        send_blocking: writes one encoded frame from a worker thread.
        report: receives what a run raised; the schedule goes on.
    """

    def __init__(
        self,
        name: str,
        schedule: Schedule,
        fn: Callable[[CronContext], Any],
        *,
        tracing: Tracing,
        client_id: str,
        new_id: Callable[[], str],
        send: Callable[[bytes], Awaitable[None]],
        send_blocking: Callable[[bytes], None],
        report: Callable[[BaseException], None],
        log: logging.Logger,
    ) -> None:
        self.name = name
        self.schedule = schedule
        self.fn = fn
        self.runs = 0
        self._is_async = inspect.iscoroutinefunction(fn)
        self._tracing = tracing
        self._client_id = client_id
        self._new_id = new_id
        self._send = send
        self._send_blocking = send_blocking
        self._report = report
        self._log = log

    async def run(self) -> None:
        """Run at every scheduled time until cancelled (or the schedule has no more times)."""
        due = self.schedule.next_after(time.time())
        while due is not None:
            await asyncio.sleep(max(0.0, due - time.time()))
            await self.run_once()
            now = time.time()
            after = self.schedule.next_after(due)
            if after is not None and after <= now:  # this run overran: skip what it missed
                after = self.schedule.next_after(now)
            due = after
        self._log.warning("cron handler of %r: its schedule has no more run times", self.name)

    async def run_once(self) -> None:
        """One run: fresh metadata, a span, the handler; an exception goes to ``report``."""
        self.runs += 1
        md = {SOURCE_ID: self._client_id, TID: self._new_id()}
        try:
            with self._tracing.span(self.name, md, sfn_handler_type=CRON_HANDLER):
                if self._is_async:
                    await self.fn(CronContext(md, self._write_async))
                else:
                    await asyncio.to_thread(self.fn, CronContext(md, self._write_blocking))
        # Handler isolation: a failing cron job is reported and runs again next time.
        except Exception as exc:
            self._report(exc)

    async def _write_async(self, tag: int, data: Any, md: dict[str, str]) -> None:
        frame = build_frame(tag, data, md)
        if frame is not None:
            await self._send(frame)

    def _write_blocking(self, tag: int, data: Any, md: dict[str, str]) -> None:
        frame = build_frame(tag, data, md)
        if frame is not None:
            self._send_blocking(frame)
