"""The auth brake: per address, at most ``rate`` failed credential checks a second."""

from __future__ import annotations

import pytest

from yomo.errors import ConfigError
from yomo.zipper.auth import AuthBrake


def test_failures_drain_the_bucket_and_time_refills_it():
    brake = AuthBrake(rate=10)
    for _ in range(10):
        assert brake.allows("a", 0.0)
        brake.failed("a", 0.0)
    assert not brake.allows("a", 0.0)
    assert brake.retry_after("a", 0.0) == pytest.approx(0.1)
    assert brake.allows("b", 0.0)  # per address
    assert not brake.allows("a", 0.05)
    assert brake.allows("a", 0.1)
    brake.failed("a", 0.1)
    assert not brake.allows("a", 0.1)


def test_sustained_guessing_is_held_to_the_rate():
    brake = AuthBrake(rate=10)
    checked = 0
    for i in range(10_000):  # 1,000 attempts a second for 10 s
        now = i / 1000
        if brake.allows("x", now):
            checked += 1
            brake.failed("x", now)
    assert 100 <= checked <= 111  # 10/s for 10 s, plus the first burst of 10


def test_success_never_counts_and_rate_zero_is_off():
    assert AuthBrake(rate=0).allows("a", 0.0)
    off = AuthBrake(rate=0)
    off.failed("a", 0.0)
    assert off.allows("a", 0.0)
    with pytest.raises(ConfigError):
        AuthBrake(rate=-1)


def test_the_table_of_addresses_is_bounded():
    brake = AuthBrake(rate=1, max_addresses=3)
    for i in range(10):
        brake.failed(f"10.0.0.{i}", 0.0)
    assert len(brake._buckets) == 3
    assert not brake.allows("10.0.0.9", 0.0)
    assert brake.allows("10.0.0.0", 0.0)  # forgotten: the oldest went first
