"""The qh3 zipper's split server and its slow lane (``_lane.SlowLane``) on a fake clock."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from yomo.transport import _lane
from yomo.transport._lane import SlowLane
from yomo.transport._server import _SplitServer


class FakeLoop:
    """``time`` and ``call_soon`` of an event loop; each delivered datagram takes 1 ms."""

    def __init__(self) -> None:
        self.now = 100.0
        self.soon: list[Callable[[], None]] = []

    def time(self) -> float:
        return self.now

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.soon.append(callback)

    def turn(self) -> None:
        """Run what is due (one loop turn's ready callbacks)."""
        soon, self.soon = self.soon, []
        for callback in soon:
            callback()


class Conn:
    def __init__(self, moved: int) -> None:
        self.bytes_received = moved
        self.bytes_sent = 0


class Proto:
    """A connection's protocol as the lane sees it; records what it processed."""

    lane_waiting = 0
    lane_moved = 0
    lane_active = 0.0

    def __init__(self, cid: bytes, moved: int = 10) -> None:
        self.cid = cid
        self.conn: Any = Conn(moved)
        self.last_rx = 0.0
        self.got: list[bytes] = []
        self.at: list[float] = []  # the time each datagram was processed as of

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.receive_at(data, addr, -1.0)

    def receive_at(self, data: bytes, addr: Any, now: float) -> None:
        self.got.append(data)
        self.at.append(now)

    def packet(self, payload: bytes) -> bytes:
        return bytes([0x40]) + self.cid + payload  # a short header


class Server:
    def __init__(self) -> None:
        self._protocols: dict[bytes, Any] = {}
        self.got: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(data)


def make(**options: Any) -> tuple[_SplitServer, SlowLane, FakeLoop]:
    """A split server whose lane runs on a fake loop (each datagram costs 1 ms)."""
    loop = FakeLoop()
    split = _SplitServer.__new__(_SplitServer)
    fast, other = Server(), Server()
    split.fast, split.compat = fast, other
    split._fast_ids, split._compat_ids = fast._protocols, other._protocols
    split._cid_length = 8

    def deliver(data: bytes, addr: Any, arrived: float) -> None:
        split._deliver(data, addr, arrived)
        loop.now += 0.001

    split.lane = SlowLane(deliver, loop=loop, **options)
    return split, split.lane, loop


def connect(split: _SplitServer, i: int, moved: int = 10) -> Proto:
    proto = Proto(b"cid-%04d" % i, moved)
    split._fast_ids[proto.cid] = proto
    return proto


def quiet(split: _SplitServer, loop: FakeLoop, protos: list[Proto]) -> None:
    """Make ``protos`` quiet: each seen twice with its bytes unchanged, then time passes."""
    for p in protos:
        split.datagram_received(p.packet(b"seen"), None)
        split.datagram_received(p.packet(b"seen"), None)
        p.got.clear()
        p.at.clear()
    loop.now += split.lane.quiet_after + 0.1


def test_new_and_active_connections_go_first() -> None:
    split, lane, loop = make()
    fresh = connect(split, 1, moved=0)  # no YoMo handshake yet
    busy = connect(split, 2)
    quiet(split, loop, [fresh])
    split.datagram_received(fresh.packet(b"a"), None)
    assert fresh.got == [fresh.packet(b"a")]  # not quiet: never moved a byte
    split.datagram_received(busy.packet(b"a"), None)
    loop.now += lane.quiet_after / 2
    split.datagram_received(busy.packet(b"b"), None)  # unchanged, but not for long
    busy.conn.bytes_sent += 5
    loop.now += lane.quiet_after * 2
    split.datagram_received(busy.packet(b"c"), None)  # moved again: active again
    assert busy.got == [busy.packet(b"a"), busy.packet(b"b"), busy.packet(b"c")]
    gone = connect(split, 3)
    gone.conn = None
    split.datagram_received(gone.packet(b"a"), None)
    assert gone.got == [gone.packet(b"a")]
    split.datagram_received(bytes([0xC0]) + b"long header", None)  # new connections
    split.datagram_received(bytes([0x40]) + b"unknown-" + b"id", None)
    assert len(split.fast.got) == 2  # type: ignore[attr-defined]
    assert lane.pending == 0


def test_a_quiet_connection_waits_and_keeps_its_order() -> None:
    split, lane, loop = make()
    idle = connect(split, 1)
    other = connect(split, 2)
    quiet(split, loop, [idle, other])
    split.datagram_received(idle.packet(b"1"), None)
    assert idle.last_rx == loop.now  # a waiting datagram counts as heard
    idle.conn.bytes_received += 100  # it became active meanwhile ...
    split.datagram_received(idle.packet(b"2"), None)  # ... but "1" still waits
    split.datagram_received(other.packet(b"x"), None)
    assert lane.pending == 3 and idle.got == [] and other.got == []
    del split._fast_ids[other.cid]  # "other" ended meanwhile: its datagram is dropped
    loop.turn()  # a 2 ms slice: two of them
    loop.turn()
    assert idle.got == [idle.packet(b"1"), idle.packet(b"2")] and other.got == []
    assert lane.pending == 0 and lane.deferred == 3


def test_a_waiting_datagram_is_processed_as_of_its_arrival() -> None:
    # what QUIC sees as "now" for it: the wait in the lane is neither round-trip
    # time (an RTT sample, so the PTO and the 3-PTO idle and draining periods) nor
    # silence (the idle timer)
    split, _, loop = make()
    idle = connect(split, 1)
    busy = connect(split, 2)
    quiet(split, loop, [idle])
    split.datagram_received(idle.packet(b"ack"), None)
    arrived = loop.now
    loop.now += 2.0  # the lane waits behind priority work
    split.datagram_received(busy.packet(b"x"), None)
    assert busy.at == [-1.0]  # processed at once, as the loop's "now"
    loop.turn()
    assert idle.got == [idle.packet(b"ack")] and idle.at == [arrived]


def test_a_turn_does_one_slice_then_an_equal_share_when_overdue() -> None:
    split, lane, loop = make(slice_seconds=0.002, overdue=2.5)
    protos = [connect(split, i) for i in range(400)]
    quiet(split, loop, protos)
    for p in protos:
        split.datagram_received(p.packet(b"d"), None)
    assert lane.pending == 400

    def done() -> int:
        return sum(len(p.got) for p in protos)

    loop.turn()
    assert done() == 2  # a 2 ms slice, 1 ms each
    loop.now += 0.030  # the rest of the loop's turn took 30 ms
    loop.turn()
    assert done() == 4  # not overdue yet: still one slice
    loop.now += 3.0 - 0.030  # the oldest has waited past OVERDUE
    loop.turn()
    assert done() == 4 + round(_lane.MAX_TURN / 0.001)  # that 3 s turn: capped
    loop.now += 0.020
    loop.turn()
    assert done() == 4 + round(_lane.MAX_TURN / 0.001) + 20  # as long as the rest


def test_full_lane_drops_and_counts() -> None:
    split, lane, loop = make(max_datagrams=3)
    protos = [connect(split, i) for i in range(5)]
    quiet(split, loop, protos)
    for p in protos:
        split.datagram_received(p.packet(b"d"), None)
    assert lane.pending == 3 and lane.dropped == 2  # dropped, as a full socket drops
    lane.close()
    assert lane.pending == 0
    split.datagram_received(protos[0].packet(b"e"), None)  # closed: processed at once
    loop.turn()
    assert [len(p.got) for p in protos] == [1, 0, 0, 0, 0]


def test_each_episode_of_drops_is_logged_when_it_starts_and_when_the_lane_drains(
    caplog: pytest.LogCaptureFixture,
) -> None:
    split, lane, loop = make(max_datagrams=2)
    protos = [connect(split, i) for i in range(4)]
    quiet(split, loop, protos)
    caplog.set_level(logging.WARNING, logger="yomo.transport")
    for _ in range(2):  # two floods, the lane drained between them
        caplog.clear()
        for p in protos:
            split.datagram_received(p.packet(b"d"), None)
        while lane.pending:
            loop.turn()
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 2, messages
        assert messages[0].startswith("slow lane full (2 datagrams")
        assert "2 quiet connections' datagrams were dropped" in messages[1]
        for p in protos:  # quiet again for the next flood
            p.lane_active = loop.now - lane.quiet_after - 0.1
    assert lane.dropped == 4
    assert "(4 since the zipper started)" in messages[1]
