"""Cron specs as Go YoMo reads them (robfig/cron v3's standard parser) and their next times.

Go: sfn.go SetCronHandler uses ``cron.New()``, whose parser takes

* five fields, ``minute hour day-of-month month day-of-week``: ``*`` or ``?``,
  numbers, ``a-b`` ranges, ``/step``, comma lists, month and weekday names
  (``jan``, ``mon``; weekdays 0-6, Sunday 0);
* the descriptors ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``,
  ``@daily`` (``@midnight``), ``@hourly`` and ``@every <duration>`` with Go's
  duration syntax (``1h30m``, ``90s``, ``1.5h``, ``300ms``);
* a ``TZ=<zone>`` or ``CRON_TZ=<zone>`` prefix; otherwise local time (``$TZ``,
  else /etc/localtime), as Go's ``time.Local``.

Next times are computed the way robfig/cron does, so a day-of-month and a
day-of-week that are both restricted match either (as in classic cron), and a
time that a daylight-saving change skips is skipped. Where Go accepts a spec it
can never run (Go drops the parse error and the handler silently never runs)
this module raises ``ValueError`` instead; ``@every`` keeps its sub-second and
fractional durations where Go rounds to whole seconds (at least one).
"""

from __future__ import annotations

import datetime
import math
import os
import re
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from yomo.errors import ConfigError

__all__ = ["Schedule", "local_zone", "parse_duration", "parse_schedule"]

_STAR = 1 << 63
_EPOCH_DAY = datetime.date(1970, 1, 1).toordinal()
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_WEEKDAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
#: (low, high, names) of minute, hour, day of month, month, day of week (Go: spec.go bounds).
_FIELDS: tuple[tuple[str, int, int, dict[str, int] | None], ...] = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _WEEKDAYS),
)
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]+)")
_INT = re.compile(r"[+-]?[0-9]+")


class Schedule(Protocol):
    """When a cron handler runs."""

    def next_after(self, now: float) -> float | None:
        """The first run time (Unix seconds) after ``now``; None if there is none."""
        ...


def parse_duration(text: str) -> float:
    """A Go duration (``1h30m``, ``1.5s``, ``300ms``, ``-2m``) in seconds (Go: time.ParseDuration).

    Raises:
        ValueError: not a Go duration; the message says why.
    """
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        number, unit = match.groups()
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}")
        total += float(number) * _UNITS[unit]
        pos = match.end()
    return -total if text.startswith("-") else total


def local_zone() -> datetime.tzinfo:
    """The zone Go's ``time.Local`` would be: ``$TZ`` (empty: UTC), else /etc/localtime."""
    name = os.environ.get("TZ")
    if name is not None:
        name = name.removeprefix(":")
        if not name or name == "UTC":
            return datetime.timezone.utc
        try:
            return ZoneInfo(name) if not os.path.isabs(name) else _zone_file(name)
        except (ZoneInfoNotFoundError, OSError, ValueError):
            return datetime.timezone.utc  # Go falls back to UTC for a zone it cannot load
    try:
        return _zone_file("/etc/localtime")
    except (OSError, ValueError):
        return datetime.datetime.now().astimezone().tzinfo or datetime.timezone.utc


def _zone_file(path: str) -> ZoneInfo:
    with open(path, "rb") as f:
        return ZoneInfo.from_file(f)


def parse_schedule(spec: str, *, zone: datetime.tzinfo | None = None) -> Schedule:
    """The schedule of a cron ``spec``; ``zone`` replaces local time (not a ``TZ=`` prefix).

    Raises:
        ConfigError: ``yomo: bad cron spec '<spec>': <why>`` (a ValueError; Go's reason where it has one),
            also for specs Go accepts but can never run (``0 0 30 2 *``, ``@every 0``).
    """
    try:
        schedule = _parse(spec, zone)
        # every possible date occurs in 1970-1975 (1972 has a 29 February)
        if isinstance(schedule, _SpecSchedule) and schedule.next_after(0.0) is None:
            raise ValueError("it matches no date, so it would never run")
    except ValueError as exc:
        raise ConfigError(f"yomo: bad cron spec {spec!r}: {exc}") from exc
    return schedule


