"""Decoding YoMo frames: bytes to the frames of ``frames.py`` (docs/protocol.md section 3).

The other half of ``frames.py`` (the frames and their encoding): a body decoder per
frame type, ``decode_frame`` for one whole frame, and what the stream decoder
(``decoder.py``) uses to split a stream. Bad bytes raise RemoteProtocolError with the
offset. The DataFrame path is hand-written for speed because the zipper runs it for
every message. Go: pkg/frame-codec/y3codec/*.go (the Decode functions).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, TypeAlias

from yomo.errors import RemoteProtocolError
from yomo.wire.frames import (
    ConnectToFrame,
    DataFrame,
    Frame,
    FrameType,
    GoawayFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
)
from yomo.wire.y3 import _read_length, decode_uint32

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["decode_frame", "make_data_frame"]

## A body decoder takes (buf, start, end, base): the frame's value is buf[start:end] and
# ``base`` is where buf[0] sits in the caller's stream, for error offsets. ``buf`` is bytes
# or a flat byte memoryview; fields are copied out as bytes/str.

_BodyDecoder: TypeAlias = "Callable[[bytes | memoryview, int, int, int], Frame]"


def _child_length(
    buf: bytes | memoryview, p: int, end: int, base: int, what: str
) -> tuple[int, int]:
    result = _read_length(buf, p, end, base)
    if result is None:
        raise RemoteProtocolError(f"{what}: child length runs past the end of the frame", base + p)
    if result[0] < 0:
        raise RemoteProtocolError(f"{what}: negative child length {result[0]}", base + p)
    return result


def _node_child(what: str, t: int, at: int) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"{what}: child tag byte {t:#04x} is a node packet; frame children must be primitive", at
    )


def _past_end(what: str, sid: int, n: int, left: int, at: int) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"{what}: child {sid:#04x} length {n} runs past the end of the frame ({left} bytes left)",
        at,
    )


def _children(
    buf: bytes | memoryview, p: int, end: int, base: int, what: str
) -> list[tuple[int, int, int]]:
    """Split a frame body into (sequence id, value start, value end) of its children."""
    out: list[tuple[int, int, int]] = []
    while p < end:
        t = buf[p]
        if t & 0x80:
            raise _node_child(what, t, base + p)
        p += 1
        if p < end and buf[p] < 0x40:
            n = buf[p]
            p += 1
        else:
            n, p = _child_length(buf, p, end, base, what)
        q = p + n
        if q > end:
            raise _past_end(what, t & 0x3F, n, end - p, base + p)
        out.append((t & 0x3F, p, q))
        p = q
    return out


def _utf8(buf: bytes | memoryview, p: int, q: int, base: int, what: str) -> str:
    try:
        return str(buf[p:q], "utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"{what} is not valid UTF-8", base + p + exc.start) from None


_new_object = object.__new__
# Slot setters of DataFrame: build decoded frames without the frozen __init__ (about twice
# as fast); decoded fields are valid by construction.
_set_tag = DataFrame.__dict__["tag"].__set__
_set_metadata = DataFrame.__dict__["metadata"].__set__
_set_payload = DataFrame.__dict__["payload"].__set__


def make_data_frame(tag: int, metadata: bytes, payload: bytes) -> DataFrame:
    """A DataFrame from parts already decoded and checked (the native reader's output)."""
    frame = _new_object(DataFrame)
    _set_tag(frame, tag)
    _set_metadata(frame, metadata)
    _set_payload(frame, payload)
    return frame


def _decode_data(buf: bytes | memoryview, start: int, end: int, base: int) -> DataFrame:
    # Go: y3codec decodeDataFrame. This runs for every message through the zipper, so the
    # layout Go writes (01 tag, 03 metadata, 02 payload, lengths below 8192) is read
    # straight-line; anything else, including every malformed input, goes to the loop.
    try:
        # reads stay below ``end``: buf may hold the next frame's bytes after it
        n = buf[start + 1] if end - start >= 7 and buf[start] == 0x01 else 0
        if n == 1:
            tag = buf[start + 2]
            if tag >= 0x80:
                tag |= 0xFFFFFF00
        elif 1 < n <= 4 and end - start >= 6 + n:
            tag = int.from_bytes(buf[start + 2 : start + 2 + n], "big", signed=True) & 0xFFFFFFFF
        else:
            n = 0
        if n:
            p = start + 2 + n
            if buf[p] == 0x03:
                n = buf[p + 1]
                if n < 0x40:
                    p += 2
                elif 0x80 <= n < 0xC0 and buf[p + 2] < 0x80:
                    n = ((n & 0x3F) << 7) | buf[p + 2]
                    p += 3
                else:
                    n = -1
                q = p + n
                if n >= 0 and q + 1 < end and buf[q] == 0x02:
                    metadata = buf[p:q]
                    p = q + 1
                    n = buf[p]
                    if n < 0x40:
                        p += 1
                    elif 0x80 <= n < 0xC0 and p + 1 < end and buf[p + 1] < 0x80:
                        n = ((n & 0x3F) << 7) | buf[p + 1]
                        p += 2
                    else:
                        n = -1
                    if n >= 0 and p + n == end:
                        payload = buf[p:end]
                        if type(buf) is not bytes:
                            metadata = bytes(metadata)
                            payload = bytes(payload)
                        frame = _new_object(DataFrame)
                        _set_tag(frame, tag)
                        _set_metadata(frame, metadata)
                        _set_payload(frame, payload)
                        return frame
    except IndexError:
        pass
    return _decode_data_any(buf, start, end, base)


def _decode_data_any(buf: bytes | memoryview, p: int, end: int, base: int) -> DataFrame:
    # Any child order, repeats, unknown children, every length form; reports errors.
    tag = 0
    metadata: bytes | memoryview = b""
    payload: bytes | memoryview = b""
    while p < end:
        t = buf[p]
        if t & 0x80:
            raise _node_child("DataFrame", t, base + p)
        p += 1
        if p + 1 < end:
            n = buf[p]
            if n < 0x40:  # 0..63
                p += 1
            elif 0x80 <= n < 0xC0 and buf[p + 1] < 0x80:  # 64..8191
                n = ((n & 0x3F) << 7) | buf[p + 1]
                p += 2
            else:
                n, p = _child_length(buf, p, end, base, "DataFrame")
        else:
            n, p = _child_length(buf, p, end, base, "DataFrame")
        q = p + n
        if q > end:
            raise _past_end("DataFrame", t & 0x3F, n, end - p, base + p)
        t &= 0x3F
        if t == 0x02:
            payload = buf[p:q]
        elif t == 0x03:
            metadata = buf[p:q]
        elif t == 0x01:
            if n == 1:
                tag = buf[p]
                if tag >= 0x80:
                    tag |= 0xFFFFFF00
            else:
                tag = decode_uint32(buf[p:q], at=base + p)
        p = q
    # the uncommon layout: a call is fine; fields of a memoryview are copied out as bytes
    return make_data_frame(tag, bytes(metadata), bytes(payload))


def _decode_handshake(buf: bytes | memoryview, p: int, end: int, base: int) -> HandshakeFrame:
    # Go: y3codec decodeHandshakeFrame
    what = "HandshakeFrame"
    fields: dict[str, object] = {}
    for sid, a, b in _children(buf, p, end, base, what):
        if sid == 0x01:
            fields["name"] = _utf8(buf, a, b, base, "HandshakeFrame name")
        elif sid == 0x03:
            fields["id"] = _utf8(buf, a, b, base, "HandshakeFrame id")
        elif sid == 0x02:
            if b - a != 1:
                raise RemoteProtocolError(
                    f"HandshakeFrame client type is {b - a} bytes long, expected 1", base + a
                )
            fields["client_type"] = buf[a]
        elif sid == 0x06:
            if (b - a) % 4:
                raise RemoteProtocolError(
                    f"HandshakeFrame observed tags are {b - a} bytes, not a multiple of 4",
                    base + a,
                )
            fields["observe_data_tags"] = struct.unpack(f"<{(b - a) // 4}I", buf[a:b])
        elif sid == 0x04:
            fields["auth_name"] = _utf8(buf, a, b, base, "HandshakeFrame auth name")
        elif sid == 0x05:
            fields["auth_payload"] = _utf8(buf, a, b, base, "HandshakeFrame auth payload")
        elif sid == 0x07:
            fields["version"] = _utf8(buf, a, b, base, "HandshakeFrame version")
        elif sid == 0x09:
            fields["function_definition"] = bytes(buf[a:b])
        elif sid == 0x08:
            fields["wanted_target"] = _utf8(buf, a, b, base, "HandshakeFrame wanted target")
    return HandshakeFrame(**fields)  # type: ignore[arg-type]


def _decode_ack(buf: bytes | memoryview, p: int, end: int, base: int) -> HandshakeAckFrame:
    _children(buf, p, end, base, "HandshakeAckFrame")  # well-formed, content ignored
    return HandshakeAckFrame()


def _message(buf: bytes | memoryview, p: int, end: int, base: int, what: str) -> str:
    value = ""
    for sid, a, b in _children(buf, p, end, base, what):
        if sid == 0x01:
            value = _utf8(buf, a, b, base, what)
    return value


def _decode_rejected(buf: bytes | memoryview, p: int, end: int, base: int) -> RejectedFrame:
    return RejectedFrame(message=_message(buf, p, end, base, "RejectedFrame message"))


def _decode_goaway(buf: bytes | memoryview, p: int, end: int, base: int) -> GoawayFrame:
    return GoawayFrame(message=_message(buf, p, end, base, "GoawayFrame message"))


def _decode_connect_to(buf: bytes | memoryview, p: int, end: int, base: int) -> ConnectToFrame:
    return ConnectToFrame(endpoint=_message(buf, p, end, base, "ConnectToFrame endpoint"))


#: Body decoder by the frame's first byte (``type | 0x80``).
_BODY_DECODERS: dict[int, _BodyDecoder] = {
    FrameType.DATA | 0x80: _decode_data,
    FrameType.HANDSHAKE | 0x80: _decode_handshake,
    FrameType.HANDSHAKE_ACK | 0x80: _decode_ack,
    FrameType.REJECTED | 0x80: _decode_rejected,
    FrameType.GOAWAY | 0x80: _decode_goaway,
    FrameType.CONNECT_TO | 0x80: _decode_connect_to,
}


def _bad_first_byte(b: int, at: int) -> RemoteProtocolError:
    if not b & 0x80:
        return RemoteProtocolError(
            f"expected a frame (a node packet), got a primitive packet tag byte {b:#04x}", at
        )
    return RemoteProtocolError(f"unknown frame type {b & 0x7F:#04x} (tag byte {b:#04x})", at)


def _too_large(size: int, limit: int, at: int) -> RemoteProtocolError:
    return RemoteProtocolError(f"frame of {size} bytes exceeds the limit of {limit} bytes", at)


def decode_frame(
    data: bytes | bytearray | memoryview, *, max_frame_size: int | None = None
) -> Frame:
    """Decode exactly one whole frame.

    Args:
        data: the frame's bytes, nothing before or after.
        max_frame_size: refuse a frame body longer than this (default: no limit).

    Returns:
        The frame. Unknown children are ignored, a repeated child's last copy wins and a
        missing child leaves its field at the default (docs/protocol.md section 2).

    Raises:
        RemoteProtocolError: empty or truncated input, trailing bytes, an unknown frame
            type, a negative or too large length, or a bad child. The message says what
            and the ``offset`` says where.
    """
    buf = data if type(data) is bytes else memoryview(data).cast("B")
    size = len(buf)
    if size == 0:
        raise RemoteProtocolError("expected a frame, got empty input", 0)
    decode = _BODY_DECODERS.get(buf[0])
    if decode is None:
        raise _bad_first_byte(buf[0], 0)
    if size > 2 and 0x80 <= buf[1] < 0xC0 and buf[2] < 0x80:  # 64..8191, the common case
        length = ((buf[1] & 0x3F) << 7) | buf[2]
        p = 3
    else:
        result = _read_length(buf, 1, size)
        if result is None:
            raise RemoteProtocolError("frame length runs past the end of the input", 1)
        length, p = result
        if length < 0:
            raise RemoteProtocolError(f"negative frame length {length}", 1)
    if max_frame_size is not None and length > max_frame_size:
        raise _too_large(length, max_frame_size, 1)
    end = p + length
    if end > size:
        raise RemoteProtocolError(
            f"frame length {length} runs past the end of the input ({size - p} bytes left)", 1
        )
    if end < size:
        raise RemoteProtocolError(f"{size - end} trailing bytes after the frame", end)
    return decode(buf, p, end, 0)
