"""Frame dataclasses, encoding errors, tag checks, Y3 helpers and the sans-IO import rule."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import yomo.wire
from yomo.errors import LocalProtocolError, RemoteProtocolError, ReservedTagError, TagError
from yomo.wire import (
    DEFAULT_MAX_FRAME_SIZE,
    MAX_TAG,
    RESERVED_TAG_MAX,
    RESERVED_TAG_MIN,
    ClientType,
    ConnectToFrame,
    DataFrame,
    FrameType,
    GoawayFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    Packet,
    RejectedFrame,
    check_tag,
    decode_frame,
    decode_length,
    decode_packet,
    decode_uint32,
    encode_data_frame,
    encode_frame,
    encode_length,
    encode_node,
    encode_primitive,
    encode_uint32,
)

SRC = Path(yomo.wire.__file__).resolve().parents[2]


def test_codes_match_go() -> None:
    assert [(t.name, t.value) for t in FrameType] == [
        ("DATA", 0x3F),
        ("HANDSHAKE", 0x31),
        ("HANDSHAKE_ACK", 0x29),
        ("REJECTED", 0x39),
        ("GOAWAY", 0x2E),
        ("CONNECT_TO", 0x3E),
    ]
    assert (ClientType.SOURCE, ClientType.UPSTREAM_ZIPPER, ClientType.STREAM_FUNCTION) == (
        0x5F,
        0x5E,
        0x5D,
    )
    assert DEFAULT_MAX_FRAME_SIZE == 16 * 1024 * 1024
    assert (RESERVED_TAG_MIN, RESERVED_TAG_MAX, MAX_TAG) == (0xF000, 0xFFFF, 0xFFFFFFFF)


@pytest.mark.parametrize(
    ("cls", "ftype"),
    [
        (DataFrame, FrameType.DATA),
        (HandshakeFrame, FrameType.HANDSHAKE),
        (HandshakeAckFrame, FrameType.HANDSHAKE_ACK),
        (RejectedFrame, FrameType.REJECTED),
        (GoawayFrame, FrameType.GOAWAY),
        (ConnectToFrame, FrameType.CONNECT_TO),
    ],
)
def test_frames_are_frozen_slotted_keyword_only(cls: type, ftype: FrameType) -> None:
    assert cls.TYPE is ftype
    params = dataclasses.fields(cls)
    assert all(f.kw_only for f in params)
    assert "__slots__" in cls.__dict__
    frame = cls(tag=1) if cls is DataFrame else cls()
    if params:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frame, params[0].name, 1)
    with pytest.raises((dataclasses.FrozenInstanceError, AttributeError, TypeError)):
        frame.x = 1  # slots: no new attributes either
    assert frame.encode()[0] == ftype | 0x80
    if params:
        with pytest.raises(TypeError):
            cls(1)


def test_handshake_tags_list_becomes_tuple() -> None:
    frame = HandshakeFrame(observe_data_tags=[1, 2])  # type: ignore[arg-type]
    assert frame.observe_data_tags == (1, 2)
    assert hash(frame) == hash(HandshakeFrame(observe_data_tags=(1, 2)))


def test_function_definition_child_only_when_present() -> None:
    without = HandshakeFrame(name="a").encode()
    with_fd = HandshakeFrame(name="a", function_definition=b"fd").encode()
    assert b"\x09\x02fd" in with_fd and b"\x09" not in without
    assert decode_frame(with_fd) == HandshakeFrame(name="a", function_definition=b"fd")


def test_memoryview_fields_encode_like_bytes() -> None:
    payload = memoryview(b"abcdef")[1:4]
    assert encode_data_frame(3, memoryview(b"md"), payload) == encode_data_frame(3, b"md", b"bcd")
    wide = memoryview(bytes(8)).cast("I")  # 2 items, 8 bytes
    assert decode_frame(encode_data_frame(3, b"", wide)) == DataFrame(tag=3, payload=bytes(8))


def test_fast_path_matches_dataclass_for_large_and_cached_tags() -> None:
    for tag in (0, 1, 127, 128, 0xF000, 0x7FFFFFFF, 0x80000000, MAX_TAG):
        for size in (0, 63, 64, 8191, 8192, 70_000):
            frame = DataFrame(tag=tag, metadata=b"m" * (size % 100), payload=b"p" * size)
            data = encode_data_frame(tag, frame.metadata, frame.payload)
            assert data == frame.encode() == encode_data_frame(tag, frame.metadata, frame.payload)
            assert decode_frame(data) == frame


@pytest.mark.parametrize("tag", [-1, MAX_TAG + 1, 1.0, "1", None, True])
def test_bad_tag_is_a_local_error(tag: object) -> None:
    with pytest.raises(LocalProtocolError):
        encode_data_frame(tag, b"", b"")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        DataFrame(tag=tag).encode()  # type: ignore[arg-type]


def test_int_subclass_tag_is_accepted() -> None:
    class Tag(int):
        pass

    assert encode_data_frame(Tag(5), b"", b"") == encode_data_frame(5, b"", b"")


@pytest.mark.parametrize(
    "frame",
    [
        DataFrame(tag=1, payload="text"),  # type: ignore[arg-type]
        DataFrame(tag=1, metadata=None),  # type: ignore[arg-type]
        DataFrame(tag=1, payload=memoryview(b"abcdef")[::2]),  # type: ignore[arg-type]
        HandshakeFrame(client_type=256),
        HandshakeFrame(client_type=-1),
        HandshakeFrame(observe_data_tags=(-1,)),
        HandshakeFrame(observe_data_tags=(MAX_TAG + 1,)),
        HandshakeFrame(name=b"bytes"),  # type: ignore[arg-type]
        HandshakeFrame(name="\ud800"),
        HandshakeFrame(function_definition="str"),  # type: ignore[arg-type]
        RejectedFrame(message=None),  # type: ignore[arg-type]
        GoawayFrame(message=1),  # type: ignore[arg-type]
        ConnectToFrame(endpoint=b"x"),  # type: ignore[arg-type]
    ],
)
def test_invalid_fields_are_local_errors(frame: object) -> None:
    with pytest.raises(LocalProtocolError):
        encode_frame(frame)  # type: ignore[arg-type]


def test_encode_frame_rejects_non_frames() -> None:
    with pytest.raises(LocalProtocolError, match="not a YoMo frame"):
        encode_frame(b"\xa9\x00")  # type: ignore[arg-type]


def test_data_frame_repr_is_short() -> None:
    text = repr(DataFrame(tag=1, payload=b"x" * 1_000_000))
    assert len(text) < 200 and "1000000 bytes" in text


@pytest.mark.parametrize("tag", [0, 1, 0xEFFF, 0x10000, MAX_TAG])
def test_check_tag_accepts(tag: int) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", [RESERVED_TAG_MIN, 0xF123, RESERVED_TAG_MAX])
def test_check_tag_rejects_reserved(tag: int) -> None:
    with pytest.raises(ReservedTagError, match=r"^yomo: tag 0xf\w+ is reserved for the system"):
        check_tag(tag)


@pytest.mark.parametrize(("tag", "shown"), [(-1, "-0x1"), (MAX_TAG + 1, "0x100000000")])
def test_check_tag_rejects_out_of_range_in_hex(tag: int, shown: str) -> None:
    with pytest.raises(TagError) as err:
        check_tag(tag)
    assert type(err.value) is TagError and isinstance(err.value, ValueError)
    assert str(err.value) == f"yomo: tag {shown} is out of range: data tags are 0x0..0xffffffff"


@pytest.mark.parametrize(
    ("tag", "hint"),
    [
        ("0x33", " (write 0x33, not '0x33')"),
        ("51", " (write 0x33, not '51')"),
        ("x", ""),
        (1.0, ""),
        (None, ""),
        (True, ""),
    ],
)
def test_check_tag_rejects_non_ints_with_type_error(tag: object, hint: str) -> None:
    with pytest.raises(TypeError) as err:
        check_tag(tag)  # type: ignore[arg-type]
    assert str(err.value) == f"yomo: tag must be an int like 0x33, not {type(tag).__name__}{hint}"


def test_length_varint_edges() -> None:
    for value, size in [(0, 1), (63, 1), (64, 2), (8191, 2), (8192, 3), (2**31 - 1, 5)]:
        raw = encode_length(value)
        assert len(raw) == size
        assert decode_length(raw) == (value, size)
    for value in (2**31, -(2**31) - 1, 1.0, True):
        with pytest.raises(LocalProtocolError):
            encode_length(value)  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError, match="runs past"):
        decode_length(b"\x80\x80")
    with pytest.raises(RemoteProtocolError, match="runs past") as err:
        decode_length(b"\x00\x80", 1)
    assert err.value.offset == 1
    with pytest.raises(RemoteProtocolError, match="longer than 5"):
        decode_length(b"\x80\x80\x80\x80\x80\x00")
    with pytest.raises(RemoteProtocolError, match="32 bits"):
        decode_length(b"\x88\x80\x80\x80\x00")  # 2**31
    assert decode_length(bytearray(b"\x81\x00")) == (128, 2)


def test_uint32_edges() -> None:
    for value in (0, 0x7F, 0x80, 0x7FFF, 0x8000, 0x7FFFFF, 0x800000, 0x7FFFFFFF, 0x80000000):
        raw = encode_uint32(value)
        assert decode_uint32(raw) == value
        assert raw == (value - (1 << 32) if value >= 1 << 31 else value).to_bytes(
            len(raw), "big", signed=True
        )
    for bad in (-1, 1 << 32, 1.0, True):
        with pytest.raises(LocalProtocolError):
            encode_uint32(bad)  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError, match="empty"):
        decode_uint32(b"")
    with pytest.raises(RemoteProtocolError, match="at most 4") as err:
        decode_uint32(b"\x00" * 5, at=9)
    assert err.value.offset == 9
    assert decode_uint32(b"\x00\x00\x00\x01") == 1  # non-minimal is accepted


def test_packets() -> None:
    leaf = encode_primitive(0x0A, b"\x00\xff")
    node = encode_node(0x06, [leaf, encode_node(0x03, [])])
    packet, end = decode_packet(node)
    assert end == len(node)
    assert packet == Packet(
        seq_id=6,
        value=node[2:],
        children=(Packet(seq_id=0x0A, value=b"\x00\xff"), Packet(seq_id=3, children=())),
    )
    assert packet.encode() == node
    for bad_id in (-1, 0x40, True):
        with pytest.raises(LocalProtocolError):
            encode_primitive(bad_id, b"")
    with pytest.raises(LocalProtocolError):
        encode_primitive(1, "str")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_node(1, ["str"])  # type: ignore[list-item]
    deep = b"\x81\x00"
    for _ in range(40):
        deep = encode_node(1, [deep])
    with pytest.raises(RemoteProtocolError, match="nested deeper"):
        decode_packet(deep)
    with pytest.raises(RemoteProtocolError, match="input ended"):
        decode_packet(b"")


def test_wire_imports_no_io() -> None:
    """yomo.wire is sans-IO: importing it loads no event loop, socket or QUIC library.

    The ``yomo`` package is stubbed so its ``__init__`` (the I/O front door) is not run:
    this checks the wire layer and what it imports (yomo.errors, yomo._version).
    """
    code = textwrap.dedent(
        f"""
        import sys, types
        pkg = types.ModuleType("yomo")
        pkg.__path__ = [{str(SRC / "yomo")!r}]
        sys.modules["yomo"] = pkg
        before = set(sys.modules)
        import yomo.wire, yomo.wire.y3, yomo.wire.frames, yomo.wire.parse, yomo.wire.metadata
        import yomo.wire.decoder
        banned = ("asyncio", "socket", "ssl", "selectors", "qh3", "aioquic")
        loaded = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in banned)
        ours = sorted(m for m in sys.modules if m.startswith("yomo."))
        print(repr((loaded, ours)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded, ours = eval(out.stdout.strip())
    assert loaded == []
    assert set(ours) <= {
        "yomo.errors",
        "yomo._version",
        "yomo.wire",
        "yomo.wire.y3",
        "yomo.wire.frames",
        "yomo.wire.parse",
        "yomo.wire.metadata",
        "yomo.wire.decoder",
    }


def test_all_is_sorted_and_complete() -> None:
    names = yomo.wire.__all__
    assert sorted(names) == sorted(set(names))
    for name in names:
        assert hasattr(yomo.wire, name), name
    public = {
        n
        for n in dir(yomo.wire)
        if n[0] not in "_@"
        and n not in {"annotations", "y3", "frames", "metadata", "decoder", "resent", "parse"}
    }
    assert public == set(names)