def _parse(spec: str, zone: datetime.tzinfo | None) -> Schedule:
    if not spec:
        raise ValueError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        head, sep, rest = spec.partition(" ")
        if not sep:
            raise ValueError("a time zone prefix needs a schedule after it: TZ=<zone> <schedule>")
        name = head.partition("=")[2]
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            hint = (
                "" if available_timezones() else " (no time zone database here: pip install tzdata)"
            )
            raise ValueError(f"unknown time zone {name!r}{hint}") from None
        spec = rest.strip()
    if zone is None:
        zone = local_zone()
    if spec.startswith("@"):
        return _descriptor(spec, zone)
    fields = spec.split()
    if len(fields) != 5:
        hint = " (minute hour day-of-month month day-of-week; no seconds)"
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}{hint}")
    minute, hour, dom, month, dow = (
        _field(text, *bounds) for text, bounds in zip(fields, _FIELDS, strict=True)
    )
    return _SpecSchedule(1, minute, hour, dom, month, dow, zone)


def _descriptor(spec: str, zone: datetime.tzinfo) -> Schedule:
    # Go: parser.go parseDescriptor: the first second, minute, hour, ... of each period
    days, months, weekdays = _all(1, 31), _all(1, 12), _all(0, 6)
    named = {  # minute, hour, day of month, month, day of week
        "@yearly": (1, 1, 1 << 1, 1 << 1, weekdays),
        "@annually": (1, 1, 1 << 1, 1 << 1, weekdays),
        "@monthly": (1, 1, 1 << 1, months, weekdays),
        "@weekly": (1, 1, days, months, 1 << 0),
        "@daily": (1, 1, days, months, weekdays),
        "@midnight": (1, 1, days, months, weekdays),
        "@hourly": (1, _all(0, 23), days, months, weekdays),
    }
    if spec in named:
        minute, hour, dom, month, dow = named[spec]
        return _SpecSchedule(1, minute, hour, dom, month, dow, zone)
    if spec.startswith("@every "):
        seconds = parse_duration(spec[len("@every ") :])
        if seconds <= 0:
            raise ValueError("the period must be positive")
        return _EverySchedule(seconds)
    raise ValueError(
        f"unrecognized descriptor {spec.split()[0]!r} (@yearly, @annually, @monthly, "
        "@weekly, @daily, @midnight, @hourly or @every <duration>)"
    )


def _field(text: str, name: str, low: int, high: int, names: dict[str, int] | None) -> int:
    """One field as a bit set (Go: parser.go getField); ``*`` also sets the star bit."""
    bits = 0
    for part in (p for p in text.split(",") if p):
        bits |= _range(part, name, low, high, names)
    return bits


def _range(expr: str, name: str, low: int, high: int, names: dict[str, int] | None) -> int:
    span, *steps = expr.split("/")
    ends = span.split("-")
    extra = 0
    if ends[0] in ("*", "?"):
        start, end, extra = low, high, _STAR
    else:
        start = _number(ends[0], names, name)
        if len(ends) == 1:
            end = start
        elif len(ends) == 2:
            end = _number(ends[1], names, name)
        else:
            raise ValueError(f"too many hyphens in {name} {expr!r}")
    step = 1
    if len(steps) == 1:
        step = _number(steps[0], None, name)
        if len(ends) == 1:
            end = high  # "N/step" means "N-high/step"
        if step > 1:
            extra = 0
    elif steps:
        raise ValueError(f"too many slashes in {name} {expr!r}")
    if start < low:
        raise ValueError(f"{name} {expr!r}: {start} is below the minimum {low}")
    if end > high:
        raise ValueError(f"{name} {expr!r}: {end} is above the maximum {high}")
    if start > end:
        raise ValueError(f"{name} {expr!r}: the range starts after its end")
    if step == 0:
        raise ValueError(f"{name} {expr!r}: the step must be positive")
    return _bits(start, end, step) | extra


