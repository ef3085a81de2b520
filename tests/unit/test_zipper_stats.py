"""The zipper's counters: the per-tag bound, the snapshot, and the log lines made from it."""

from __future__ import annotations

import logging

import pytest

from yomo.zipper.stats import StatsWatcher, ZipperStats


def _stats_source(stats: ZipperStats, connections: dict[str, int]):
    return lambda: {"connections": connections, **stats.snapshot()}


def test_tags_past_the_bound_are_counted_together() -> None:
    stats = ZipperStats(max_tags=2)
    for tag in (1, 2, 3, 4, 1):
        counters = stats.tag(tag)
        counters.frames_in += 1
        counters.bytes_in += 10
    snap = stats.snapshot()
    assert sorted(snap["tags"]) == [1, 2]
    assert snap["tags"][1]["frames_in"] == 2
    assert snap["other_tags"]["frames_in"] == 2
    assert snap["frames_in"] == 5 and snap["bytes_in"] == 50
    assert snap["max_tag_stats"] == 2
    assert len(stats.tags) == 2  # memory stays bounded however many tags come


def test_rejections_by_reason() -> None:
    stats = ZipperStats()
    stats.reject("auth")
    stats.reject("auth")
    stats.reject("version")
    snap = stats.snapshot()
    assert snap["rejections"] == 3 and snap["auth_failures"] == 2
    assert snap["rejections_by_reason"]["version"] == 1
    assert snap["rejections_by_reason"]["handshake_timeout"] == 0


def test_summary_line_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    stats = ZipperStats()
    conns = {"Source": 1, "StreamFunction": 2, "UpstreamZipper": 0}
    log = logging.getLogger("test.stats")
    start = 1000.0  # the clock is a parameter
    watcher = StatsWatcher(_stats_source(stats, conns), log, summary_interval=10, now=start)
    stats.tag(0x33).frames_in += 500
    stats.tag(0x33).frames_out += 250
    stats.drops += 3
    with caplog.at_level(logging.INFO, logger="test.stats"):
        watcher.tick(start + 5)  # not due yet
        assert not caplog.records
        watcher.tick(start + 10)
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "stats: 3 connections (1 Source, 2 StreamFunction), in 50.0 frames/s, "
        "out 25.0 frames/s, 3 dropped, 0 unobserved"
    )


def test_unobserved_tags_warned_in_hex_and_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    stats = ZipperStats()
    log = logging.getLogger("test.unobserved")
    t = 5000.0
    watcher = StatsWatcher(
        _stats_source(stats, {}), log, summary_interval=0, warn_interval=10, now=t
    )
    with caplog.at_level(logging.WARNING, logger="test.unobserved"):
        watcher.tick(t)
        assert not caplog.records  # nothing unobserved yet
        for tag in (0x34, 0x34, 0x1F00):
            stats.tag(tag).unobserved += 1
            stats.unobserved += 1
        watcher.tick(t + 1)
        assert len(caplog.records) == 1
        first = caplog.records[0].getMessage()
        assert first.startswith("3 frame(s) on tags no stream function observes: 0x34, 0x1f00")
        stats.tag(0x35).unobserved += 1
        stats.unobserved += 1
        watcher.tick(t + 2)  # within 10 s of the last warning: quiet
        assert len(caplog.records) == 1
        watcher.tick(t + 11.5)
        assert len(caplog.records) == 2
        assert (
            caplog.records[1]
            .getMessage()
            .startswith("1 frame(s) on tags no stream function observes: 0x35 ")
        )
        watcher.tick(t + 30)  # nothing new: no warning
        assert len(caplog.records) == 2
