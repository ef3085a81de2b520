"""DataFrame metadata: msgpack map of str to str with Go's Set semantics."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from yomo.errors import LocalProtocolError, RemoteProtocolError
from yomo.wire import (
    MAX_TAG,
    RESERVED_TAG_MAX,
    RESERVED_TAG_MIN,
    SOURCE_ID,
    SPAN_ID,
    TARGET,
    TID,
    TRACE_ID,
    TRACED,
    WANTED_TARGET,
    DataFrame,
    decode_frame,
    decode_metadata,
    encode_metadata,
    merge_metadata,
)


def test_reserved_keys() -> None:
    assert (SOURCE_ID, TID, TRACE_ID, SPAN_ID, TRACED, TARGET, WANTED_TARGET) == (
        "yomo-source-id",
        "yomo-tid",
        "yomo-trace-id",
        "yomo-span-id",
        "yomo-traced",
        "yomo-target",
        "yomo-wanted-target",
    )


def test_round_trip() -> None:
    md = {SOURCE_ID: "src", TID: "t" * 21, TRACE_ID: "0" * 32, "ünï": "cødé ✓"}
    raw = encode_metadata(md)
    assert msgpack.unpackb(raw) == md
    assert decode_metadata(raw) == md
    assert decode_metadata(memoryview(raw)) == md
    assert decode_metadata(bytearray(raw)) == md


def test_empty_is_empty_bytes_both_ways() -> None:
    assert encode_metadata({}) == b""
    assert encode_metadata({"a": ""}) == b""
    assert decode_metadata(b"") == {}
    assert decode_metadata(b"\x80") == {}  # an explicit empty map
    assert decode_metadata(b"\xc0") == {}  # nil: Go's msgpack decodes it as an empty map


def test_empty_values_and_keys_are_dropped_on_encode() -> None:
    raw = encode_metadata({"keep": "1", "drop": "", "": "no key"})
    assert decode_metadata(raw) == {"keep": "1"}


def test_go_style_encoding_decodes() -> None:
    # vmihailenco/msgpack writes map[string]string with str types; bin also decodes
    go_bytes = b"\x82\xaeyomo-source-id\xa3abc\xa8yomo-tid\xa3xyz"
    assert decode_metadata(go_bytes) == {SOURCE_ID: "abc", TID: "xyz"}
    as_bin = msgpack.packb({b"k": b"v"}, use_bin_type=True)
    assert decode_metadata(as_bin) == {"k": "v"}


def test_metadata_is_opaque_to_the_frame_codec() -> None:
    md = encode_metadata({TID: "x"})
    frame = decode_frame(DataFrame(tag=1, metadata=md, payload=b"p").encode())
    assert isinstance(frame, DataFrame)
    assert frame.metadata == md
    assert decode_metadata(frame.metadata) == {TID: "x"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xc1", "not valid MessagePack"),  # never-used byte
        (b"\x81\xa1k", "not valid MessagePack"),  # truncated
        (b"\x81\xa1k\xa1v\x00", "bytes after"),
        (msgpack.packb([1, 2]), "must be a MessagePack map"),
        (msgpack.packb("str"), "must be a MessagePack map"),
        (msgpack.packb(7), "must be a MessagePack map"),
        (msgpack.packb({"k": 1}), "strings to strings"),
        (msgpack.packb({1: "v"}), "strings to strings"),
        (msgpack.packb({"k": None}), "strings to strings"),
        (msgpack.packb({"k": {"nested": "map"}}), "strings to strings"),
        (msgpack.packb({"k": b"\xff"}, use_bin_type=True), "strings to strings"),
        (b"\x81\xa1k\xa1\xff", "not valid UTF-8"),
        (b"\x91" * 100_000, "not valid MessagePack"),  # deeply nested arrays
        # a repeated key whose first value is bad: every entry is checked, as the native
        # reader does (found by fuzz/fuzz_native.py: Python kept only the last value)
        (bytes.fromhex("82a0c4048461656fa0a176"), "strings to strings"),
        (b"\x82\xa1k\x01\xa1k\xa1v", "strings to strings"),
    ],
)
def test_bad_metadata_is_a_remote_error(raw: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message) as err:
        decode_metadata(raw)
    assert str(err.value).startswith("yomo: metadata")


def test_merge_over_wins_and_empty_deletes() -> None:
    base = {SOURCE_ID: "a", TID: "t1", "keep": "k", "empty": ""}
    over = {TID: "t2", SOURCE_ID: "", WANTED_TARGET: "w", "": "ignored"}
    merged = merge_metadata(base, over)
    assert merged == {TID: "t2", "keep": "k", WANTED_TARGET: "w"}
    assert base[SOURCE_ID] == "a"  # inputs are not modified
    assert merge_metadata({}, {}) == {}


@pytest.mark.parametrize("bad", [{"k": 1}, {1: "v"}, {"k": None}, {"k": b"v"}])
def test_non_str_is_a_local_error(bad: dict[object, object]) -> None:
    with pytest.raises(LocalProtocolError):
        encode_metadata(bad)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        merge_metadata({}, bad)  # type: ignore[arg-type]


def test_unencodable_string_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        encode_metadata({"k": "\ud800"})


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_the_source_encoder_matches_encode_metadata(source_id, tid):
    from yomo.wire.metadata import source_metadata_encoder

    expected = encode_metadata({SOURCE_ID: source_id, TID: tid})
    assert source_metadata_encoder(source_id)(tid) == expected
    assert source_metadata_encoder("")(tid) == encode_metadata({SOURCE_ID: "", TID: tid})


@given(
    st.text(min_size=1, max_size=40),
    st.one_of(st.integers(0, RESERVED_TAG_MIN - 1), st.integers(RESERVED_TAG_MAX + 1, MAX_TAG)),
    st.sampled_from([0, 1, 100, 1024, 8100, 8191, 8192, 70_000]),
)
def test_a_source_writes_frames_as_encode_data_frame_does(source_id, tag, size):
    """The source's per-write encoder (metadata head once, a fresh tid, the frame's
    constant part once per tag) gives the bytes the general encoder gives."""
    from yomo.session import new_id
    from yomo.wire.frames import data_frame_encoder, encode_data_frame
    from yomo.wire.metadata import TID_SIZE, source_metadata_head

    encode = data_frame_encoder(source_metadata_head(source_id), TID_SIZE)
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    for _ in range(2):  # the second time from the per-tag cache
        tid = new_id()
        assert len(tid.encode()) == TID_SIZE
        expected = encode_data_frame(
            tag, encode_metadata({SOURCE_ID: source_id, TID: tid}), payload
        )
        assert encode(tag, tid.encode(), payload) == expected
