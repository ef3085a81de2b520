"""A connection's buffering and backpressure, as plain objects driven by explicit calls.

No I/O, no event loop, no QUIC library: the frame connections feed received
bytes in, take frames out, tell the send backlog, and act on the answers
(pause or resume reading, block or release writers). Unit-tested on their own
in ``tests/unit/test_transport_buffer.py``.

* receiving: decoded frames wait here; above ``high_water`` bytes the
  connection should stop reading, at or below half of it it may resume;
* sending: a writer waits while more than ``high_water`` bytes are unsent and
  is released at or below half of it (hysteresis, so a writer does not wake
  for every acknowledged packet).
"""

from __future__ import annotations

from collections import deque

from yomo.wire import Frame, FrameDecoder

__all__ = ["FRAME_OVERHEAD", "FrameBuffer", "SendGate", "frame_size"]

#: Bytes a queued frame counts beyond its payload (the object and its metadata).
FRAME_OVERHEAD = 64


def frame_size(frame: Frame) -> int:
    """What one queued frame counts against the receive high-water mark."""
    payload = getattr(frame, "payload", None)
    return FRAME_OVERHEAD + (len(payload) if payload is not None else 0)


class FrameBuffer:
    """Received bytes in, decoded frames out, with the receive high-water mark.

    ``feed`` raises ``RemoteProtocolError`` (from the decoder) for bytes that are
    not frames; the buffer is then poisoned like the decoder.
    """

    __slots__ = ("_decoder", "_frames", "high_water", "low_water", "size")

    def __init__(self, *, max_frame_size: int, high_water: int) -> None:
        self._decoder = FrameDecoder(max_frame_size=max_frame_size)
        self._frames: deque[tuple[Frame, int]] = deque()
        self.high_water = high_water
        self.low_water = high_water // 2
        """Reading may resume at or below this many bytes (``may_resume``)."""
        self.size = 0
        """Bytes of the frames waiting to be read (see ``frame_size``)."""

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def partial(self) -> int:
        """Bytes of a frame received only in part."""
        return self._decoder.buffered

    @property
    def over_high_water(self) -> bool:
        """True while the reader is behind: stop taking data from the peer."""
        return self.size > self.high_water

    @property
    def may_resume(self) -> bool:
        """True once the reader caught up to half the high-water mark."""
        return self.size <= self.low_water

    def feed(self, data: bytes) -> int:
        """Decode ``data``; returns how many whole frames it completed."""
        frames = self._decoder.feed(data)
        for frame in frames:
            size = frame_size(frame)
            self._frames.append((frame, size))
            self.size += size
        return len(frames)

    def pop(self) -> Frame | None:
        """The oldest waiting frame, or None when there is none."""
        if not self._frames:
            return None
        frame, size = self._frames.popleft()
        self.size -= size
        return frame


class SendGate:
    """When a writer must wait for the peer and when it may go on, from the send backlog."""

    __slots__ = ("high_water",)

    def __init__(self, high_water: int) -> None:
        self.high_water = high_water

    def blocks(self, backlog: int) -> bool:
        """True when ``backlog`` unsent bytes must make writers wait (past high water)."""
        return backlog > self.high_water

    def releases(self, backlog: int) -> bool:
        """True when waiting writers may go on (``backlog`` at half high water or less)."""
        return backlog <= self.high_water // 2
