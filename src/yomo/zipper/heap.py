"""Keeping CPython's full collections from pausing a pure-Python zipper (issue 17).

On the pure-Python data path (qh3) the zipper tracks ~100 objects per connection;
holding 10,000, a full (generation 2) collection walks a million of them, 0.5-0.9 s
every 3-4 s while they connect, in which its one event loop serves nobody (one fell
into a mass close and stalled the other clients 1.38 s). ``gc.freeze`` moves every
tracked object to a permanent generation that collections skip, so the zipper
freezes its heap when it starts and once a second after that: a full collection
then walks only what came since (numbers in docs/transport.md). Every step here is
O(1): ``gc.freeze`` moves whole lists (``gc.get_freeze_count`` walks them, so it is
not used).

The risk: an object frozen while alive that later becomes cyclic garbage is not
collected while frozen. A closed qh3 connection leaves no cycle
(``transport/_compat.py`` ``release_terminated``; tests/integration/
test_transport_cycles.py), but aioquic's connections do (clients with empty
connection ids, i.e. every Go client, are served by aioquic), and other objects
may. So once more connections have closed since the last full look than were open
at their peak (at least ``LOOK_FLOOR``), the heap is thawed and collected once, at
the first second with at most ``QUIET_CLOSES`` closes (not in the middle of a mass
close), or at once past four times that: what freezing can hold back is bounded by
a few times the connections the zipper held, and each look costs one collection of
what is alive then. Cyclic garbage that is no connection's (the AI bridge's HTTP
requests, a user's objects in an embedding program) is bounded by time instead: a
look is also due ``LOOK_EVERY`` seconds after the last one, in a quiet second.

Several zippers in one process (a mesh in a test, zippers in threads) share the one
heap: each holds a ``HeapShare`` that reports its own connection counts, and the heap
decides on their sums, under a lock.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

__all__ = [
    "FREEZE_EVERY",
    "LOOK_EVERY",
    "LOOK_FLOOR",
    "QUIET_CLOSES",
    "FrozenHeap",
    "HeapShare",
    "frozen_heap",
]

log = logging.getLogger("yomo.zipper")

#: Seconds between freezes.
FREEZE_EVERY = 1.0
#: Closes since the last full look that make one due, at least (a small zipper's look
#: costs little, but need not run every few closes either).
LOOK_FLOOR = 1000
#: Seconds after the last look (or the freeze at start) that make one due whatever
#: closed: cyclic garbage of anything else stays at most this long (a look with 10,000
#: connections held costs a full collection, 0.5-1.4 s here, so not often).
LOOK_EVERY = 600.0
#: A due look waits for a second with at most this many closes.
QUIET_CLOSES = 5


class HeapShare:
    """One zipper's hold on the frozen heap: it reports that zipper's connections."""

    def __init__(self, heap: FrozenHeap) -> None:
        self._heap = heap
        self.open = 0  # connections open at the last report
        self.closed = 0  # connections closed so far (a running count)
        self.released = False

    def tick(self, open_now: int, closed_total: int) -> None:
        """Report this zipper's connections (``closed_total`` is a running count) and let
        the heap freeze, or look, when one is due (``FrozenHeap.tick``)."""
        self._heap.tick(self, open_now, closed_total)

    def release(self) -> None:
        """The zipper stopped (the last one to stop thaws the heap); idempotent."""
        self._heap.release(self)


class FrozenHeap:
    """The process's frozen heap, shared by the pure-Python zippers running in it."""

    def __init__(
        self, every: float = FREEZE_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self._clock = clock
        self._lock = threading.RLock()  # zippers in threads; a finalizer may re-enter
        self._shares: list[HeapShare] = []
        self._retired_closed = 0  # closes counted by shares released since
        self._last = 0.0
        self._closed_at_tick = 0  # the closed-connections total at the last tick
        self._closed = 0  # connections closed since the last full look
        self._peak = 0  # the most connections open since then
        self._looked = 0.0  # when the last look (or the first freeze) was
        self.looks = 0

    @property
    def holders(self) -> int:
        """How many zippers hold the heap frozen."""
        return len(self._shares)

    def hold(self) -> HeapShare:
        """A zipper started: the first one freezes what the process has (its code, its
        configuration). Returns that zipper's share, to report through and release."""
        share = HeapShare(self)
        with self._lock:
            self._shares.append(share)
            if len(self._shares) == 1:
                gc.freeze()
                self._last = self._looked = self._clock()
        return share

    def release(self, share: HeapShare) -> None:
        """A zipper stopped; the last one thaws the heap (collections see all of it again)."""
        with self._lock:
            if share.released:
                return
            share.released = True
            self._shares.remove(share)
            self._retired_closed += share.closed
            if not self._shares:
                gc.unfreeze()

    def tick(self, share: HeapShare, open_now: int, closed_total: int) -> None:
        """Record ``share``'s counts; then freeze what came since the last freeze (at most
        once every ``every`` s), first, when one is due, thawing and collecting the whole
        heap once. Due is decided on every zipper's connections together.
        """
        with self._lock:
            share.open, share.closed = open_now, closed_total
            if share.released or self._clock() - self._last < self.every:
                return
            open_all = sum(s.open for s in self._shares)
            closed_all = self._retired_closed + sum(s.closed for s in self._shares)
            closed_now = max(closed_all - self._closed_at_tick, 0)
            self._closed_at_tick = closed_all
            self._closed += closed_now
            self._peak = max(self._peak, open_all)
            due = max(LOOK_FLOOR, self._peak)
            quiet = closed_now <= QUIET_CLOSES
            late = self._clock() - self._looked >= LOOK_EVERY
            if gc.isenabled() and (  # a program that turned collections off gets none
                self._closed > 4 * due or ((self._closed > due or late) and quiet)
            ):
                self._look()
                self._peak = open_all
            gc.freeze()
            self._last = self._clock()

    def _look(self) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        freed = gc.collect()
        log.info(
            "heap: %d connections closed since the last full collection (at most %d open): "
            "it freed %d objects in %.3f s",
            self._closed,
            self._peak,
            freed,
            time.perf_counter() - started,
        )
        self.looks += 1
        self._closed = 0
        self._looked = self._clock()


_heap = FrozenHeap()


def frozen_heap() -> FrozenHeap:
    """The process's one ``FrozenHeap`` (gc state is per process)."""
    return _heap
