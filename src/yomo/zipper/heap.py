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
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

__all__ = [
    "FREEZE_EVERY",
    "LOOK_EVERY",
    "LOOK_FLOOR",
    "QUIET_CLOSES",
    "FrozenHeap",
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


class FrozenHeap:
    """The process's frozen heap, shared by the pure-Python zippers running in it."""

    def __init__(
        self, every: float = FREEZE_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self._clock = clock
        self._holders = 0
        self._last = 0.0
        self._closed_at_tick = 0  # the closed-connections total at the last tick
        self._closed = 0  # connections closed since the last full look
        self._peak = 0  # the most connections open since then
        self._looked = 0.0  # when the last look (or the first freeze) was
        self.looks = 0

    @property
    def holders(self) -> int:
        """How many zippers hold the heap frozen."""
        return self._holders

    def hold(self) -> None:
        """A zipper started: freeze what the process has (its code, its configuration)."""
        self._holders += 1
        if self._holders == 1:
            gc.freeze()
            self._last = self._looked = self._clock()

    def release(self) -> None:
        """A zipper stopped; the last one thaws the heap (collections see all of it again)."""
        self._holders = max(self._holders - 1, 0)
        if self._holders == 0:
            gc.unfreeze()

    def tick(self, open_now: int, closed_total: int) -> None:
        """Freeze what came since the last freeze (at most once every ``every`` s); first,
        when one is due, thaw and collect the whole heap once.

        ``open_now``: connections open now; ``closed_total``: connections closed so far
        (a running count).
        """
        if self._holders == 0 or self._clock() - self._last < self.every:
            return
        closed_now = max(closed_total - self._closed_at_tick, 0)
        self._closed_at_tick = closed_total
        self._closed += closed_now
        self._peak = max(self._peak, open_now)
        due = max(LOOK_FLOOR, self._peak)
        quiet = closed_now <= QUIET_CLOSES
        late = self._clock() - self._looked >= LOOK_EVERY
        if gc.isenabled() and (  # a program that turned collections off gets none
            self._closed > 4 * due or ((self._closed > due or late) and quiet)
        ):
            self._look()
            self._peak = open_now
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
