"""A bounded history of the zipper's throughput, for the live page's chart and rates.

Sampled once a second from ``stats()``; keeps the last :data:`DEFAULT_WINDOW`
seconds. The newest interval also gives per-tag rates.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..stats import format_tag

__all__ = ["DEFAULT_WINDOW", "History"]

#: Seconds of history kept (one point a second).
DEFAULT_WINDOW = 300

_TOTALS = ("frames_in", "frames_out", "bytes_in", "bytes_out", "drops", "unobserved")
_TAG_RATES = ("frames_in", "frames_out", "bytes_in", "bytes_out")


class History:
    """Rates between successive snapshots, at most ``window`` points."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self.window = window
        self.points: deque[dict[str, float]] = deque(maxlen=window)
        self.tag_rates: dict[str, dict[str, float]] = {}
        self._last: Mapping[str, Any] | None = None
        self._last_at = 0.0

    def sample(self, stats: Mapping[str, Any], now: float | None = None) -> None:
        """Add the rates since the previous sample (the first sample only sets the base)."""
        now = time.time() if now is None else now
        last, last_at = self._last, self._last_at
        self._last, self._last_at = stats, now
        if last is None or now <= last_at:
            return
        seconds = now - last_at
        point: dict[str, float] = {"t": round(now, 3)}
        for key in _TOTALS:
            point[key] = max(0.0, (stats[key] - last[key]) / seconds)
        self.points.append(point)
        rates: dict[str, dict[str, float]] = {}
        before = last["tags"]
        for tag, counters in stats["tags"].items():
            prev = before.get(tag)
            rates[format_tag(tag)] = {
                key: max(0.0, (counters[key] - (prev[key] if prev else 0)) / seconds)
                for key in _TAG_RATES
            }
        other, prev_other = stats["other_tags"], last["other_tags"]
        if any(other.values()):
            rates["other"] = {
                key: max(0.0, (other[key] - prev_other[key]) / seconds) for key in _TAG_RATES
            }
        self.tag_rates = rates

    def as_json(self) -> dict[str, Any]:
        """What ``/api/history`` returns."""
        return {
            "interval": 1.0,
            "window": self.window,
            "points": list(self.points),
            "tag_rates": self.tag_rates,
        }
