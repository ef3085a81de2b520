"""The reliability suite's frame accounting is exact: lost, duplicated and reordered are counted."""

from __future__ import annotations

from reliability.harness import account, max_gap_within
from reliability.ledger import Ledger, merge_ranges, pack, ranges_to_set, unpack


def test_pack_round_trip_and_size():
    payload = pack(3, 123456789, 1.5, 256)
    assert len(payload) == 256
    assert unpack(payload) == (3, 123456789, 1.5)
    assert len(pack(0, 0, 0.0, 4)) == 20  # never shorter than the header


def test_ranges_round_trip():
    seqs = {0, 1, 2, 5, 6, 9}
    assert merge_ranges(seqs) == [[0, 3], [5, 7], [9, 10]]
    assert ranges_to_set(merge_ranges(seqs)) == seqs


def _sink(order: list[tuple[int, int]]) -> dict:
    ledger = Ledger()
    for i, (producer, seq) in enumerate(order):
        ledger.add(pack(producer, seq, 0.0, 32), float(i))
    return ledger.to_json()


def test_account_counts_lost_duplicated_reordered_per_producer():
    source = {
        "attempted": {"0": 6, "1": 3},
        "failed": {"0": [5], "1": []},  # producer 0's seq 5 raised: not written
        "start": 0.0,
        "end": 1.0,
        "events": [{"t": 0.5, "type": "X", "frames": 2}],
    }
    # producer 0: 0,1,3,2(reordered),2(dup); 4 lost; producer 1: 0,1,2 in order, 1 again (dup)
    sink = _sink([(0, 0), (0, 1), (0, 3), (0, 2), (0, 2), (1, 0), (1, 1), (1, 2), (1, 1)])
    got = account(source, [sink])
    assert got["written"] == 5 + 3
    assert got["failed_writes"] == 1
    assert got["delivered"] == 4 + 3
    assert got["lost"] == 1
    assert got["duplicated"] == 2
    assert got["reordered"] == 1
    assert got["reported_lost"] == 2


def test_account_unions_sinks_and_counts_delivered_failed_writes():
    source = {"attempted": {"0": 4}, "failed": {"0": [3]}, "start": 0, "end": 1, "events": []}
    a, b = _sink([(0, 0), (0, 1)]), _sink([(0, 2), (0, 3)])
    got = account(source, [a, b, None])
    assert got["lost"] == 0
    assert got["delivered_after_failed_write"] == 1
    assert got["missing_sink_reports"] == 1


def test_max_gap_within_counts_the_edges():
    times = [1.0, 1.1, 3.0, 3.2]
    assert max_gap_within(times, 0.0, 4.0) == 1.9
    assert max_gap_within([], 0.0, 2.0) == 2.0
