"""Cron specs as Go's sfn.SetCronHandler reads them (robfig/cron v3, standard parser).

The next times below were printed by Go itself (``TZ=America/New_York parity cron``,
tests/interop/go/cmd/parity), from 2024-03-09, a day before daylight saving starts
(a 02:00 run is skipped that night, as Go skips it), and from 2024-10-27, a week before
it ends. tests/interop/test_parity.py compares many more against the live Go binary.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from yomo.client.schedule import parse_duration, parse_schedule

NEW_YORK = ZoneInfo("America/New_York")

GO_ROWS = [
    ("@every 1h30m", 1710000000, [1710005400, 1710010800, 1710016200]),
    ("@hourly", 1710000000, [1710003600, 1710007200, 1710010800]),
    ("@daily", 1710000000, [1710046800, 1710129600, 1710216000]),
    ("@weekly", 1710000000, [1710046800, 1710648000, 1711252800]),
    ("@monthly", 1710000000, [1711944000, 1714536000, 1717214400]),
    ("@yearly", 1710000000, [1735707600, 1767243600, 1798779600]),
    ("*/15 9-17 * * mon-fri", 1710000000, [1710162000, 1710162900, 1710163800]),
    ("TZ=Asia/Tokyo 0 9 * * *", 1710000000, [1710028800, 1710115200, 1710201600]),
    ("0 2 * * *", 1710000000, [1710136800, 1710223200, 1710309600]),
    ("30 1 * * *", 1710000000, [1710052200, 1710135000, 1710221400]),
    ("0 0 */2 * mon", 1710000000, [1710129600, 1710302400, 1710475200]),
    ("5/15 * * * *", 1710000000, [1710000300, 1710001200, 1710002100]),
    ("0 0 1 jan,JUL *", 1710000000, [1719806400, 1735707600, 1751342400]),
    ("* * * * ?", 1710000000, [1710000060, 1710000120, 1710000180]),
    ("0 0 29 2 *", 1710000000, [1835413200, 1961643600, 2087874000]),
    ("@every 1h30m", 1730000000, [1730005400, 1730010800, 1730016200]),
    ("@hourly", 1730000000, [1730001600, 1730005200, 1730008800]),
    ("@daily", 1730000000, [1730001600, 1730088000, 1730174400]),
    ("@weekly", 1730000000, [1730001600, 1730606400, 1731214800]),
    ("@monthly", 1730000000, [1730433600, 1733029200, 1735707600]),
    ("@yearly", 1730000000, [1735707600, 1767243600, 1798779600]),
    ("*/15 9-17 * * mon-fri", 1730000000, [1730120400, 1730121300, 1730122200]),
    ("TZ=Asia/Tokyo 0 9 * * *", 1730000000, [1730073600, 1730160000, 1730246400]),
    ("0 2 * * *", 1730000000, [1730008800, 1730095200, 1730181600]),
    ("30 1 * * *", 1730000000, [1730007000, 1730093400, 1730179800]),
    ("0 0 */2 * mon", 1730000000, [1730001600, 1730088000, 1730174400]),
    ("5/15 * * * *", 1730000000, [1730000100, 1730001000, 1730001900]),
    ("0 0 1 jan,JUL *", 1730000000, [1735707600, 1751342400, 1767243600]),
    ("* * * * ?", 1730000000, [1730000040, 1730000100, 1730000160]),
    ("0 0 29 2 *", 1730000000, [1835413200, 1961643600, 2087874000]),
]


@pytest.mark.parametrize(("spec", "start", "go"), GO_ROWS)
def test_next_times_are_gos(spec: str, start: int, go: list[int]) -> None:
    schedule = parse_schedule(spec, zone=NEW_YORK)
    times: list[int] = []
    t: float | None = float(start)
    for _ in go:
        t = schedule.next_after(t)
        assert t is not None
        times.append(int(t))
    assert times == go


def test_every_keeps_sub_second_and_fractional_periods() -> None:
    # Go rounds these to whole seconds (at least 1 s); the written duration is kept here
    assert parse_schedule("@every 250ms").next_after(100.0) == 100.25
    assert parse_schedule("@every 1.5s").next_after(100.0) == 101.5


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("90s", 90.0),
        ("300ms", 0.3),
        ("2h45m30.5s", 9930.5),
        ("1m.5s", 60.5),
        ("5.s", 5.0),
        ("10us", 1e-5),
        ("10\u00b5s", 1e-5),
        ("10\u03bcs", 1e-5),
        ("100ns", 1e-7),
        ("+3s", 3.0),
        ("-3s", -3.0),
        ("0", 0.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1h 30m", "1d", ".s", "s", "1.2.3s", "--1s", "h1"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("", "empty spec string"),
        # Go's parse error here is dropped by sfn.Connect: the handler silently never runs
        ("0 30 * * * *", "expected exactly 5 fields, found 6 (minute hour day-of-month"),
        ("* * * *", "expected exactly 5 fields, found 4"),
        ("0 0 * * 7", "day of week '7': 7 is above the maximum 6"),
        ("0 0 L * *", "day of month: 'L' is not a number"),
        ("0 0 1 foo *", "month: 'foo' is not a number or a name"),
        ("60 * * * *", "minute '60': 60 is above the maximum 59"),
        ("0 0 0 * *", "day of month '0': 0 is below the minimum 1"),
        ("5-1 * * * *", "minute '5-1': the range starts after its end"),
        ("*/0 * * * *", "minute '*/0': the step must be positive"),
        ("1-2-3 * * * *", "too many hyphens in minute '1-2-3'"),
        ("1/2/3 * * * *", "too many slashes in minute '1/2/3'"),
        ("-5 * * * *", "minute: '' is not a number"),
        ("@reboot", "unrecognized descriptor '@reboot'"),
        ("@every", "unrecognized descriptor '@every'"),
        ("@every 1d", "unknown unit 'd'"),
        ("TZ=UTC", "a time zone prefix needs a schedule after it"),
        ("TZ=Mars/Olympus 0 0 * * *", "unknown time zone 'Mars/Olympus'"),
        # Go accepts these and never runs them (or runs @every 0 each second)
        ("0 0 30 2 *", "it matches no date, so it would never run"),
        ("0 0 31 4,6,9,11 *", "it matches no date, so it would never run"),
        ("@every 0", "the period must be positive"),
        ("@every -5s", "the period must be positive"),
    ],
)
def test_bad_specs_say_why(spec: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_schedule(spec)
    assert str(info.value).startswith(f"yomo: bad cron spec {spec!r}: {why}")


def test_descriptors_and_names() -> None:
    for spec in ("@annually", "@midnight", "0 0 1 JAN,jul *", "0 9 * * MON-fri", "0 0 ? * ?"):
        assert parse_schedule(spec, zone=NEW_YORK).next_after(1710000000.0) is not None


def test_day_of_month_or_day_of_week() -> None:
    # both restricted: either matches (classic cron); a star on either side: both must
    either = parse_schedule("0 0 13 * fri", zone=NEW_YORK)
    star = parse_schedule("0 0 * * fri", zone=NEW_YORK)
    t_either = either.next_after(1710000000.0)  # Sat 2024-03-09
    t_star = star.next_after(1710000000.0)
    assert t_either is not None and t_star is not None
    assert t_either == 1710302400  # Wed 2024-03-13 00:00 EDT: the 13th
    assert t_star == 1710475200  # Fri 2024-03-15


def test_local_time_follows_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    t = parse_schedule("0 9 * * *").next_after(1710000000.0)
    assert t == 1710028800  # 2024-03-10 09:00 JST, as Go's "TZ=Asia/Tokyo 0 9 * * *"
    monkeypatch.setenv("TZ", "")  # Go: an empty TZ is UTC
    assert parse_schedule("0 9 * * *").next_after(1710000000.0) == 1710061200
