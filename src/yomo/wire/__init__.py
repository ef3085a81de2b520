"""The sans-IO wire layer: Y3 packets, the six YoMo frames, metadata and a stream decoder.

Pure bytes in, frames out (docs/protocol.md sections 2-4). It never imports asyncio, sockets or
a QUIC library, so it can be tested, fuzzed and benchmarked on its own.
"""

from __future__ import annotations

from yomo.wire.decoder import MAX_HEADER_SIZE, FrameDecoder
from yomo.wire.frames import (
    DEFAULT_MAX_FRAME_SIZE,
    MAX_TAG,
    RESERVED_TAG_MAX,
    RESERVED_TAG_MIN,
    ClientType,
    ConnectToFrame,
    DataFrame,
    Frame,
    FrameType,
    GoawayFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
    check_tag,
    encode_data_frame,
    encode_frame,
)
from yomo.wire.metadata import (
    SOURCE_ID,
    SPAN_ID,
    TARGET,
    TID,
    TRACE_ID,
    TRACED,
    WANTED_TARGET,
    decode_metadata,
    encode_metadata,
    merge_metadata,
)
from yomo.wire.parse import decode_frame, make_data_frame
from yomo.wire.y3 import (
    Packet,
    decode_length,
    decode_packet,
    decode_uint32,
    encode_length,
    encode_node,
    encode_primitive,
    encode_uint32,
)

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "MAX_HEADER_SIZE",
    "MAX_TAG",
    "RESERVED_TAG_MAX",
    "RESERVED_TAG_MIN",
    "SOURCE_ID",
    "SPAN_ID",
    "TARGET",
    "TID",
    "TRACED",
    "TRACE_ID",
    "WANTED_TARGET",
    "ClientType",
    "ConnectToFrame",
    "DataFrame",
    "Frame",
    "FrameDecoder",
    "FrameType",
    "GoawayFrame",
    "HandshakeAckFrame",
    "HandshakeFrame",
    "Packet",
    "RejectedFrame",
    "check_tag",
    "decode_frame",
    "decode_length",
    "decode_metadata",
    "decode_packet",
    "decode_uint32",
    "encode_data_frame",
    "encode_frame",
    "encode_length",
    "encode_metadata",
    "encode_node",
    "encode_primitive",
    "encode_uint32",
    "make_data_frame",
    "merge_metadata",
]
