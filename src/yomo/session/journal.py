"""Frames written on one connection, kept until the zipper's transport acknowledges them.

When a connection to the zipper is lost, what the zipper's transport never
acknowledged can be written again on the next connection (in order, before
anything new), and what it acknowledged only just before it went silent may have
died with it (acknowledged is not routed): the client counts those and tells its
error handler. Offsets are stream offsets (``FrameConnection.bytes_sent`` after
each write). Bounded: past ``max_bytes`` it first trims what the transport has
acknowledged by now (``acked_to``: the watchdog trims only every tick, and a fast
writer fills ``max_bytes`` between ticks), then the oldest frames are forgotten and
counted as untracked (they can no longer be re-sent). Re-sent frames are marked with
the connection they were first written on and their place there
(``yomo.wire.resent``), so a zipper that routed them already routes them only once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from yomo.wire.resent import mark_resent

__all__ = ["DEFAULT_JOURNAL_BYTES", "Journal"]

#: Bytes of unacknowledged frames a client keeps for re-sending (per connection).
DEFAULT_JOURNAL_BYTES = 8 * 1024 * 1024


class Journal:
    """The frames of one connection that its peer has not acknowledged (yet)."""

    # Two parallel queues, not one of (end, frame) pairs: a source books every write,
    # and a tuple per frame is an allocation the garbage collector then keeps scanning.
    __slots__ = (
        "_acked",
        "_acked_to",
        "_added",
        "_clock",
        "_ends",
        "_frames",
        "_recheck_at",
        "bytes",
        "connection_id",
        "max_bytes",
        "untracked",
    )

    def __init__(
        self,
        max_bytes: int = DEFAULT_JOURNAL_BYTES,
        connection_id: str = "",
        acked_to: Callable[[], int] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self._acked_to = acked_to  # the stream offset acknowledged by now, if known
        self._clock = clock
        self._recheck_at = 0
        self.connection_id = connection_id
        self._added = 0  # frames written on the connection so far
        self._ends: deque[int] = deque()  # each frame's end offset on the stream
        self._frames: deque[bytes] = deque()
        self._acked: deque[tuple[float, int]] = deque()  # (when, frames acknowledged then)
        self.bytes = 0
        self.untracked = 0

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, end: int, data: bytes) -> None:
        """Book a frame whose last byte is at stream offset ``end - 1``."""
        self._ends.append(end)
        self._frames.append(data)
        self._added += 1
        self.bytes += len(data)
        if self.bytes > self.max_bytes:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        """Over ``max_bytes``: trim what is acknowledged by now (when that found nothing
        new, asked again only 64 frames later), then forget the oldest frames (they can
        no longer be re-sent)."""
        if self._acked_to is not None and self._clock is not None:
            if self._added >= self._recheck_at:
                if not self.trim(self._acked_to(), self._clock()):
                    self._recheck_at = self._added + 64  # nothing new: ask again later
                if self.bytes <= self.max_bytes:
                    return
        while self.bytes > self.max_bytes and len(self._frames) > 1:
            self._ends.popleft()
            self.bytes -= len(self._frames.popleft())
            self.untracked += 1

    def trim(self, acked_to: int, now: float) -> int:
        """Forget the frames wholly below stream offset ``acked_to``; returns how many."""
        ends, frames = self._ends, self._frames
        n = 0
        size = 0
        while ends and ends[0] <= acked_to:
            ends.popleft()
            size += len(frames.popleft())
            n += 1
        if n:
            self.bytes -= size
            acked = self._acked
            acked.append((now, n))
            while acked and acked[0][0] < now - 10.0:
                acked.popleft()
        return n

    def acked_since(self, since: float) -> int:
        """Frames acknowledged at or after ``since`` (kept for 10 s)."""
        return sum(n for when, n in self._acked if when >= since)

    def unacked(self) -> list[bytes]:
        """The frames not acknowledged, oldest first."""
        return list(self._frames)

    def resend(self) -> list[bytes]:
        """The frames not acknowledged, oldest first, each marked as a re-send of its
        write on this connection (``yomo.wire.resent``)."""
        first = self._added - len(self._frames)
        cid = self.connection_id
        return [mark_resent(data, cid, first + i) for i, data in enumerate(self._frames)]
