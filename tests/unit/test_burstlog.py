"""BurstLog: per-client lines one by one, a burst summed up once a second."""

from __future__ import annotations

import asyncio
import logging

import pytest

from yomo.zipper.burstlog import MAX_REASONS, BurstLog


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_a_burst_past_the_limit_is_summed_up_by_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    now = [0.0]
    log = BurstLog(logging.getLogger("t.burst"), "disconnected", per_second=3, clock=lambda: now[0])
    for i in range(10):
        log.line(lambda i=i: f"client {i}", "gone" if i % 2 else "idle")
    assert _lines(caplog) == [
        "disconnected: client 0: idle",
        "disconnected: client 1: gone",
        "disconnected: client 2: idle",
    ]  # no running loop here: the rest are summed up when the next second begins
    caplog.clear()
    now[0] = 1.5  # a new second: lines one by one again
    log.line(lambda: "late", "bye")
    assert _lines(caplog) == [
        "disconnected: 7 more clients, not logged one by one (over 3 a second): gone (4), idle (3)",
        "disconnected: late: bye",
    ]


async def test_the_summary_comes_at_the_end_of_the_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    log = BurstLog(logging.getLogger("t.burst2"), "disconnected", per_second=2)
    for i in range(2 + 1000 + MAX_REASONS + 3):
        log.line(
            lambda i=i: f"c{i}", f"reason {i % (MAX_REASONS + 3)}" if i > 1000 else "mass close"
        )
    assert len(caplog.records) == 2  # the rest is held for the summary
    await asyncio.sleep(1.1)
    last = _lines(caplog)[-1]
    assert last.startswith(
        "disconnected: 1,011 more clients, not logged one by one (over 2 a second): "
    )
    assert "mass close (999)" in last and "other reasons (" in last
    log.flush()  # nothing held: no second summary
    assert len(caplog.records) == 3
