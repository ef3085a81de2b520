"""The zipper's bookkeeping of re-sent frames and the startup hold, below QUIC (the
integration tests in tests/integration/test_crash_recovery.py run them for real)."""

from __future__ import annotations

from yomo.zipper.resend import FORWARDING, ResendLedger
from yomo.zipper.startup_hold import StartupHold


def _deliver(
    ledger: ResendLedger, own, index: int, mark: str | None, dests: list[int]
) -> list[int]:  # type: ignore[no-untyped-def]
    progress, at = ledger.admit(own, index, mark)
    return [d for d in dests if ledger.fresh(progress, at, d)]


def test_each_destination_gets_a_frame_once_and_in_order() -> None:
    ledger = ResendLedger()
    old, new = ledger.opened("abc-0"), ledger.opened("abc-1")
    assert [_deliver(ledger, old, i, None, [7]) for i in range(2)] == [[7], [7]]
    # re-sent 1..3: function 7 had 1; function 8 (reconnected) gets every one
    got = [_deliver(ledger, new, i - 1, f"abc-0/{i}", [7, 8]) for i in range(1, 4)]
    assert got == [[8], [7, 8], [7, 8]]
    # the old connection wakes and reads 2 and 3: nobody gets them twice
    assert [_deliver(ledger, old, i, None, [7, 8, FORWARDING]) for i in (2, 3)] == [
        [FORWARDING],
        [FORWARDING],
    ]
    assert ledger.duplicates == 5


def test_marks_of_strangers_unknown_or_bad_count_for_nothing_closed_ones_are_kept() -> None:
    t = [0.0]
    ledger = ResendLedger(retain=10.0, clock=lambda: t[0])
    old, new = ledger.opened("abc-0"), ledger.opened("abc-1")
    assert _deliver(ledger, old, 0, None, [7]) == [7]
    other = ledger.opened("xyz-0")
    assert _deliver(ledger, other, 0, "abc-0/0", [7]) == [7]
    assert _deliver(ledger, new, 0, "gone-1/0", [7]) == [7]
    assert _deliver(ledger, new, 1, "garbage", [9]) == [9]
    ledger.closed(old)
    assert _deliver(ledger, new, 2, "abc-0/0", [7]) == []  # still known
    t[0] = 11.0
    ledger.closed(ledger.opened("abc-9"))  # closing another evicts the stale one
    assert _deliver(ledger, new, 3, "abc-0/0", [7]) == [7]


def test_startup_hold_is_bounded_in_time_and_bytes() -> None:
    t = [0.0]
    hold = StartupHold(window=2.0, max_bytes=10, clock=lambda: t[0])
    assert not hold.hold(1, "", b"x", 1)  # not started
    hold.start()
    assert hold.hold(1, "", b"aaaa", 4)
    assert hold.hold(2, "bob", b"bbbb", 4)
    assert not hold.hold(1, "", b"cccc", 4)  # over max_bytes
    assert hold.take_for([1, 2], "alice") == [(1, 4, b"aaaa")]
    assert hold.expire_due() == []  # not due yet
    t[0] = 2.5
    assert not hold.hold(1, "", b"d", 1)
    assert hold.expire_due() == [2]  # the frame nobody took
    assert hold.expire_due() == []
