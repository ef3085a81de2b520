"""The zipper's counters, their snapshot, and what the logs say about them.

The data path keeps plain integers (``ZipperStats`` and the per-tag
``TagCounters``); everything that reads them (``Zipper.stats()``, the monitor,
the periodic log lines) works on snapshots, so a reader never slows routing
and never depends on which data path counts. Per-tag counters are bounded:
after ``max_tags`` distinct tags, further tags share one ``other`` bucket, so a
client writing random tags cannot grow the zipper's memory or a scraper's
label set.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "DEFAULT_MAX_TAG_STATS",
    "REJECTION_REASONS",
    "ConnectionInfo",
    "StatsWatcher",
    "TagCounters",
    "ZipperStats",
    "format_tag",
]

#: Distinct tags counted one by one; later tags are added up in ``other_tags``.
DEFAULT_MAX_TAG_STATS = 256

#: Why a connection was refused; the keys of ``stats()["rejections_by_reason"]``.
REJECTION_REASONS = (
    "auth",
    "auth_throttled",
    "max_connections",
    "version",
    "handshake_timeout",
    "unexpected_frame",
    "client_type",
    "function_definition",
    "duplicate_function",
    "redirect",  # a version negotiator or connector sent the client elsewhere (ConnectTo)
    "connector",  # the connector refused to store the connection
)


def format_tag(tag: int) -> str:
    """A tag as YoMo people write it: ``0x33``."""
    return f"0x{tag:x}"


@dataclass
class TagCounters:
    """Frames and bytes of one tag (or of the ``other`` bucket)."""

    frames_in: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    unobserved: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_COUNTER_NAMES = tuple(f.name for f in fields(TagCounters))


@dataclass
class ZipperStats:
    """Counters since start, written by the data path and the handshake."""

    max_tags: int = DEFAULT_MAX_TAG_STATS
    started: float = field(default_factory=time.time)
    handshakes: int = 0
    rejections: int = 0
    rejections_by_reason: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(REJECTION_REASONS, 0)
    )
    protocol_errors: int = 0
    dead_connections: int = 0
    """Functions closed because they stopped answering while producers waited for them."""
    drops: int = 0
    unobserved: int = 0
    tags: dict[int, TagCounters] = field(default_factory=dict)
    other: TagCounters = field(default_factory=TagCounters)

    def tag(self, tag: int) -> TagCounters:
        """The counters of ``tag``; the shared ``other`` bucket once ``max_tags`` are counted."""
        counters = self.tags.get(tag)
        if counters is None:
            if len(self.tags) >= self.max_tags:
                return self.other
            counters = self.tags[tag] = TagCounters()
        return counters

    def with_native(self, native: Mapping[str, Any]) -> ZipperStats:
        """These counters (the handshake's) plus the native data path's ``stats()``
        (read on demand from plain integers; the same per-tag bound applies)."""
        merged = ZipperStats(max_tags=self.max_tags, started=self.started)
        merged.handshakes = self.handshakes
        merged.dead_connections = self.dead_connections
        merged.rejections = self.rejections + native["rejections"]
        merged.rejections_by_reason = dict(self.rejections_by_reason)
        merged.rejections_by_reason["handshake_timeout"] += native["rejections"]
        merged.protocol_errors = self.protocol_errors + native["protocol_errors"]
        merged.drops = native["drops"]
        merged.unobserved = native["unobserved"]
        for tag, row in sorted(native["tags"].items()):
            counters = merged.tag(tag)
            for name, value in zip(_COUNTER_NAMES, row, strict=True):
                setattr(counters, name, getattr(counters, name) + value)
        return merged

    def reject(self, reason: str) -> None:
        """Count a refused connection under one of :data:`REJECTION_REASONS`."""
        self.rejections += 1
        self.rejections_by_reason[reason] = self.rejections_by_reason.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain data (tags keyed by int, totals over every tag)."""
        totals = TagCounters()
        for counters in (*self.tags.values(), self.other):
            for name in _COUNTER_NAMES:
                setattr(totals, name, getattr(totals, name) + getattr(counters, name))
        return {
            "uptime": time.time() - self.started,
            "handshakes": self.handshakes,
            "rejections": self.rejections,
            "rejections_by_reason": dict(self.rejections_by_reason),
            "auth_failures": self.rejections_by_reason.get("auth", 0),
            "auth_throttled": self.rejections_by_reason.get("auth_throttled", 0),
            "refused_connections": self.rejections_by_reason.get("max_connections", 0),
            "handshake_timeouts": self.rejections_by_reason.get("handshake_timeout", 0),
            "dead_connections": self.dead_connections,
            "protocol_errors": self.protocol_errors,
            "drops": self.drops,
            "unobserved": self.unobserved,
            **{name: getattr(totals, name) for name in _COUNTER_NAMES[:4]},
            "tags": {tag: c.as_dict() for tag, c in sorted(self.tags.items())},
            "other_tags": self.other.as_dict(),
            "max_tag_stats": self.max_tags,
        }


@dataclass(frozen=True)
class ConnectionInfo:
    """What the zipper knows of one registered connection."""

    number: int
    name: str
    client_id: str
    client_type: str
    observed_tags: tuple[int, ...]
    wanted_target: str
    remote_address: tuple[str, int]
    frames_in: int
    frames_out: int
    dropped: int
    send_backlog: int = 0
    """Bytes queued for this client that are not on the wire yet."""
    recv_backlog: int = 0
    """Bytes of frames received from this client that wait to be routed."""
    connected_at: float = 0.0
    """When the handshake was accepted (``time.time()``)."""


class StatsWatcher:
    """Turns successive ``stats()`` snapshots into log lines; ticked by the zipper.

    - every ``summary_interval`` seconds (0: never), one INFO line: connections,
      frames/s in and out, drops and unobserved frames in the interval;
    - frames on tags nobody observes: a WARNING naming the tags in hex, at most
      once per ``warn_interval`` seconds.
    """

    def __init__(
        self,
        stats: Callable[[], Mapping[str, Any]],
        log: logging.Logger,
        *,
        summary_interval: float,
        warn_interval: float = 10.0,
        now: float | None = None,
    ) -> None:
        self._stats = stats
        self.log = log
        self.summary_interval = summary_interval
        self.warn_interval = warn_interval
        first = stats()
        now = time.monotonic() if now is None else now
        self._summary_at = now
        self._summary_base = first
        self._warned_at = -warn_interval
        self._unobserved_base = _unobserved_by_tag(first)
        self._unobserved_total = first["unobserved"]

    def tick(self, now: float | None = None) -> None:
        """Log what is due at ``now`` (``time.monotonic()`` by default)."""
        now = time.monotonic() if now is None else now
        warn_due = now - self._warned_at >= self.warn_interval
        summary_due = self.summary_interval > 0 and now - self._summary_at >= self.summary_interval
        if not (warn_due or summary_due):
            return
        current = self._stats()
        if warn_due and current["unobserved"] != self._unobserved_total:
            self._warn_unobserved(current)
            self._warned_at = now
        if summary_due:
            self.log.info("%s", self.summary(current, now - self._summary_at))
            self._summary_at = now
            self._summary_base = current

    def summary(self, current: Mapping[str, Any], seconds: float) -> str:
        """The INFO line for the ``seconds`` since the previous one."""
        base = self._summary_base
        seconds = max(seconds, 1e-9)
        by_type = current["connections"]
        total = sum(by_type.values())
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(by_type.items()) if n)
        rate_in = (current["frames_in"] - base["frames_in"]) / seconds
        rate_out = (current["frames_out"] - base["frames_out"]) / seconds
        line = (
            f"stats: {total} connection{'s' if total != 1 else ''}"
            f"{f' ({kinds})' if kinds else ''}, "
            f"in {rate_in:.1f} frames/s, out {rate_out:.1f} frames/s, "
            f"{current['drops'] - base['drops']} dropped, "
            f"{current['unobserved'] - base['unobserved']} unobserved"
        )
        mesh = current.get("mesh")
        if mesh:
            up = sum(1 for link in mesh.values() if link.get("state") == "up")
            line += f", mesh {up}/{len(mesh)} up"
        return line

    def _warn_unobserved(self, current: Mapping[str, Any]) -> None:
        now_by_tag = _unobserved_by_tag(current)
        grew = {
            tag: n - self._unobserved_base.get(tag, 0)
            for tag, n in now_by_tag.items()
            if n > self._unobserved_base.get(tag, 0)
        }
        frames = current["unobserved"] - self._unobserved_total
        shown = sorted(grew, key=lambda t: -grew[t])[:8]
        names = ", ".join(format_tag(t) if t >= 0 else "other tags" for t in shown)
        more = f" and {len(grew) - len(shown)} more" if len(grew) > len(shown) else ""
        self.log.warning(
            "%d frame(s) on tags no stream function observes: %s%s (is the function "
            "running and observing the tag? this warning repeats at most every %g s)",
            frames,
            names or "unknown tags",
            more,
            self.warn_interval,
        )
        self._unobserved_base = now_by_tag
        self._unobserved_total = current["unobserved"]


def _unobserved_by_tag(snapshot: Mapping[str, Any]) -> dict[int, int]:
    counts = {tag: c["unobserved"] for tag, c in snapshot["tags"].items() if c["unobserved"]}
    other = snapshot.get("other_tags", {}).get("unobserved", 0)
    if other:
        counts[-1] = other
    return counts
