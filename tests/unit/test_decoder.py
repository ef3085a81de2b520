"""FrameDecoder and decode_frame: chunking, size bound, poisoning and malformed input."""

from __future__ import annotations

import pytest

from yomo.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from yomo.wire import (
    MAX_HEADER_SIZE,
    ConnectToFrame,
    DataFrame,
    Frame,
    FrameDecoder,
    GoawayFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
    decode_frame,
    encode_data_frame,
    encode_frame,
    encode_length,
    encode_primitive,
)

MIB = 1024 * 1024

FRAMES: list[Frame] = [
    DataFrame(tag=0x33, metadata=b"\x81\xa1k\xa1v", payload=b"hello"),
    DataFrame(tag=0, payload=b"x" * 70_000),
    DataFrame(tag=0xFFFFFFFF, metadata=b"m" * 100, payload=b""),
    HandshakeFrame(
        name="sfn",
        id="abc-0",
        client_type=0x5D,
        observe_data_tags=(1, 2, 0xFFFFFFFF),
        auth_name="token",
        auth_payload="secret",
        version="2024-01-03",
        function_definition=b'{"name":"f"}',
        wanted_target="t",
    ),
    HandshakeAckFrame(),
    RejectedFrame(message="no"),
    GoawayFrame(message="bye"),
    ConnectToFrame(endpoint="127.0.0.1:9000"),
]
STREAM = b"".join(encode_frame(f) for f in FRAMES)


def frame_bytes(frame_type: int, *children: bytes) -> bytes:
    body = b"".join(children)
    return bytes((frame_type | 0x80,)) + encode_length(len(body)) + body


def test_whole_stream_in_one_feed() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(STREAM) == FRAMES
    assert decoder.buffered == 0


def test_one_byte_at_a_time() -> None:
    decoder = FrameDecoder()
    got: list[Frame] = []
    for i in range(len(STREAM)):
        got += decoder.feed(STREAM[i : i + 1])
        assert decoder.buffered <= decoder.max_frame_size + MAX_HEADER_SIZE
    assert got == FRAMES
    assert decoder.buffered == 0


@pytest.mark.parametrize("chunk", [2, 3, 7, 64, 1000, 4096, 65536])
def test_fixed_chunk_sizes(chunk: int) -> None:
    decoder = FrameDecoder()
    got: list[Frame] = []
    for i in range(0, len(STREAM), chunk):
        got += decoder.feed(STREAM[i : i + chunk])
    assert got == FRAMES


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_accepts_bytearray_and_memoryview(kind: type) -> None:
    decoder = FrameDecoder()
    got: list[Frame] = []
    for i in range(0, len(STREAM), 5000):
        got += decoder.feed(kind(STREAM[i : i + 5000]))
    assert got == FRAMES
    assert all(type(f.payload) is bytes for f in got if isinstance(f, DataFrame))


def test_partial_frame_is_buffered_and_empty_feed_is_harmless() -> None:
    data = encode_data_frame(1, b"", b"abc")
    decoder = FrameDecoder()
    assert decoder.feed(data[:4]) == []
    assert decoder.buffered == 4
    assert decoder.feed(b"") == []
    assert decoder.feed(data[4:] + data[:1]) == [DataFrame(tag=1, payload=b"abc")]
    assert decoder.buffered == 1


def test_decoded_payload_does_not_alias_the_input() -> None:
    data = bytearray(encode_data_frame(7, b"m", b"payload"))
    decoder = FrameDecoder()
    (frame,) = decoder.feed(data)
    data[-7:] = b"XXXXXXX"
    assert isinstance(frame, DataFrame)
    assert frame.payload == b"payload"


def test_oversize_rejected_from_header_before_buffering() -> None:
    decoder = FrameDecoder(max_frame_size=MIB)
    header = b"\xbf" + encode_length(1024 * MIB)
    with pytest.raises(RemoteProtocolError, match="exceeds the limit") as err:
        decoder.feed(header)
    assert err.value.offset == 1
    assert decoder.buffered == 0


def test_oversize_rejected_when_header_arrives_byte_by_byte() -> None:
    decoder = FrameDecoder(max_frame_size=MIB)
    header = b"\xbf" + encode_length(MIB + 1)
    for b in header[:-1]:
        assert decoder.feed(bytes((b,))) == []
    with pytest.raises(RemoteProtocolError, match="exceeds the limit"):
        decoder.feed(header[-1:])


