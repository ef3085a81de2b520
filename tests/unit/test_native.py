"""The native module's codec agrees with the Python wire layer, byte for byte and error
text for error text (the same bytes give the same close reason on either data path)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yomo.errors import ProtocolError, TransportError
from yomo.transport import QuicSettings
from yomo.transport.native import available
from yomo.transport.settings import choose_backend
from yomo.wire import (
    DataFrame,
    FrameDecoder,
    GoawayFrame,
    HandshakeAckFrame,
    decode_frame,
    encode_data_frame,
    encode_length,
    encode_metadata,
)

pytestmark = pytest.mark.skipif(
    not available(), reason="yomo._native is not built (no Rust toolchain at install)"
)


def _native():
    from yomo import _native

    return _native


tags = st.integers(min_value=0, max_value=0xFFFFFFFF)
metadata = st.dictionaries(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=40))
payloads = st.binary(max_size=9000)


@given(tags, metadata, payloads)
@settings(max_examples=200, deadline=None)
def test_encoding_matches_the_python_encoder(tag, md, payload):
    raw_md = encode_metadata(md)
    assert _native().encode_data_frame(tag, raw_md, payload) == encode_data_frame(
        tag, raw_md, payload
    )


@given(st.lists(st.tuples(tags, payloads), min_size=1, max_size=6))
@settings(max_examples=100, deadline=None)
def test_splitting_matches_the_python_decoder(frames):
    stream = b"".join(encode_data_frame(t, b"", p) for t, p in frames)
    stream += GoawayFrame(message="bye").encode() + HandshakeAckFrame().encode()
    got, error = _native().split_frames(stream, 1 << 20)
    assert error is None
    assert got[:-2] == [(t, b"", p) for t, p in frames]
    python = FrameDecoder().feed(stream)
    assert [f for f in python if isinstance(f, DataFrame)] == [
        DataFrame(tag=t, metadata=b"", payload=p) for t, p in frames
    ]
    assert got[-2:] == [GoawayFrame(message="bye").encode(), HandshakeAckFrame().encode()]


def test_a_data_frame_with_bad_metadata_comes_whole():
    """The native reader checks DataFrame metadata: a frame whose metadata is no map of
    strings is handed over whole, so Python decodes it and reports it (the stream
    function's error handler), and every ``(tag, metadata, payload)`` item is sound."""
    good = encode_data_frame(0x33, encode_metadata({"yomo-tid": "t"}), b"ok")
    bad = encode_data_frame(0x33, b"\x93\x01\x02\x03", b"bad")
    got, error = _native().split_frames(good + bad, 1 << 20)
    assert error is None
    assert got == [(0x33, encode_metadata({"yomo-tid": "t"}), b"ok"), bad]
    assert decode_frame(bad) == DataFrame(tag=0x33, metadata=b"\x93\x01\x02\x03", payload=b"bad")


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"\xff" * 8,
        b"\xbf" + encode_length(1 << 30) + b"\x01",
        b"\xbf\x7f",
        b"\xbf\x03\x81\x01\x01",
        b"\xbf\x05\x01\x05\x01\x02\x03",
    ],
    ids=["garbage", "unknown-type", "oversized", "negative-length", "node-child", "long-uint32"],
)
def test_errors_read_like_the_python_decoder(data):
    got, error = _native().split_frames(data, 1 << 20)
    with pytest.raises(ProtocolError) as python:
        FrameDecoder(max_frame_size=1 << 20).feed(data)
    assert got == []
    assert error == python.value.message


def test_an_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(TransportError, match="choose from native, qh3, aioquic, aiopquic"):
        choose_backend(QuicSettings(backend="quiche"))
    assert choose_backend(QuicSettings(backend="native")) == "native"


def _rmem_max() -> int:
    try:
        with open("/proc/sys/net/core/rmem_max") as f:
            return int(f.read())
    except OSError:
        return 0


async def test_the_zipper_socket_gets_its_receive_buffer_or_says_why(caplog):
    """The zipper asks for a 4 MiB UDP receive buffer (bursts: a fast producer, many
    clients closing at once) and warns, as quic-go does, when the kernel grants less."""
    from yomo.transport.native import NativeServer

    server = await NativeServer.start("127.0.0.1", 0, lambda events: None)
    try:
        got, wanted = server.native.recv_buffer
        assert wanted == 4 << 20
        warned = [r for r in caplog.records if "UDP receive buffer" in r.getMessage()]
        if _rmem_max() >= wanted:
            assert got >= wanted, got
            assert not warned
        else:
            assert got < wanted
            assert warned and "net.core.rmem_max" in warned[0].getMessage()
    finally:
        await server.aclose("test done")


async def test_a_dial_the_native_side_never_answers_is_a_connect_error(monkeypatch):
    """The asyncio backstop over the native handshake timeout raised a bare TimeoutError
    (a starved loop under load), which killed the session's supervisor for good."""
    from yomo.errors import ConnectError
    from yomo.transport import native

    monkeypatch.setattr(native.NativeConnection, "_poll", lambda self: None)  # never hears
    settings = QuicSettings(handshake_timeout=0.2)
    with pytest.raises(ConnectError, match=r"no QUIC handshake within 1\.2 s"):
        await native.dial("127.0.0.1", 9, settings=settings)
