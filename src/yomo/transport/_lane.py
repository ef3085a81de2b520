"""The qh3 zipper's slow lane: quiet connections' datagrams wait, the rest go first.

The zipper's socket is one kernel FIFO. When 10,000 idle connections close at
once, ~10,000 CONNECTION_CLOSE datagrams queue there, each costing ~300 µs of
qh3 work to process; a new client's datagrams (and a running pair's) behind
them waited ~3 s. Reading a datagram is cheap next to processing it, so the
server reads on and sorts by the header alone (no decryption): datagrams of a
*quiet* connection (its YoMo stream moved no bytes for ``quiet_after`` s) go to
a bounded FIFO that loop callbacks drain a time slice at a time; everything
else (long headers: new connections and handshakes; connections that are new
or moved stream bytes recently; unknown ids) is processed at once. Between two
slices the loop runs its other callbacks: timers, tasks, the socket's next
reads. Once the oldest waiting datagram is ``OVERDUE`` (2.5 s) old, each slice
lasts as long as the rest of the loop turn did (at most ``MAX_TURN``): the lane
then has half of the loop, so a flood of new connections cannot hold quiet
connections' keep-alive ACKs past the idle timeout. A connection's datagrams
keep their order: while one of its datagrams waits, the next ones queue behind it.
The wait is not the path's: a datagram is processed as of its arrival (its RTT
sample, so the PTO and the idle and draining periods of 3 PTO, stay the path's),
and a connection's QUIC timer does not fire while its datagrams wait here (they
may carry the ACK a PTO probe would ask for); ``_protocol.py`` does both.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["SlowLane"]

log = logging.getLogger("yomo.transport")

#: Seconds without stream bytes (either way) after which a connection is quiet.
QUIET_AFTER = 1.0
#: Seconds of deferred work one drain callback does before yielding to the loop.
SLICE = 0.002
#: Seconds a datagram may wait before the lane claims an equal share of the loop:
#: then each drain callback works as long as the rest of the loop turn took, so a
#: flood of priority work (10,000 handshakes) cannot hold idle connections'
#: keep-alive ACKs past the idle timeout.
OVERDUE = 2.5
#: The longest drain callback when overdue (seconds).
MAX_TURN = 0.05
#: Bounds of the deferred FIFO (datagrams, payload bytes); past either one a quiet
#: connection's datagram is dropped, as a full socket buffer would drop it.
MAX_DATAGRAMS = 65_536
MAX_BYTES = 32 * 1024 * 1024


class SlowLane:
    """Defers quiet connections' datagrams; ``offer`` says whether it took one.

    ``deliver(data, addr, arrived)`` processes a datagram (the server's own entry
    point, so a connection that ended meanwhile is looked up again and the datagram
    dropped) as of ``arrived``, the loop time it was offered: QUIC must take the
    wait here for neither round-trip time nor silence.
    """

    def __init__(
        self,
        deliver: Callable[[bytes, Any, float], None],
        *,
        quiet_after: float = QUIET_AFTER,
        slice_seconds: float = SLICE,
        overdue: float = OVERDUE,
        max_datagrams: int = MAX_DATAGRAMS,
        max_bytes: int = MAX_BYTES,
        loop: Any = None,
    ) -> None:
        self._deliver = deliver
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self.quiet_after = quiet_after
        self.slice_seconds = slice_seconds
        self.overdue = overdue
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self._queue: deque[tuple[Any, bytes, Any, float]] = deque()
        self._last_turn = 0.0  # when the last drain callback ended
        self._bytes = 0
        self._scheduled = False
        self._closed = False
        self.deferred = 0
        """Datagrams that went through the lane so far."""
        self.dropped = 0
        """Datagrams dropped because the lane was full."""
        self._reported = 0  # ``dropped`` when the last episode of drops was reported

    @property
    def pending(self) -> int:
        """Datagrams waiting in the lane now."""
        return len(self._queue)

    def offer(self, protocol: Any, data: bytes, addr: Any) -> bool:
        """Take ``data`` (a short-header datagram of ``protocol``) if it must wait.

        The caller has seen the connection's stream bytes unchanged since its last
        look (``protocol.lane_moved``, with ``lane_active`` 0.0 when they changed),
        or the connection has datagrams waiting here (``lane_waiting``): those are
        always taken, to keep its order. False: the caller processes it now.
        """
        if self._closed:
            return False
        now = self._loop.time()
        waiting = protocol.lane_waiting
        if not waiting:
            active = protocol.lane_active
            if not active:  # the first look since its bytes last moved
                protocol.lane_active = now
                return False
            if now - active < self.quiet_after:
                return False
        size = len(data)
        if len(self._queue) >= self.max_datagrams or self._bytes + size > self.max_bytes:
            if self.dropped == self._reported:  # the first drop of an episode
                log.warning(
                    "slow lane full (%d datagrams, %d bytes): dropping quiet connections' "
                    "datagrams until it drains",
                    len(self._queue),
                    self._bytes,
                )
            self.dropped += 1
            return True
        self._queue.append((protocol, data, addr, now))
        self._bytes += size
        protocol.lane_waiting = waiting + 1
        protocol.last_rx = now  # heard from: no keep-alive PING needed meanwhile
        self.deferred += 1
        if not self._scheduled:
            self._scheduled = True
            self._last_turn = now
            self._loop.call_soon(self._drain)
        return True

    def _drain(self) -> None:
        self._scheduled = False
        queue, deliver, clock = self._queue, self._deliver, self._loop.time
        start = clock()
        budget = self.slice_seconds
        if queue and start - queue[0][3] > self.overdue:
            # behind: as long as the rest of the loop's turn took (an equal share)
            budget = min(max(budget, start - self._last_turn), MAX_TURN)
        end = start + budget
        while queue and not self._closed:
            protocol, data, addr, arrived = queue.popleft()
            self._bytes -= len(data)
            protocol.lane_waiting -= 1
            try:
                deliver(data, addr, arrived)
            except Exception:  # one datagram's failure must not stall the rest
                log.exception("processing a deferred datagram failed")
            if clock() >= end:
                break
        self._last_turn = clock()
        if not queue and self.dropped != self._reported:
            self._report_drops()
        if queue and not self._closed:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def _report_drops(self) -> None:
        """The lane drained after dropping: say how many, once per episode."""
        log.warning(
            "slow lane drained: %d quiet connections' datagrams were dropped while it was "
            "full (%d since the zipper started)",
            self.dropped - self._reported,
            self.dropped,
        )
        self._reported = self.dropped

    def close(self) -> None:
        """Drop what waits; nothing more is taken."""
        self._closed = True
        for protocol, *_ in self._queue:
            protocol.lane_waiting = 0
        self._queue.clear()
        self._bytes = 0
