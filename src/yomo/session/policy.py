"""How a session redials its zipper: client ids and the reconnect policy.

Go: core/client.go (the 1 s retry, nanoid ids).
"""

from __future__ import annotations

import base64
import os
import random
from dataclasses import dataclass

__all__ = ["ReconnectPolicy", "new_id"]


#: Ids made at once by ``new_id``: 63 random bytes are exactly 84 base64 characters,
#: so each 21-character slice is 126 random bits (Go's nanoid: 21 of 64 symbols).
_IDS_PER_BATCH = 256
_ids: list[str] = []


def new_id() -> str:
    """A 21-character URL-safe random id, like Go's nanoid (client ids, tids)."""
    # Not a secret, so the fast PRNG will do (os.urandom is a syscall per write); made
    # in batches, since a source takes one per write (list.pop is atomic for threads).
    try:
        return _ids.pop()
    except IndexError:
        pass
    text = base64.urlsafe_b64encode(random.randbytes(63 * _IDS_PER_BATCH // 4)).decode()
    _ids.extend([text[i : i + 21] for i in range(21, len(text), 21)])
    return text[:21]


# A forked child must not hand out the ids its parent still holds.
os.register_at_fork(after_in_child=_ids.clear)


@dataclass(frozen=True, kw_only=True)
class ReconnectPolicy:
    """How a client redials a broken connection (Go retries every second)."""

    initial_delay: float = 1.0
    """Seconds before the first retry (Go: 1 s)."""
    max_delay: float = 30.0
    """Cap of the exponential backoff."""
    multiplier: float = 2.0
    """Each retry waits this much longer than the last."""
    jitter: float = 0.2
    """Random +/- fraction added to every delay, so clients don't stampede."""
    connect_timeout: float = 10.0
    """``connect()`` gives up when the zipper stays unreachable this long."""
    enabled: bool = True
    """Redial broken connections; False makes a broken connection final."""
    dead_after: float = 0.8
    """A zipper silent this long while it owes an answer (written data not yet
    acknowledged, or a PING sent because frames stopped arriving) is taken as gone
    and redialled at once (0: wait for the QUIC idle timeout instead)."""
    resend: bool = True
    """Write frames the lost zipper never acknowledged again on the new connection."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        base = min(self.max_delay, self.initial_delay * self.multiplier**attempt)
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))
