"""The client's journal: frames kept until acknowledged, bounded, with the recent acks."""

from __future__ import annotations

from yomo.session.journal import Journal


def test_trim_forgets_acknowledged_frames_and_remembers_when():
    j = Journal()
    offset = 0
    for i in range(5):
        offset += 10
        j.add(offset, b"f%d" % i)
    assert j.trim(25, now=1.0) == 2  # frames ending at 10 and 20; 30 is not whole
    assert j.unacked() == [b"f2", b"f3", b"f4"]
    assert j.trim(50, now=2.0) == 3
    assert j.unacked() == [] and j.bytes == 0
    assert j.acked_since(1.5) == 3
    assert j.acked_since(0.0) == 5


def test_bounded_in_bytes_and_counts_what_it_forgot():
    j = Journal(max_bytes=100)
    for i in range(30):
        j.add((i + 1) * 10, b"x" * 10)
    assert j.bytes <= 100
    assert len(j) == 10
    assert j.untracked == 20
    assert j.unacked()[0] == b"x" * 10
