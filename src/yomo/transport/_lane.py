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
reads. A connection's datagrams keep their order: while one of its datagrams
waits, the next ones queue behind it.
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
#: Bounds of the deferred FIFO (datagrams, payload bytes); past either one a quiet
#: connection's datagram is dropped, as a full socket buffer would drop it.
MAX_DATAGRAMS = 65_536
MAX_BYTES = 32 * 1024 * 1024


class SlowLane:
    """Defers quiet connections' datagrams; ``offer`` says whether it took one.

    ``deliver(data, addr)`` processes a datagram (the server's own entry point, so
    a connection that ended meanwhile is looked up again and the datagram dropped).
    """

    def __init__(
        self,
        deliver: Callable[[bytes, Any], None],
        *,
        quiet_after: float = QUIET_AFTER,
        slice_seconds: float = SLICE,
        max_datagrams: int = MAX_DATAGRAMS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self.quiet_after = quiet_after
        self.slice_seconds = slice_seconds
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self._queue: deque[tuple[Any, bytes, Any]] = deque()
        self._bytes = 0
        self._scheduled = False
        self._closed = False
        self.deferred = 0
        """Datagrams that went through the lane so far."""
        self.dropped = 0
        """Datagrams dropped because the lane was full."""

    @property
    def pending(self) -> int:
        """Datagrams waiting in the lane now."""
        return len(self._queue)

    def offer(self, protocol: Any, data: bytes, addr: Any) -> bool:
        """Take ``data`` (a short-header datagram of ``protocol``) if the connection is quiet.

        False: the caller processes it now. Cheap: a few attribute reads per datagram.
        """
        if self._closed:
            return False
        waiting = protocol.lane_waiting
        if not waiting:
            conn = protocol.conn
            if conn is None:
                return False
            now = self._loop.time()
            moved = conn.bytes_received + conn.bytes_sent
            if moved != protocol.lane_moved or not moved:
                # stream bytes since we last looked, or no YoMo handshake yet: active
                protocol.lane_moved = moved
                protocol.lane_active = now
                return False
            if now - protocol.lane_active < self.quiet_after:
                return False
        size = len(data)
        if len(self._queue) >= self.max_datagrams or self._bytes + size > self.max_bytes:
            if not self.dropped:
                log.warning(
                    "slow lane full (%d datagrams, %d bytes): dropping quiet connections' "
                    "datagrams",
                    len(self._queue),
                    self._bytes,
                )
            self.dropped += 1
            return True
        self._queue.append((protocol, data, addr))
        self._bytes += size
        protocol.lane_waiting = waiting + 1
        self.deferred += 1
        if not self._scheduled and not self._closed:
            self._scheduled = True
            self._loop.call_soon(self._drain)
        return True

    def _drain(self) -> None:
        self._scheduled = False
        queue, deliver, clock = self._queue, self._deliver, self._loop.time
        end = clock() + self.slice_seconds
        while queue and not self._closed:
            protocol, data, addr = queue.popleft()
            self._bytes -= len(data)
            protocol.lane_waiting -= 1
            try:
                deliver(data, addr)
            except Exception:  # one datagram's failure must not stall the rest
                log.exception("processing a deferred datagram failed")
            if clock() >= end:
                break
        if queue and not self._closed:
            self._scheduled = True
            self._loop.call_soon(self._drain)

    def close(self) -> None:
        """Drop what waits; nothing more is taken."""
        self._closed = True
        for protocol, _, _ in self._queue:
            protocol.lane_waiting = 0
        self._queue.clear()
        self._bytes = 0
