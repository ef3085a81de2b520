"""FrameDecoder: turns a byte stream cut anywhere into whole frames, with a size bound.

Sans-IO: the transport feeds whatever bytes arrived and gets every frame they complete.
The frame size is checked from the length prefix before any of the body is kept, so a
peer cannot make us buffer more than one frame of at most ``max_frame_size`` bytes.
Go: y3.ReadPacket, which has no size bound.
"""

from __future__ import annotations

from yomo.errors import ProtocolError, RemoteProtocolError
from yomo.wire.frames import (
    _BODY_DECODERS,
    DEFAULT_MAX_FRAME_SIZE,
    Frame,
    _bad_first_byte,
    _too_large,
)
from yomo.wire.y3 import MAX_LENGTH_BYTES, _read_length

__all__ = ["MAX_HEADER_SIZE", "FrameDecoder"]

#: A frame header is the tag byte plus a length varint of at most 5 bytes.
MAX_HEADER_SIZE = 1 + MAX_LENGTH_BYTES


class FrameDecoder:
    """Incremental frame reader for one direction of one stream.

    Feed it bytes in any chunking (one byte at a time works); it returns the frames that
    are complete and keeps the partial rest. After a :class:`~yomo.errors.ProtocolError`
    it is poisoned: the buffer is dropped and every later :meth:`feed` raises the same
    error, because the stream can no longer be resynchronised.
    """

    __slots__ = ("_buf", "_error", "_max", "_offset")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        """Args:
        max_frame_size: the largest frame body (bytes after the tag and length) to
            accept; larger frames are refused as soon as their length is read.

        Raises:
            ValueError: ``max_frame_size`` is not a non-negative int.
        """
        if isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int):
            raise ValueError(f"yomo: max_frame_size must be an int, not {max_frame_size!r}")
        if max_frame_size < 0:
            raise ValueError(f"yomo: max_frame_size must be >= 0, not {max_frame_size}")
        self._max = max_frame_size
        self._buf = bytearray()
        self._error: ProtocolError | None = None
        self._offset = 0  # stream offset of self._buf[0], for error messages

    @property
    def max_frame_size(self) -> int:
        """The largest frame body accepted, in bytes."""
        return self._max

    @property
    def buffered(self) -> int:
        """Bytes held back as the start of an incomplete frame.

        At most ``max_frame_size + MAX_HEADER_SIZE - 1`` between calls to :meth:`feed`.
        """
        return len(self._buf)

    @property
    def error(self) -> ProtocolError | None:
        """The error that poisoned this decoder, or None."""
        return self._error

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add received bytes and return every frame completed so far, in order.

        Args:
            data: the next bytes of the stream (may be empty).

        Returns:
            The complete frames; the rest of an incomplete frame stays buffered.

        Raises:
            RemoteProtocolError: the stream holds an invalid frame: an unknown frame type,
                a negative length, a body longer than ``max_frame_size``, or a bad child.
                Frames completed earlier in the same ``data`` are dropped with it, since
                the connection is to be closed. The decoder is poisoned afterwards.
            ProtocolError: the decoder was already poisoned (the original error again).
        """
        if self._error is not None:
            raise self._error
        try:
            return self._feed(data)
        except ProtocolError as exc:
            self._error = exc
            self._buf = bytearray()
            raise

    def _feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        if type(data) is not bytes:
            data = memoryview(data).cast("B")
        frames: list[Frame] = []
        pos = 0
        size = len(data)
        buf = self._buf
        if buf:
            # Finish the frame begun in an earlier feed, taking only the bytes it needs, so
            # the frames after it are read straight from ``data`` without another copy.
            while (header := self._pending_header(buf)) is None:
                if pos >= size:
                    return frames
                buf.append(data[pos])
                pos += 1
            body, end = header
            take = min(end - len(buf), size - pos)
            if take > 0:
                buf += memoryview(data)[pos : pos + take]
                pos += take
            if len(buf) < end:
                return frames
            decode = _BODY_DECODERS[buf[0]]
            with memoryview(buf) as view:
                frames.append(decode(view, body, end, self._offset))
            self._offset += end
            self._buf = bytearray()
        parsed, used = self._parse(data, pos, self._offset - pos)
        frames += parsed
        self._offset += used - pos
        if used < size:
            self._buf = bytearray(memoryview(data)[used:])
        return frames

    def _pending_header(self, buf: bytearray) -> tuple[int, int] | None:
        """Where the body of the frame starting ``buf`` begins and ends.

        None while the header is incomplete; raises for a bad type or length.
        """
        if _BODY_DECODERS.get(buf[0]) is None:
            raise _bad_first_byte(buf[0], self._offset)
        result = _read_length(buf, 1, len(buf), self._offset)
        if result is None:
            return None
        length, p = result
        if length < 0:
            raise RemoteProtocolError(f"negative frame length {length}", self._offset + 1)
        if length > self._max:
            raise _too_large(length, self._max, self._offset + 1)
        return p, p + length

    def _parse(self, buf: bytes | memoryview, pos: int, base: int) -> tuple[list[Frame], int]:
        """Decode the whole frames in ``buf`` from ``pos``; return them and where they end.

        ``base`` is the stream offset of ``buf[0]``, for error messages.
        """
        frames: list[Frame] = []
        size = len(buf)
        limit = self._max
        while pos < size:
            decode = _BODY_DECODERS.get(buf[pos])
            if decode is None:
                raise _bad_first_byte(buf[pos], base + pos)
            p = pos + 1
            if p >= size:
                break
            b = buf[p]
            if b < 0x40:  # one-byte length, 0..63
                length = b
                p += 1
            elif 0x80 <= b < 0xC0 and p + 1 < size and buf[p + 1] < 0x80:  # 64..8191
                length = ((b & 0x3F) << 7) | buf[p + 1]
                p += 2
            else:
                result = _read_length(buf, p, size, base)
                if result is None:
                    break
                length, p = result
                if length < 0:
                    raise RemoteProtocolError(f"negative frame length {length}", base + pos + 1)
            if length > limit:
                raise _too_large(length, limit, base + pos + 1)
            end = p + length
            if end > size:
                break
            frames.append(decode(buf, p, end, base))
            pos = end
        return frames, pos
