"""The six YoMo frames as dataclasses, and their Y3 encoding (docs/protocol.md section 3).

A frame is one Y3 node packet whose sequence id is the frame type and whose children are
primitive packets. Encoding invalid values raises LocalProtocolError; decoding is
``parse.py``. The DataFrame path is hand-written for speed because the zipper runs it for
every message. Go: pkg/frame-codec/y3codec/*.go.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from yomo.errors import LocalProtocolError, ReservedTagError, TagError
from yomo.wire.y3 import _LENGTHS, encode_length, encode_uint32

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "MAX_TAG",
    "RESERVED_TAG_MAX",
    "RESERVED_TAG_MIN",
    "ClientType",
    "ConnectToFrame",
    "DataFrame",
    "Frame",
    "FrameType",
    "GoawayFrame",
    "HandshakeAckFrame",
    "HandshakeFrame",
    "RejectedFrame",
    "check_tag",
    "data_frame_encoder",
    "encode_data_frame",
    "encode_frame",
]

#: Largest frame body (the node's value, after the tag byte and length) we accept.
#: Go has no bound; we need one so a peer cannot make us buffer without end.
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
#: First data tag reserved for the system (Go v1.19+ refuse to write 0xF000..0xFFFF).
RESERVED_TAG_MIN = 0xF000
#: Last data tag reserved for the system.
RESERVED_TAG_MAX = 0xFFFF
#: Data tags are uint32.
MAX_TAG = 0xFFFFFFFF


class FrameType(IntEnum):
    """Frame type codes; the first byte on the wire is ``type | 0x80``. Go: core/frame/frame.go."""

    DATA = 0x3F
    HANDSHAKE = 0x31
    HANDSHAKE_ACK = 0x29
    REJECTED = 0x39
    GOAWAY = 0x2E
    CONNECT_TO = 0x3E


class ClientType(IntEnum):
    """What kind of client sent a HandshakeFrame. Go: core/frame/frame.go ClientType."""

    SOURCE = 0x5F
    UPSTREAM_ZIPPER = 0x5E
    STREAM_FUNCTION = 0x5D


def _tag_hint(value: object) -> str:
    """For a tag written as text ("0x33", "51"): how to write it as an int."""
    if isinstance(value, str):
        try:
            return f" (write {int(value.strip(), 0):#x}, not {value!r})"
        except ValueError:
            pass
    return ""


def check_tag(tag: int) -> int:
    """Check that ``tag`` is a data tag an application may write.

    Returns:
        ``tag`` as a plain int.

    Raises:
        TypeError: not an int (e.g. the string ``"0x33"``).
        TagError: outside 0..0xFFFFFFFF.
        ReservedTagError: in 0xF000..0xFFFF.
    """
    if isinstance(tag, bool) or not isinstance(tag, int):
        hint = _tag_hint(tag)
        raise TypeError(f"yomo: tag must be an int like 0x33, not {type(tag).__name__}{hint}")
    if not 0 <= tag <= MAX_TAG:
        shown = f"-{-tag:#x}" if tag < 0 else f"{tag:#x}"
        raise TagError(f"tag {shown} is out of range: data tags are 0x0..0xffffffff")
    if RESERVED_TAG_MIN <= tag <= RESERVED_TAG_MAX:
        raise ReservedTagError(f"tag {tag:#x} is reserved for the system (0xF000..0xFFFF)")
    return int(tag)


# --------------------------------------------------------------------------- encoding

#: Child headers (tag byte + length) for lengths below 8192, the common case.
_PAYLOAD_HEADS: tuple[bytes, ...] = tuple(b"\x02" + h for h in _LENGTHS)
_METADATA_HEADS: tuple[bytes, ...] = tuple(b"\x03" + h for h in _LENGTHS)
#: Encoded tag children (``01 len value``) of recently used tags; bounded.
_TAG_CHILDREN: dict[int, bytes] = {}
_TAG_CHILDREN_MAX = 4096


def _tag_child(tag: object) -> bytes:
    if isinstance(tag, bool) or not isinstance(tag, int):
        raise LocalProtocolError(f"DataFrame tag must be an int, not {type(tag).__name__}")
    if not 0 <= tag <= MAX_TAG:
        raise LocalProtocolError(f"DataFrame tag {tag} is outside the uint32 range 0..0xFFFFFFFF")
    tag = int(tag)
    value = encode_uint32(tag)
    child = b"\x01" + _LENGTHS[len(value)] + value
    if len(_TAG_CHILDREN) < _TAG_CHILDREN_MAX:
        _TAG_CHILDREN[tag] = child
    return child


def _as_bytes(value: object, what: str) -> bytes | memoryview:
    """Bytes as they are; other buffers as a flat byte view; anything else is an error."""
    if type(value) is bytes:
        return value
    try:
        view = memoryview(value)  # type: ignore[arg-type]
        flat = view.format == "B" and view.ndim == 1 and view.c_contiguous
        return view if flat else view.cast("B")
    except TypeError:  # not a buffer, or a non-contiguous one
        raise LocalProtocolError(
            f"{what} must be bytes (or a contiguous buffer), not {type(value).__name__}"
        ) from None


def encode_data_frame(tag: int, metadata: bytes | memoryview, payload: bytes | memoryview) -> bytes:
    """Encode a DataFrame without building a :class:`DataFrame` (the zipper's hot path).

    Args:
        tag: the data tag, 0..0xFFFFFFFF (reserved tags are not refused here).
        metadata: opaque metadata bytes (msgpack, see :mod:`yomo.wire.metadata`).
        payload: the application data.

    Returns:
        ``BF len 01 len tag 03 len metadata 02 len payload``, Go's child order.

    Raises:
        LocalProtocolError: a tag outside uint32, or metadata/payload not bytes-like.
    """
    child = _TAG_CHILDREN.get(tag) if type(tag) is int else None
    if child is None:
        child = _tag_child(tag)
    if type(metadata) is not bytes:
        metadata = _as_bytes(metadata, "DataFrame metadata")
    if type(payload) is not bytes:
        payload = _as_bytes(payload, "DataFrame payload")
    mlen = len(metadata)
    plen = len(payload)
    mhead = _METADATA_HEADS[mlen] if mlen < 8192 else b"\x03" + encode_length(mlen)
    phead = _PAYLOAD_HEADS[plen] if plen < 8192 else b"\x02" + encode_length(plen)
    size = len(child) + len(mhead) + mlen + len(phead) + plen
    head = _LENGTHS[size] if size < 8192 else encode_length(size)
    return b"".join((b"\xbf", head, child, mhead, metadata, phead, payload))


def data_frame_encoder(
    metadata_head: bytes, tail_size: int
) -> Callable[[int, bytes, bytes], bytes]:
    """A fast encoder for DataFrames whose metadata is ``metadata_head`` followed by
    ``tail_size`` bytes that change per frame (a source's writes differ only in the tid).

    Returns ``encode(tag, tail, payload)``, byte for byte
    ``encode_data_frame(tag, metadata_head + tail, payload)``, the constant part built
    once per tag. The caller has checked the tag (``check_tag``), that ``tail`` has
    ``tail_size`` bytes and that ``payload`` is ``bytes``.
    """
    mlen = len(metadata_head) + tail_size
    mhead = _METADATA_HEADS[mlen] if mlen < 8192 else b"\x03" + encode_length(mlen)
    heads: dict[int, bytes] = {}

    def encode(tag: int, tail: bytes, payload: bytes) -> bytes:
        head = heads.get(tag)
        if head is None:
            head = _tag_child(tag) + mhead + metadata_head
            if len(heads) < 256:
                heads[tag] = head
        plen = len(payload)
        phead = _PAYLOAD_HEADS[plen] if plen < 8192 else b"\x02" + encode_length(plen)
        size = len(head) + tail_size + len(phead) + plen
        length = _LENGTHS[size] if size < 8192 else encode_length(size)
        return b"".join((b"\xbf", length, head, tail, phead, payload))

    return encode


def _str_value(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} must be a str, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{what} cannot be encoded as UTF-8: {exc.reason}") from None


def _primitive(seq_id: int, value: bytes | memoryview) -> bytes:
    n = len(value)
    return b"".join((bytes((seq_id,)), _LENGTHS[n] if n < 8192 else encode_length(n), value))


def _node(frame_type: FrameType, children: list[bytes]) -> bytes:
    body = b"".join(children)
    n = len(body)
    head = _LENGTHS[n] if n < 8192 else encode_length(n)
    return b"".join((bytes((frame_type | 0x80,)), head, body))


def _single_string_frame(frame_type: FrameType, value: object, what: str) -> bytes:
    return _node(frame_type, [_primitive(0x01, _str_value(value, what))])


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class DataFrame:
    """Application data: a tag, opaque metadata (msgpack map) and the payload.

    Decoded frames always hold ``bytes``; a frame built for sending may hold a memoryview.
    """

    TYPE: ClassVar[FrameType] = FrameType.DATA

    tag: int
    metadata: bytes = b""
    payload: bytes = b""

    def encode(self) -> bytes:
        """Encode to Y3 bytes. Raises LocalProtocolError for a tag outside uint32."""
        return encode_data_frame(self.tag, self.metadata, self.payload)

    def __repr__(self) -> str:
        payload = bytes(self.payload[:32])
        more = "..." if len(self.payload) > 32 else ""
        return (
            f"DataFrame(tag={self.tag!r}, metadata={bytes(self.metadata)!r}, "
            f"payload={payload!r}{more} ({len(self.payload)} bytes))"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeFrame:
    """The first frame a client sends: who it is, what it observes, its credential."""

    TYPE: ClassVar[FrameType] = FrameType.HANDSHAKE

    name: str = ""
    id: str = ""
    client_type: int = 0
    observe_data_tags: tuple[int, ...] = field(default=())
    auth_name: str = ""
    auth_payload: str = ""
    version: str = ""
    function_definition: bytes = b""
    wanted_target: str = ""

    def __post_init__(self) -> None:
        if type(self.observe_data_tags) is not tuple:
            try:
                tags = tuple(self.observe_data_tags)
            except TypeError:
                raise LocalProtocolError(
                    "observe_data_tags must be a sequence of ints, "
                    f"not {type(self.observe_data_tags).__name__}"
                ) from None
            object.__setattr__(self, "observe_data_tags", tags)

    def encode(self) -> bytes:
        """Encode to Y3 bytes.

        The function definition child (0x09) is written only when non-empty, which is
        byte-identical to a v1.17 client without one and to a v1.19+ client with one.

        Raises:
            LocalProtocolError: a field of the wrong type, a client type outside 0..255,
                an observed tag outside uint32, or a string that is not encodable.
        """
        ct = self.client_type
        if isinstance(ct, bool) or not isinstance(ct, int) or not 0 <= ct <= 0xFF:
            raise LocalProtocolError(f"client_type must be an int in 0..255, got {ct!r}")
        tags = self.observe_data_tags
        for t in tags:
            if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t <= MAX_TAG:
                raise LocalProtocolError(f"observed tag {t!r} is not a uint32")
        children = [
            _primitive(0x01, _str_value(self.name, "HandshakeFrame name")),
            _primitive(0x03, _str_value(self.id, "HandshakeFrame id")),
            _primitive(0x02, bytes((ct,))),
            _primitive(0x06, struct.pack(f"<{len(tags)}I", *tags)),
            _primitive(0x04, _str_value(self.auth_name, "HandshakeFrame auth_name")),
            _primitive(0x05, _str_value(self.auth_payload, "HandshakeFrame auth_payload")),
            _primitive(0x07, _str_value(self.version, "HandshakeFrame version")),
        ]
        definition = _as_bytes(self.function_definition, "HandshakeFrame function_definition")
        if len(definition):
            children.append(_primitive(0x09, definition))
        children.append(
            _primitive(0x08, _str_value(self.wanted_target, "HandshakeFrame wanted_target"))
        )
        return _node(FrameType.HANDSHAKE, children)


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeAckFrame:
    """The zipper accepted the handshake."""

    TYPE: ClassVar[FrameType] = FrameType.HANDSHAKE_ACK

    def encode(self) -> bytes:
        """Encode to Y3 bytes (always ``A9 00``)."""
        return b"\xa9\x00"


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedFrame:
    """The zipper refused the handshake (final: the client does not retry)."""

    TYPE: ClassVar[FrameType] = FrameType.REJECTED

    message: str = ""

    def encode(self) -> bytes:
        """Encode to Y3 bytes. Raises LocalProtocolError if message is not a str."""
        return _single_string_frame(FrameType.REJECTED, self.message, "RejectedFrame message")


@dataclass(frozen=True, slots=True, kw_only=True)
class GoawayFrame:
    """The zipper tells the client to close."""

    TYPE: ClassVar[FrameType] = FrameType.GOAWAY

    message: str = ""

    def encode(self) -> bytes:
        """Encode to Y3 bytes. Raises LocalProtocolError if message is not a str."""
        return _single_string_frame(FrameType.GOAWAY, self.message, "GoawayFrame message")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectToFrame:
    """The zipper redirects the client to ``endpoint`` (``host:port``)."""

    TYPE: ClassVar[FrameType] = FrameType.CONNECT_TO

    endpoint: str = ""

    def encode(self) -> bytes:
        """Encode to Y3 bytes. Raises LocalProtocolError if endpoint is not a str."""
        return _single_string_frame(FrameType.CONNECT_TO, self.endpoint, "ConnectToFrame endpoint")


#: Any YoMo frame.
Frame: TypeAlias = (
    DataFrame | HandshakeFrame | HandshakeAckFrame | RejectedFrame | GoawayFrame | ConnectToFrame
)

_FRAME_CLASSES = (
    DataFrame,
    HandshakeFrame,
    HandshakeAckFrame,
    RejectedFrame,
    GoawayFrame,
    ConnectToFrame,
)


def encode_frame(frame: Frame) -> bytes:
    """Encode any frame to Y3 bytes.

    Raises:
        LocalProtocolError: ``frame`` is not a frame, or holds values the wire cannot carry.
    """
    if not isinstance(frame, _FRAME_CLASSES):
        raise LocalProtocolError(f"not a YoMo frame: {type(frame).__name__}")
    return frame.encode()
