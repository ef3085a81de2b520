"""Re-sent frames delivered once per destination: the zipper's side of ``yomo.wire.resent``.

A client whose connection went silent writes the frames the zipper's transport had not
acknowledged again on a new connection, each marked with the connection it was first
written on and its place there. A zipper that was only paused may also route those
frames from the old connection when it wakes.

So every connection has a ``Progress``: per destination (a function's connection
number, or ``FORWARDING`` for the mesh links and forwarders together) the place after
the last of its frames sent there. A frame at place ``n`` of connection ``c`` (its own,
or the one its mark names) goes to a destination only if ``n`` is past what ``c`` sent
there. A destination never gets a frame twice nor an older one after a newer one, and a
function that reconnected still gets the re-sent copies (the old connection's copies
may have gone to its old connection and died with it). An old connection's frames
that its re-sent successors overtook are skipped for the destinations that got those
(acknowledged but unread frames; the client reports them as possibly lost).

Bounded: ``MAX_DESTS`` destinations per connection (past it the oldest is forgotten);
a closed connection's progress is kept ``RETAIN`` seconds, at most ``MAX_CLOSED`` of
them; a mark naming a forgotten or unknown connection (a restarted zipper) counts for
nothing. A mark counts only between connections of the same client id
(``<client id>-<n>``, docs/protocol.md section 5). The native data path does the same in
Rust (``native/src/resend.rs``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from yomo.wire.resent import client_key, parse_resent

__all__ = ["FORWARDING", "MAX_CLOSED", "MAX_DESTS", "RETAIN", "Progress", "ResendLedger"]

#: Seconds a closed connection's count is kept for re-sends that name it.
RETAIN = 300.0
#: Closed connections remembered at most (a few hundred bytes each).
MAX_CLOSED = 65536
#: Destinations remembered per connection.
MAX_DESTS = 256
#: The destination key of the mesh links and forwarders (no connection number).
FORWARDING = -1


@dataclass
class Progress:
    """One connection's frames: how many were routed (or skipped) in order."""

    connection_id: str
    client: str
    sent: dict[int, int] = field(default_factory=dict)
    """destination -> the place after the last frame sent there (oldest first)"""

    def take(self, dest: int, at: int) -> bool:
        """Does ``dest`` lack the frame at place ``at``? Then it is booked as sent."""
        sent = self.sent
        last = sent.get(dest)
        if last is not None and at < last:
            return False
        if last is None and len(sent) >= MAX_DESTS:
            del sent[next(iter(sent))]
        sent[dest] = at + 1
        return True


class ResendLedger:
    """Every connection's ``Progress``, and the decision for each frame (module docs)."""

    def __init__(
        self,
        retain: float = RETAIN,
        max_closed: int = MAX_CLOSED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retain = retain
        self.max_closed = max_closed
        self._clock = clock
        self._open: dict[str, Progress] = {}
        self._closed: OrderedDict[str, tuple[float, Progress]] = OrderedDict()
        self.duplicates = 0
        """Frames not sent to a destination because it had them (or newer) already."""

    def opened(self, connection_id: str) -> Progress:
        """A connection registered (ids are the client's; a repeated one starts afresh)."""
        progress = Progress(connection_id, client_key(connection_id))
        self._open[connection_id] = progress
        self._closed.pop(connection_id, None)
        return progress

    def closed(self, progress: Progress) -> None:
        """The connection ended: keep its count a while for late re-sends."""
        if self._open.get(progress.connection_id) is progress:
            del self._open[progress.connection_id]
        now = self._clock()
        self._closed[progress.connection_id] = (now, progress)
        closed = self._closed
        while closed and (
            len(closed) > self.max_closed or next(iter(closed.values()))[0] < now - self.retain
        ):
            closed.popitem(last=False)

    def _find(self, connection_id: str) -> Progress | None:
        found = self._open.get(connection_id)
        if found is None:
            kept = self._closed.get(connection_id)
            found = kept[1] if kept is not None else None
        return found

    def admit(self, own: Progress, index: int, mark: str | None) -> tuple[Progress, int]:
        """Whose frame the ``index``-th frame of ``own`` is, and its place there: its own,
        or that of the connection its re-send ``mark`` names (same client, still known)."""
        if mark is not None:
            parsed = parse_resent(mark)
            if parsed is not None:
                first = self._find(parsed[0])
                if first is not None and first.client == own.client:
                    return first, parsed[1]
        return own, index

    def fresh(self, progress: Progress, at: int, dest: int) -> bool:
        """Send the frame at ``at`` of ``progress`` to ``dest``? False (and counted) if it had it."""
        if progress.take(dest, at):
            return True
        self.duplicates += 1
        return False