def _number(text: str, names: dict[str, int] | None, name: str) -> int:
    if names is not None and text.lower() in names:
        return names[text.lower()]
    if not _INT.fullmatch(text):
        raise ValueError(f"{name}: {text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if value < 0:
        raise ValueError(f"{name}: negative number {value}")
    return value


def _bits(low: int, high: int, step: int) -> int:
    return sum(1 << i for i in range(low, high + 1, step))


def _all(low: int, high: int) -> int:
    return _bits(low, high, 1) | _STAR


@dataclass(frozen=True)
class _EverySchedule:
    """``@every <duration>`` (Go: constantdelay.go, without its rounding to whole seconds)."""

    seconds: float

    def next_after(self, now: float) -> float | None:
        return now + self.seconds


@dataclass(frozen=True)
class _Wall:
    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    weekday: int  # Sunday is 0, as in Go


@dataclass(frozen=True)
class _SpecSchedule:
    """Bit sets of allowed seconds, minutes, ... (Go: spec.go SpecSchedule)."""

    second: int
    minute: int
    hour: int
    dom: int
    month: int
    dow: int
    zone: datetime.tzinfo

    def _wall(self, t: int) -> _Wall:
        d = datetime.datetime.fromtimestamp(t, self.zone)
        return _Wall(d.year, d.month, d.day, d.hour, d.minute, d.second, d.isoweekday() % 7)

    def _offset(self, t: int) -> int:
        offset = datetime.datetime.fromtimestamp(t, self.zone).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def _date(self, year: int, month: int, day: int, hour: int, minute: int, second: int) -> int:
        """A wall-clock time in the zone, normalized (month 13, day 32, a skipped hour) as Go's
        time.Date does: the offset in force at the result, found in two lookups."""
        year += (month - 1) // 12
        month = (month - 1) % 12 + 1
        days = datetime.date(year, month, 1).toordinal() - _EPOCH_DAY + day - 1
        wall = days * 86400 + hour * 3600 + minute * 60 + second
        return wall - self._offset(wall - self._offset(wall))

    def _allows(self, field: str, w: _Wall) -> bool:
        if field != "day":
            return bool((getattr(self, field) >> getattr(w, field)) & 1)
        # both restricted: either matches; a star on either side: both must
        dom = (self.dom >> w.day) & 1
        dow = (self.dow >> w.weekday) & 1
        if self.dom & _STAR or self.dow & _STAR:
            return bool(dom and dow)
        return bool(dom or dow)

    def _truncate(self, t: int, w: _Wall, field: str) -> int:
        """The start of ``t``'s month, day or hour (wall clock) or minute (absolute), as Go."""
        if field == "month":
            return self._date(w.year, w.month, 1, 0, 0, 0)
        if field == "day":
            return self._date(w.year, w.month, w.day, 0, 0, 0)
        if field == "hour":
            return self._date(w.year, w.month, w.day, w.hour, 0, 0)
        return t - t % 60 if field == "minute" else t

    def _step(self, t: int, w: _Wall, field: str) -> int:
        """One month or day on (calendar, Go's AddDate), or one hour, minute or second."""
        if field == "month":
            return self._date(w.year, w.month + 1, w.day, w.hour, w.minute, w.second)
        if field == "day":
            t = self._date(w.year, w.month, w.day + 1, w.hour, w.minute, w.second)
            hour = self._wall(t).hour
            if hour != 0:  # a daylight-saving change moved midnight
                t += (24 - hour) * 3600 if hour > 12 else -hour * 3600
            return t
        return t + {"hour": 3600, "minute": 60}.get(field, 1)

    def _settle(self, field: str, t: int, w: _Wall, added: bool) -> tuple[int, _Wall, bool, bool]:
        """Move ``t`` on until ``field`` is allowed; the last item: it went round (start over)."""
        first = 1 if field in ("month", "day") else 0
        while not self._allows(field, w):
            if not added:
                added = True
                t = self._truncate(t, w, field)
                w = self._wall(t)
            t = self._step(t, w, field)
            w = self._wall(t)
            if getattr(w, field) == first:
                return t, w, added, True
        return t, w, added, False

    def next_after(self, now: float) -> float | None:
        # Go: spec.go SpecSchedule.Next: find the month, then the day, hour, minute and
        # second, starting over from the month whenever a field wraps around.
        t = math.floor(now) + 1
        added = False
        year_limit = self._wall(t).year + 5
        while True:
            w = self._wall(t)
            if w.year > year_limit:
                return None
            for field in ("month", "day", "hour", "minute", "second"):
                t, w, added, wrapped = self._settle(field, t, w, added)
                if wrapped:
                    break
            else:
                return float(t)
