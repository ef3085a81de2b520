"""The startup hold: frames that reach a just-started zipper before their observers.

After a zipper restart its clients redial at once and in no set order. A source that
registers before the functions it feeds re-sends the frames the dead zipper never
acknowledged, and those would be routed to nobody (measured on the native path: 91 to
1,861 of 24,000 frames lost in 5 of 8 SIGKILL runs, each time the source registered
11-32 ms before the function; docs/reliability.md). So for ``window`` seconds after the
start a frame that would be dropped as unobserved is held (at most ``max_bytes`` in
all), and a stream function registering within the window gets the held frames it
observes, oldest first, before any live frame. When the window ends, what nobody
observed is dropped and counted as unobserved, as Go's zipper does at once
("no observed"). The native data path does the same in Rust (``native/src/hold.rs``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_STARTUP_HOLD", "DEFAULT_STARTUP_HOLD_BYTES", "StartupHold"]

#: Seconds after the start during which frames nobody observes yet are held.
DEFAULT_STARTUP_HOLD = 2.0
#: Bytes of such frames held at most (past it they are dropped and counted at once).
DEFAULT_STARTUP_HOLD_BYTES = 16 * 1024 * 1024


@dataclass
class _Held:
    tag: int
    target: str
    frame: bytes
    size: int
    taken: bool = False


class StartupHold:
    """Frames held for observers that have not registered yet (see the module docs)."""

    def __init__(
        self,
        window: float = DEFAULT_STARTUP_HOLD,
        max_bytes: int = DEFAULT_STARTUP_HOLD_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = max(window, 0.0)
        self.max_bytes = max_bytes
        self._clock = clock
        self._until: float | None = None
        self._held: list[_Held] = []
        self._bytes = 0

    def start(self) -> None:
        """The zipper listens from now: the window opens (a zero window never does)."""
        if self.window > 0 and self.max_bytes > 0:
            self._until = self._clock() + self.window

    def hold(self, tag: int, target: str, frame: bytes, size: int) -> bool:
        """Hold an encoded frame nobody observes yet; False when the window is over or full."""
        if self._until is None or self._clock() >= self._until:
            return False
        if self._bytes + len(frame) > self.max_bytes:
            return False
        self._bytes += len(frame)
        self._held.append(_Held(tag, target, frame, size))
        return True

    def take_for(self, tags: Sequence[int], wanted_target: str) -> list[tuple[int, int, bytes]]:
        """The held frames a new function observing ``tags`` gets: ``(tag, size, frame)``."""
        out = []
        for h in self._held:
            if h.tag in tags and (not h.target or h.target == wanted_target):
                h.taken = True
                out.append((h.tag, h.size, h.frame))
        return out

    def expire_due(self) -> list[int]:
        """Once the window is over: forget the held frames; the tags of those nobody got."""
        if self._until is None or self._clock() < self._until:
            return []
        self._until = None
        held, self._held, self._bytes = self._held, [], 0
        return [h.tag for h in held if not h.taken]