def test_frame_of_exactly_max_size_is_accepted() -> None:
    frame = DataFrame(tag=1, payload=b"z" * 1000)
    data = frame.encode()
    body = len(data) - 1 - len(encode_length(len(data) - 3))
    assert FrameDecoder(max_frame_size=body).feed(data) == [frame]
    with pytest.raises(RemoteProtocolError):
        FrameDecoder(max_frame_size=body - 1).feed(data)


def test_poisoned_after_error() -> None:
    decoder = FrameDecoder()
    with pytest.raises(RemoteProtocolError) as first:
        decoder.feed(b"\x01\x00")
    assert decoder.error is first.value
    with pytest.raises(ProtocolError) as again:
        decoder.feed(encode_frame(HandshakeAckFrame()))
    assert again.value is first.value
    assert decoder.buffered == 0


def test_error_offsets_count_from_stream_start() -> None:
    decoder = FrameDecoder()
    ack = encode_frame(HandshakeAckFrame())
    assert decoder.feed(ack * 3) == [HandshakeAckFrame()] * 3
    with pytest.raises(RemoteProtocolError) as err:
        decoder.feed(b"\xff\x00")
    assert err.value.offset == 6
    assert "unknown frame type" in str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x04\x00", "primitive packet"),
        (b"\x80\x00", "unknown frame type 0x00"),
        (b"\xff\x00", "unknown frame type 0x7f"),
        (b"\xbf\x74", "negative frame length"),
        (b"\xbf\xc0\x00", "negative frame length"),
        (b"\xbf\x80\x80\x80\x80\x80", "longer than 5 bytes"),
        (frame_bytes(0x3F, b"\x81\x00"), "node packet"),
        (frame_bytes(0x3F, b"\x02\x05ab"), "runs past the end of the frame"),
        (frame_bytes(0x3F, b"\x02\x7f"), "negative child length"),
        (frame_bytes(0x3F, b"\x02"), "child length runs past"),
        (frame_bytes(0x3F, encode_primitive(1, b"")), "empty uint32"),
        (frame_bytes(0x3F, encode_primitive(1, b"\x00\x00\x00\x00\x01")), "at most 4"),
        (frame_bytes(0x31, encode_primitive(1, b"\xff\xfe")), "name is not valid UTF-8"),
        (frame_bytes(0x31, encode_primitive(2, b"")), "client type is 0 bytes"),
        (frame_bytes(0x31, encode_primitive(2, b"\x01\x02")), "client type is 2 bytes"),
        (frame_bytes(0x31, encode_primitive(6, b"\x01\x02\x03")), "multiple of 4"),
        (frame_bytes(0x39, encode_primitive(1, b"\xc3")), "RejectedFrame message"),
        (frame_bytes(0x2E, encode_primitive(1, b"\x80")), "GoawayFrame message"),
        (frame_bytes(0x3E, encode_primitive(1, b"\xed\xa0\x80")), "ConnectToFrame endpoint"),
        (frame_bytes(0x29, b"\x85\x00"), "node packet"),
    ],
)
def test_malformed_frames(data: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message) as whole:
        decode_frame(data)
    assert whole.value.offset is not None
    # the stream decoder finds the same problem, whole or byte by byte
    with pytest.raises(RemoteProtocolError, match=message):
        FrameDecoder().feed(data)
    decoder = FrameDecoder()
    with pytest.raises(RemoteProtocolError, match=message):
        for i in range(len(data)):
            decoder.feed(data[i : i + 1])


def test_error_offset_points_at_the_bad_child() -> None:
    good = encode_primitive(1, b"\x05")
    data = frame_bytes(0x3F, good, b"\x83\x00")
    with pytest.raises(RemoteProtocolError) as err:
        decode_frame(data)
    assert err.value.offset == 2 + len(good)
    assert f"at offset {2 + len(good)}" in str(err.value)


def test_decode_frame_needs_exactly_one_frame() -> None:
    ack = encode_frame(HandshakeAckFrame())
    with pytest.raises(RemoteProtocolError, match="empty input"):
        decode_frame(b"")
    with pytest.raises(RemoteProtocolError, match="trailing"):
        decode_frame(ack + ack)
    with pytest.raises(RemoteProtocolError, match="runs past"):
        decode_frame(b"\xbf")
    with pytest.raises(RemoteProtocolError, match="runs past"):
        decode_frame(encode_data_frame(1, b"", b"abc")[:-1])
    with pytest.raises(RemoteProtocolError, match="exceeds the limit"):
        decode_frame(encode_data_frame(1, b"", b"abc"), max_frame_size=4)


