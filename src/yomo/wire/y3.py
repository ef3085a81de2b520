"""Y3, the TLV packet format under every YoMo frame: varints, uint32 values and packets.

docs/protocol.md section 2. Pure functions over bytes; nothing here knows about frames or I/O.
Lengths are signed varints of 7-bit groups (Go: y3 ``PVarInt32``); uint32 values are
the fewest two's-complement bytes that sign-extend back (Go: y3 ``NVarUInt32``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from yomo.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_LENGTH_BYTES",
    "NODE_FLAG",
    "SEQ_ID_MASK",
    "SLICE_FLAG",
    "Packet",
    "decode_length",
    "decode_packet",
    "decode_uint32",
    "encode_length",
    "encode_node",
    "encode_primitive",
    "encode_uint32",
]

#: Bit 7 of a tag byte: the packet is a node (a container of packets).
NODE_FLAG = 0x80
#: Bit 6 of a tag byte: the "slice" flag (never set by YoMo frames; ignored on read).
SLICE_FLAG = 0x40
#: Bits 0-5 of a tag byte: the sequence id.
SEQ_ID_MASK = 0x3F
#: A length varint never takes more than 5 bytes (35 bits hold every int32).
MAX_LENGTH_BYTES = 5

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1
_UINT32_MAX = 0xFFFFFFFF
#: Nesting bound of :func:`decode_packet`; YoMo frames nest one level.
_MAX_DEPTH = 32


def _encode_length_slow(n: int) -> bytes:
    if isinstance(n, bool) or not isinstance(n, int):
        raise LocalProtocolError(f"length must be an int, not {type(n).__name__}")
    if not _INT32_MIN <= n <= _INT32_MAX:
        raise LocalProtocolError(f"length {n} does not fit a signed 32-bit varint")
    n = int(n)
    size = 1
    # the fewest 7-bit groups whose top bit (the sign) sign-extends back to n
    while not -(1 << (7 * size - 1)) <= n < (1 << (7 * size - 1)):
        size += 1
    out = bytearray(size)
    last = size - 1
    for i in range(size):
        group = (n >> (7 * (last - i))) & 0x7F
        out[i] = group if i == last else group | 0x80
    return bytes(out)


#: encode_length for 0..8191 (one or two bytes): the sizes of almost every packet.
_LENGTHS: tuple[bytes, ...] = tuple(_encode_length_slow(i) for i in range(8192))


def encode_length(n: int) -> bytes:
    """Encode a packet length as a Y3 signed 7-bit-group varint.

    Args:
        n: a signed 32-bit value (negative only for tests; packets have n >= 0).

    Returns:
        The fewest groups that keep the sign: 63 -> ``3F``, 64 -> ``80 40``.

    Raises:
        LocalProtocolError: ``n`` is not an int or outside the int32 range.
    """
    if type(n) is int and 0 <= n < 8192:
        return _LENGTHS[n]
    return _encode_length_slow(n)


def _read_length(
    buf: bytes | bytearray | memoryview, offset: int, end: int, base: int = 0
) -> tuple[int, int] | None:
    """Read a length varint from ``buf[offset:end]``; None when more bytes are needed.

    Raises RemoteProtocolError for a varint longer than 5 bytes or outside int32;
    ``base`` is added to error offsets (where ``buf`` sits in the whole input).
    The sign is not checked here: callers decide what a negative length means.
    """
    if offset >= end:
        return None
    b = buf[offset]
    if b < 0x80:  # one group; bit 6 is the sign
        return (b - 0x80 if b & 0x40 else b), offset + 1
    value = (b & 0x7F) - 0x80 if b & 0x40 else b & 0x7F
    p = offset + 1
    limit = offset + MAX_LENGTH_BYTES
    while p < limit:
        if p >= end:
            return None
        b = buf[p]
        p += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            if not _INT32_MIN <= value <= _INT32_MAX:
                raise RemoteProtocolError(
                    f"length varint value {value} does not fit in 32 bits", offset=base + offset
                )
            return value, p
    raise RemoteProtocolError(
        f"length varint longer than {MAX_LENGTH_BYTES} bytes", offset=base + offset
    )


def decode_length(buf: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode a Y3 length varint starting at ``offset``.

    Args:
        buf: the bytes holding the varint.
        offset: where the varint starts.

    Returns:
        ``(value, new_offset)``; value is signed (the caller rejects negatives).

    Raises:
        RemoteProtocolError: the varint is truncated, longer than 5 bytes or beyond int32.
    """
    view = buf if type(buf) is bytes else memoryview(buf).cast("B")
    result = _read_length(view, offset, len(view))
    if result is None:
        raise RemoteProtocolError("length varint runs past the end of the input", offset=offset)
    return result


