"""A source's numbered frames written at a pace, for the crash and reconnect tests."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["PacedWriter"]


class PacedWriter:
    """Writes ``b"<n>"`` on one tag, ``n`` counting on across calls from 0."""

    def __init__(self, source: Any, tag: int, pause: float = 0.002) -> None:
        self.source = source
        self.tag = tag
        self.pause = pause
        self.n = 0
        """Frames written so far (the next one's number)."""

    async def write(self, count: int, *, pause: float | None = None) -> None:
        """Write ``count`` frames, sleeping ``pause`` (default: the writer's) after each.

        ``pause=0`` writes them back to back: frames meant to go into a dead zipper
        must all be written before the source notices it (0.8 s), or the later writes
        wait for a zipper the test restarts only after them.
        """
        wait = self.pause if pause is None else pause
        for _ in range(count):
            await self.source.write(self.tag, b"%d" % self.n)
            self.n += 1
            if wait:
                await asyncio.sleep(wait)
