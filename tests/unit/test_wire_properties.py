"""Property tests of the wire codec: round trips, and random input never escapes ProtocolError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yomo.errors import ProtocolError
from yomo.wire import (
    MAX_HEADER_SIZE,
    MAX_TAG,
    ConnectToFrame,
    DataFrame,
    Frame,
    FrameDecoder,
    GoawayFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
    decode_frame,
    decode_length,
    decode_metadata,
    decode_uint32,
    encode_data_frame,
    encode_frame,
    encode_length,
    encode_metadata,
    encode_uint32,
)

MIB = 1024 * 1024

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
tags = st.integers(min_value=0, max_value=MAX_TAG)
blobs = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"", b"\x00" * 8192, b"\xff" * 8191, bytes(range(256)) * 4096]),  # 1 MiB
)

data_frames = st.builds(DataFrame, tag=tags, metadata=st.binary(max_size=200), payload=blobs)
handshake_frames = st.builds(
    HandshakeFrame,
    name=texts,
    id=texts,
    client_type=st.integers(0, 255),
    observe_data_tags=st.lists(tags, max_size=20).map(tuple),
    auth_name=texts,
    auth_payload=texts,
    version=texts,
    function_definition=st.binary(max_size=100),
    wanted_target=texts,
)
frames: st.SearchStrategy[Frame] = st.one_of(
    data_frames,
    handshake_frames,
    st.just(HandshakeAckFrame()),
    st.builds(RejectedFrame, message=texts),
    st.builds(GoawayFrame, message=texts),
    st.builds(ConnectToFrame, endpoint=texts),
)


def mutate(case: tuple[Frame, int, int, int, bytes]) -> bytes:
    frame, where, xor, keep, extra = case
    data = bytearray(encode_frame(frame))
    data[where % len(data)] ^= xor
    return bytes(data[:keep]) + extra


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in [*points, len(data)]:
        out.append(data[last:p])
        last = p
    return out


@SETTINGS
@given(frame=frames)
def test_every_frame_round_trips(frame: Frame) -> None:
    data = encode_frame(frame)
    assert decode_frame(data) == frame
    if isinstance(frame, DataFrame):
        assert encode_data_frame(frame.tag, frame.metadata, frame.payload) == data


@settings(max_examples=60, deadline=None)
@given(
    stream=st.lists(frames, max_size=6),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def test_any_chunking_gives_the_same_frames(stream: list[Frame], cuts: list[int]) -> None:
    data = b"".join(encode_frame(f) for f in stream)
    decoder = FrameDecoder()
    got: list[Frame] = []
    for chunk in chunked(data, cuts):
        got += decoder.feed(chunk)
    assert got == stream
    assert decoder.buffered == 0


@SETTINGS
@given(value=st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_length_varint_round_trips(value: int) -> None:
    raw = encode_length(value)
    assert decode_length(raw) == (value, len(raw))
    assert len(raw) <= 5


@SETTINGS
@given(value=tags)
def test_uint32_round_trips(value: int) -> None:
    raw = encode_uint32(value)
    assert 1 <= len(raw) <= 4
    assert decode_uint32(raw) == value


@SETTINGS
@given(md=st.dictionaries(texts, texts, max_size=8))
def test_metadata_round_trips(md: dict[str, str]) -> None:
    expected = {k: v for k, v in md.items() if k and v}
    assert decode_metadata(encode_metadata(md)) == expected


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=200),
        # plausible-looking input: a valid frame with a byte flipped, then cut or extended
        st.tuples(
            frames,
            st.integers(min_value=0),
            st.integers(1, 255),
            st.integers(0, 400),
            st.binary(max_size=3),
        ).map(mutate),
    ),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
    limit=st.sampled_from([0, 16, 64, 1024, MIB]),
)
def test_random_input_only_ever_raises_protocol_error(
    data: bytes, cuts: list[int], limit: int
) -> None:
    decoder = FrameDecoder(max_frame_size=limit)
    try:
        for chunk in chunked(data, cuts):
            decoder.feed(chunk)
            assert decoder.buffered <= limit + MAX_HEADER_SIZE
    except ProtocolError:
        assert decoder.buffered == 0
    try:
        decode_frame(data)
    except ProtocolError:
        pass
    try:
        decode_metadata(data)
    except ProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(header=st.binary(min_size=1, max_size=7), limit=st.integers(0, 4096))
def test_buffer_never_exceeds_limit_plus_header(header: bytes, limit: int) -> None:
    # a header then an endless trickle of body bytes: either an error or a bounded buffer
    decoder = FrameDecoder(max_frame_size=limit)
    try:
        decoder.feed(header)
        for _ in range(8):
            decoder.feed(b"\x00" * (limit // 4 + 1))
            assert decoder.buffered <= limit + MAX_HEADER_SIZE
    except ProtocolError:
        pass


children = st.one_of(
    st.lists(
        st.tuples(st.sampled_from([0x01, 0x02, 0x03, 0x05, 0x41, 0x81]), st.binary(max_size=90)),
        max_size=5,
    ),
    # Go's layout, the fast path's case
    st.tuples(st.binary(max_size=5), st.binary(max_size=90), st.binary(max_size=90)).map(
        lambda t: [(0x01, t[0]), (0x03, t[1]), (0x02, t[2])]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    kids=children,
    tail=st.binary(max_size=4),
    cut=st.integers(0, 3),
    two_byte=st.booleans(),
)
def test_data_frame_fast_path_agrees_with_the_general_decoder(
    kids: list[tuple[int, bytes]], tail: bytes, cut: int, two_byte: bool
) -> None:
    # the straight-line DataFrame reader must give the same frame or error as the general
    # loop, and never read past the frame into the bytes that follow it
    from yomo.wire.parse import _decode_data, _decode_data_any

    def length(n: int) -> bytes:
        return bytes((0x80 | n >> 7, n & 0x7F)) if two_byte else encode_length(n)

    body = b"".join(bytes((sid,)) + length(len(v)) + v for sid, v in kids)
    body = body[: len(body) - cut] if cut < len(body) else body
    buf = body + tail

    def run(fn: object) -> object:
        try:
            return fn(buf, 0, len(body), 0)  # type: ignore[operator]
        except ProtocolError as exc:
            return ("error", str(exc))

    assert run(_decode_data) == run(_decode_data_any)
    assert run(_decode_data) == run(_decode_data_any)
    view = memoryview(buf)
    try:
        expected = _decode_data_any(buf, 0, len(body), 0)
    except ProtocolError:
        return
    assert _decode_data(view, 0, len(body), 0) == expected