def _coerce_uint32(v: object, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise LocalProtocolError(f"{what} must be an int, not {type(v).__name__}")
    if not 0 <= v <= _UINT32_MAX:
        raise LocalProtocolError(f"{what} {v} is outside the uint32 range 0..0xFFFFFFFF")
    return int(v)


def encode_uint32(v: int) -> bytes:
    """Encode a uint32 as Y3 ``NVarUInt32``: minimal big-endian two's complement of int32(v).

    Args:
        v: 0..0xFFFFFFFF.

    Returns:
        1 to 4 bytes: 1 -> ``01``, 128 -> ``00 80``, 0xFFFFFFFF -> ``FF``.

    Raises:
        LocalProtocolError: ``v`` is not an int in the uint32 range.
    """
    if type(v) is not int or not 0 <= v <= _UINT32_MAX:
        v = _coerce_uint32(v, "uint32 value")
    s = v - 0x100000000 if v & 0x80000000 else v
    if -0x80 <= s < 0x80:
        size = 1
    elif -0x8000 <= s < 0x8000:
        size = 2
    elif -0x800000 <= s < 0x800000:
        size = 3
    else:
        size = 4
    return s.to_bytes(size, "big", signed=True)


def decode_uint32(b: bytes | bytearray | memoryview, *, at: int = 0) -> int:
    """Decode a Y3 ``NVarUInt32`` value (the whole of ``b``).

    Args:
        b: 1 to 4 bytes.
        at: where ``b`` sits in a larger input, for the error's offset.

    Returns:
        The value sign-extended from the first byte, taken as unsigned 32 bits.

    Raises:
        RemoteProtocolError: ``b`` is empty or longer than 4 bytes.
    """
    n = len(b)
    if n == 0:
        raise RemoteProtocolError("empty uint32 value", offset=at)
    if n > 4:
        raise RemoteProtocolError(f"uint32 value is {n} bytes long, at most 4 allowed", offset=at)
    return int.from_bytes(b, "big", signed=True) & _UINT32_MAX


def _check_seq_id(seq_id: int) -> int:
    if isinstance(seq_id, bool) or not isinstance(seq_id, int) or not 0 <= seq_id <= SEQ_ID_MASK:
        raise LocalProtocolError(f"sequence id must be an int in 0..0x3F, got {seq_id!r}")
    return int(seq_id)


def encode_primitive(seq_id: int, value: bytes | bytearray | memoryview) -> bytes:
    """Encode a primitive packet: tag byte ``seq_id``, length, ``value``.

    Raises:
        LocalProtocolError: ``seq_id`` is not in 0..0x3F or ``value`` is not bytes-like.
    """
    tag = _check_seq_id(seq_id)
    try:
        n = memoryview(value).nbytes
    except TypeError:
        raise LocalProtocolError(
            f"packet value must be bytes-like, not {type(value).__name__}"
        ) from None
    return b"".join((bytes((tag,)), encode_length(n), value))


def encode_node(seq_id: int, children: Iterable[bytes]) -> bytes:
    """Encode a node packet whose value is the concatenation of encoded ``children``.

    Raises:
        LocalProtocolError: ``seq_id`` is not in 0..0x3F or a child is not bytes-like.
    """
    tag = _check_seq_id(seq_id) | NODE_FLAG
    try:
        body = b"".join(children)
    except TypeError:
        raise LocalProtocolError("node children must be encoded packets (bytes)") from None
    return b"".join((bytes((tag,)), encode_length(len(body)), body))


@dataclass(frozen=True, slots=True, kw_only=True)
class Packet:
    """One decoded Y3 packet.

    ``children`` is None for a primitive packet and the decoded child packets for a node.
    ``value`` is the raw value bytes either way.
    """

    seq_id: int
    value: bytes = b""
    children: tuple[Packet, ...] | None = None

    @property
    def is_node(self) -> bool:
        """Whether this is a node (container) packet."""
        return self.children is not None

    def encode(self) -> bytes:
        """Encode back to bytes (a node from its children, a primitive from its value)."""
        if self.children is not None:
            return encode_node(self.seq_id, (c.encode() for c in self.children))
        return encode_primitive(self.seq_id, self.value)


def _decode_packet(
    buf: bytes | memoryview, offset: int, end: int, depth: int
) -> tuple[Packet, int]:
    if offset >= end:
        raise RemoteProtocolError("expected a packet tag byte, input ended", offset=offset)
    tag = buf[offset]
    result = _read_length(buf, offset + 1, end)
    if result is None:
        raise RemoteProtocolError("packet length runs past the end of the input", offset=offset + 1)
    length, p = result
    if length < 0:
        raise RemoteProtocolError(f"negative packet length {length}", offset=offset + 1)
    stop = p + length
    if stop > end:
        raise RemoteProtocolError(
            f"packet length {length} runs past the end of the input ({end - p} bytes left)",
            offset=offset + 1,
        )
    value = bytes(buf[p:stop])
    seq_id = tag & SEQ_ID_MASK
    if not tag & NODE_FLAG:
        return Packet(seq_id=seq_id, value=value), stop
    if depth >= _MAX_DEPTH:
        raise RemoteProtocolError(f"packets nested deeper than {_MAX_DEPTH}", offset=offset)
    children: list[Packet] = []
    while p < stop:
        child, p = _decode_packet(buf, p, stop, depth + 1)
        children.append(child)
    return Packet(seq_id=seq_id, value=value, children=tuple(children)), stop


def decode_packet(buf: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Packet, int]:
    """Decode one packet (recursively for nodes) starting at ``offset``.

    Args:
        buf: the input; bytes after the packet are left alone.
        offset: where the packet's tag byte is.

    Returns:
        ``(packet, new_offset)`` with new_offset just past the packet.

    Raises:
        RemoteProtocolError: truncated input, a negative or oversized length, a child
            that runs past its node, or nesting deeper than 32.
    """
    view = buf if type(buf) is bytes else memoryview(buf).cast("B")
    return _decode_packet(view, offset, len(view), 0)