def test_unknown_children_ignored_repeated_last_wins_missing_default() -> None:
    data = frame_bytes(
        0x3F,
        encode_primitive(0x3A, b"future field"),
        encode_primitive(0x01, b"\x05"),
        encode_primitive(0x02, b"first"),
        encode_primitive(0x02, b"second"),
        encode_primitive(0x11, b""),
    )
    assert decode_frame(data) == DataFrame(tag=5, metadata=b"", payload=b"second")
    hs = frame_bytes(0x31, encode_primitive(0x01, b"n"), encode_primitive(0x20, b"?"))
    assert decode_frame(hs) == HandshakeFrame(name="n")
    assert decode_frame(frame_bytes(0x29, encode_primitive(0x01, b"x"))) == HandshakeAckFrame()
    assert decode_frame(frame_bytes(0x39)) == RejectedFrame()
    assert decode_frame(frame_bytes(0x3F)) == DataFrame(tag=0)


def test_non_minimal_lengths_are_accepted() -> None:
    # \x80\x03 is a two-group encoding of 3; Go's reader accepts it, so do we
    data = b"\xbf\x80\x08" + b"\x01\x80\x01\x07" + b"\x02\x80\x01z"
    assert decode_frame(data) == DataFrame(tag=7, payload=b"z")


def test_slice_flag_on_a_child_is_ignored_like_go() -> None:
    data = frame_bytes(0x3F, b"\x41\x01\x09")  # 0x41 = slice flag + sequence id 1
    assert decode_frame(data) == DataFrame(tag=9)


def test_uint32_tag_sign_extension() -> None:
    for raw, tag in [(b"\xff", 0xFFFFFFFF), (b"\x80", 0xFFFFFF80), (b"\x00\x80", 0x80)]:
        data = frame_bytes(0x3F, encode_primitive(1, raw))
        assert decode_frame(data) == DataFrame(tag=tag)


def test_max_frame_size_validation() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_size=-1)
    with pytest.raises(ValueError):
        FrameDecoder(max_frame_size=1.5)  # type: ignore[arg-type]
    assert FrameDecoder(max_frame_size=0).feed(b"\xa9\x00") == [HandshakeAckFrame()]


def test_local_errors_are_not_remote() -> None:
    with pytest.raises(LocalProtocolError):
        encode_data_frame(-1, b"", b"")
    assert not issubclass(LocalProtocolError, RemoteProtocolError)


def test_error_in_a_frame_completed_across_feeds_has_the_stream_offset() -> None:
    ack = encode_frame(HandshakeAckFrame())
    bad = frame_bytes(0x3F, encode_primitive(1, b"\x05"), b"\x83\x00")  # node child at 5
    decoder = FrameDecoder()
    assert decoder.feed(ack + bad[:1]) == [HandshakeAckFrame()]
    assert decoder.feed(bad[1:4]) == []
    with pytest.raises(RemoteProtocolError, match="node packet") as err:
        decoder.feed(bad[4:] + ack)
    assert err.value.offset == len(ack) + 5


def test_header_split_inside_the_length_varint() -> None:
    frame = DataFrame(tag=9, payload=b"q" * 20_000)  # 3-byte frame length
    data = frame.encode() + encode_frame(HandshakeAckFrame())
    decoder = FrameDecoder()
    assert decoder.feed(data[:2]) == []
    assert decoder.feed(data[2:3]) == []
    assert decoder.buffered == 3
    assert decoder.feed(data[3:]) == [frame, HandshakeAckFrame()]
    assert decoder.buffered == 0


def test_reused_input_buffer_does_not_corrupt_a_pending_frame() -> None:
    data = encode_data_frame(3, b"meta", b"a" * 500)
    scratch = bytearray(data[:300])
    decoder = FrameDecoder()
    assert decoder.feed(scratch) == []
    scratch[:] = b"\xff" * 300  # the caller reuses its receive buffer
    view = memoryview(bytearray(data[300:400]))
    assert decoder.feed(view) == []
    view[:] = b"\xff" * 100
    assert decoder.feed(bytearray(data[400:])) == [
        DataFrame(tag=3, metadata=b"meta", payload=b"a" * 500)
    ]
