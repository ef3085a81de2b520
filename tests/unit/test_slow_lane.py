"""``yomo.transport._lane.SlowLane`` on a fake clock: who waits, how much one turn does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yomo.transport import _lane
from yomo.transport._lane import SlowLane


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
    lane_waiting = 0
    lane_moved = 0
    lane_active = 0.0

    def __init__(self, moved: int = 10) -> None:
        self.conn: Any = Conn(moved)
        self.last_rx = 0.0


def make(**options: Any) -> tuple[SlowLane, FakeLoop, list[bytes]]:
    loop = FakeLoop()
    delivered: list[bytes] = []

    def deliver(data: bytes, addr: Any) -> None:
        delivered.append(data)
        loop.now += 0.001

    return SlowLane(deliver, loop=loop, **options), loop, delivered


def quiet(loop: FakeLoop, lane: SlowLane, proto: Proto) -> None:
    """Make ``proto`` quiet: seen once with its bytes, then ``quiet_after`` passes."""
    assert not lane.offer(proto, b"x", None)
    loop.now += lane.quiet_after + 0.1


def test_new_and_active_connections_go_first() -> None:
    lane, loop, _ = make()
    fresh = Proto(moved=0)  # no YoMo handshake yet
    assert not lane.offer(fresh, b"a", None)
    busy = Proto()
    assert not lane.offer(busy, b"a", None)  # bytes moved since the lane last looked
    loop.now += lane.quiet_after / 2
    assert not lane.offer(busy, b"b", None)  # moved within quiet_after
    busy.conn.bytes_sent += 5
    loop.now += lane.quiet_after * 2
    assert not lane.offer(busy, b"c", None)  # moved again: active again
    gone = Proto()
    gone.conn = None
    assert not lane.offer(gone, b"a", None)
    assert lane.pending == 0


def test_a_quiet_connection_waits_and_keeps_its_order() -> None:
    lane, loop, delivered = make()
    idle = Proto()
    quiet(loop, lane, idle)
    assert lane.offer(idle, b"1", None)
    assert idle.last_rx == loop.now  # a waiting datagram counts as heard
    idle.conn.bytes_received += 100  # it became active meanwhile ...
    assert lane.offer(idle, b"2", None)  # ... but its earlier datagram still waits
    assert lane.pending == 2 and delivered == []
    loop.turn()
    assert delivered == [b"1", b"2"] and lane.pending == 0


def test_a_turn_does_one_slice_then_an_equal_share_when_overdue() -> None:
    lane, loop, delivered = make(slice_seconds=0.002, overdue=2.5)
    protos = [Proto() for _ in range(400)]
    for p in protos:
        quiet(loop, lane, p)
        loop.now -= lane.quiet_after + 0.1  # all at the same time
    loop.now += lane.quiet_after + 0.1
    for p in protos:
        assert lane.offer(p, b"d", None)
    loop.turn()
    assert len(delivered) == 2  # a 2 ms slice, 1 ms each
    loop.now += 0.030  # the rest of the loop's turn took 30 ms
    loop.turn()
    assert len(delivered) == 4  # not overdue yet: still one slice
    loop.now += 3.0 - 0.030  # the oldest has waited past OVERDUE
    loop.turn()
    assert len(delivered) == 4 + round(_lane.MAX_TURN / 0.001)  # the 3 s turn: capped
    loop.now += 0.020
    loop.turn()
    assert len(delivered) == 4 + round(_lane.MAX_TURN / 0.001) + 20  # as long as the rest


def test_full_lane_drops_and_counts() -> None:
    lane, loop, delivered = make(max_datagrams=3)
    protos = [Proto() for _ in range(5)]
    for p in protos:
        quiet(loop, lane, p)
        loop.now -= lane.quiet_after + 0.1
    loop.now += lane.quiet_after + 0.1
    taken = [lane.offer(p, b"d", None) for p in protos]
    assert taken == [True] * 5  # taken: queued or dropped, as a full socket drops
    assert lane.pending == 3 and lane.dropped == 2
    lane.close()
    assert lane.pending == 0
    assert not lane.offer(protos[0], b"d", None)  # closed: the caller processes it
    loop.turn()
    assert delivered == []
