"""FrameDecoder: turns a byte stream cut anywhere into whole frames, with a size bound.

Sans-IO: the transport feeds whatever bytes arrived and gets every frame they complete.
The frame size is checked from the length prefix before any of the body is kept, so a
peer cannot make us buffer more than one frame of at most ``max_frame_size`` bytes.
Go: y3.ReadPacket, which has no size bound.
"""

from __future__ import annotations

from yomo.errors import ConfigError, ProtocolError, RemoteProtocolError
from yomo.wire.frames import DEFAULT_MAX_FRAME_SIZE, Frame
from yomo.wire.parse import _BODY_DECODERS, _bad_first_byte, _too_large
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

    Strategy: whole frames are decoded in place from the bytes just fed. Only a frame cut
    by the end of a chunk is kept, as a list of pieces (``bytes`` input is kept by
    reference, other buffers are copied since the caller may reuse them); when its last
    piece arrives the pieces are joined once and decoded.
    """

    __slots__ = ("_body", "_end", "_error", "_held", "_max", "_offset", "_parts")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        """Args:
        max_frame_size: the largest frame body (bytes after the tag and length) to
            accept; larger frames are refused as soon as their length is read.

        Raises:
            ConfigError: ``max_frame_size`` is not a non-negative int (a ValueError).
        """
        if isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int):
            raise ConfigError(f"yomo: max_frame_size must be an int, not {max_frame_size!r}")
        if max_frame_size < 0:
            raise ConfigError(f"yomo: max_frame_size must be >= 0, not {max_frame_size}")
        self._max = max_frame_size
        self._error: ProtocolError | None = None
        self._offset = 0  # stream offset of the first byte not yet decoded
        # the incomplete frame: its pieces, their total size, and once its header is
        # complete where its body starts and where the frame ends (else -1)
        self._parts: list[bytes | memoryview] = []
        self._held = 0
        self._body = -1
        self._end = -1

    @property
    def max_frame_size(self) -> int:
        """The largest frame body accepted, in bytes."""
        return self._max

    @property
    def buffered(self) -> int:
        """Bytes held back as the start of an incomplete frame.

        At most ``max_frame_size + MAX_HEADER_SIZE - 1`` between calls to :meth:`feed`.
        """
        return self._held

    @property
    def error(self) -> ProtocolError | None:
        """The error that poisoned this decoder, or None."""
        return self._error

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add received bytes and return every frame completed so far, in order.

        Args:
            data: the next bytes of the stream (may be empty). ``bytes`` are not copied
                while a frame is pending; other buffers are, so they may be reused.

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
            self._parts = []
            self._held = 0
            raise

    def _feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        owned = type(data) is bytes  # immutable: pieces of it may be kept without a copy
        buf: bytes | memoryview = data if owned else memoryview(data).cast("B")  # type: ignore[assignment]
        size = len(buf)
        pos = 0
        frames: list[Frame] = []
        if self._held:
            if self._end < 0 and not self._read_header(buf):
                self._keep(buf, 0, owned)  # still no complete header: all of it is header
                return frames
            need = self._end - self._held
            if size < need:
                self._keep(buf, 0, owned)
                return frames
            self._parts.append(buf if need == size else memoryview(buf)[:need])
            frame = b"".join(self._parts)
            self._parts = []
            self._held = 0
            frames.append(_BODY_DECODERS[frame[0]](frame, self._body, self._end, self._offset))
            self._offset += self._end
            pos = need
        parsed, used = self._parse(buf, pos, self._offset - pos)
        frames += parsed
        self._offset += used - pos
        if used < size:
            self._body = self._end = -1
            self._keep(buf, used, False)  # a copy: the tail is usually a small part of data
        return frames

    def _keep(self, data: bytes | memoryview, start: int, owned: bool) -> None:
        """Hold ``data[start:]`` as the next piece of the incomplete frame."""
        if owned and start == 0:
            self._parts.append(data)
        else:
            self._parts.append(bytes(memoryview(data)[start:]))
        self._held += len(data) - start

    def _read_header(self, data: bytes | memoryview) -> bool:
        """Parse the pending frame's header from the held bytes plus the start of ``data``.

        Sets ``_body`` and ``_end`` and returns True once the header is complete; raises
        for a bad type or length. While the header is incomplete fewer than
        MAX_HEADER_SIZE bytes are held, except for a tail kept by the last feed, which is
        one piece holding the header whole.
        """
        head = self._parts[0]
        if len(head) < MAX_HEADER_SIZE:
            head = b"".join(self._parts) + bytes(memoryview(data)[:MAX_HEADER_SIZE])
        if _BODY_DECODERS.get(head[0]) is None:
            raise _bad_first_byte(head[0], self._offset)
        result = _read_length(head, 1, len(head), self._offset)
        if result is None:
            return False
        length, body = result
        if length < 0:
            raise RemoteProtocolError(f"negative frame length {length}", self._offset + 1)
        if length > self._max:
            raise _too_large(length, self._max, self._offset + 1)
        self._body = body
        self._end = body + length
        return True

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
