"""The zipper's handshake, routing and backpressure over in-memory connections: no QUIC.

The zipper is never started (no socket); each client is the dialling end of a
``yomo.zipper.memory`` connection whose other end ``Zipper.serve_connection`` serves.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from yomo._version import SPEC_VERSION
from yomo.errors import ConnectionClosedError
from yomo.session.handshake import hello_frame
from yomo.wire import (
    ClientType,
    DataFrame,
    Frame,
    HandshakeAckFrame,
    RejectedFrame,
    decode_metadata,
    encode_data_frame,
    encode_metadata,
)
from yomo.wire import metadata as md_keys
from yomo.zipper.auth import TokenAuth
from yomo.zipper.hooks import FrameContext, FrameHandler
from yomo.zipper.memory import DEFAULT_HIGH_WATER, MemoryConnection, MemoryListener
from yomo.zipper.server import RESERVED_TAG_MESSAGE, Zipper

IN, OUT = 0x33, 0x34
#: Every wait here is for something that happens within a few loop turns.
WAIT = 2.0


class Harness:
    """A zipper that is not started, and the in-memory clients connected to it."""

    def __init__(self, zipper: Zipper, high_water: int) -> None:
        self.zipper = zipper
        self.listener = MemoryListener(high_water=high_water)
        self.served: list[asyncio.Task[None]] = []

    async def pair(self) -> MemoryConnection:
        """A new connection, its zipper end served."""
        client = await self.listener.dial()
        server = await self.listener.accept()
        self.served.append(asyncio.ensure_future(self.zipper.serve_connection(server)))
        return client

    async def open(self, first: Frame | bytes) -> tuple[MemoryConnection, Frame]:
        """A new connection that writes ``first``; returns it and the zipper's answer."""
        client = await self.pair()
        client.send_nowait(first)
        reply = await asyncio.wait_for(client.read_frame(), WAIT)
        return client, reply

    async def connect(
        self, name: str, client_type: int, tags: tuple[int, ...] = (), **hello: object
    ) -> MemoryConnection:
        """A client whose handshake the zipper acknowledged."""
        frame = hello_frame(
            name=name,
            connection_id=f"{name}-0",
            client_type=client_type,
            observe_data_tags=tags,
            **hello,  # type: ignore[arg-type]
        )
        conn, reply = await self.open(frame)
        assert reply == HandshakeAckFrame()
        return conn


Make = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def harness() -> AsyncIterator[Make]:
    made: list[Harness] = []

    async def make(high_water: int = DEFAULT_HIGH_WATER, **options: object) -> Harness:
        z = Zipper("memory-zipper", port=0, stats_interval=0, **options)  # type: ignore[arg-type]
        h = Harness(z, high_water)
        made.append(h)
        return h

    yield make
    for h in made:
        await h.zipper.stop()
        await asyncio.wait_for(asyncio.gather(*h.served, return_exceptions=True), WAIT)


def _data(tag: int, payload: bytes, md: dict[str, str] | None = None) -> bytes:
    return encode_data_frame(tag, encode_metadata(md or {}), payload)


async def _read(conn: MemoryConnection) -> DataFrame:
    frame = await asyncio.wait_for(conn.read_frame(), WAIT)
    assert isinstance(frame, DataFrame)
    return frame


def _tag(h: Harness, tag: int, counter: str) -> int:
    row = h.zipper.stats()["tags"].get(tag)
    return 0 if row is None else int(row[counter])


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


# -- handshake ---------------------------------------------------------------


async def test_handshake_registers_the_client(harness: Make) -> None:
    h = await harness()
    await h.connect("fn", ClientType.STREAM_FUNCTION, (IN, OUT), wanted_target="t1")
    (info,) = h.zipper.connections()
    assert (info.name, info.client_id, info.client_type) == ("fn", "fn-0", "StreamFunction")
    assert info.observed_tags == (IN, OUT)
    assert info.wanted_target == "t1"
    assert h.zipper.stats()["handshakes"] == 1


async def test_wrong_version_is_rejected_with_gos_message(harness: Make) -> None:
    h = await harness()
    hello = dataclasses.replace(
        hello_frame(name="old", connection_id="x", client_type=ClientType.SOURCE), version="1999"
    )
    conn, reply = await h.open(hello)
    assert reply == RejectedFrame(
        message=f"version negotiation failed: client=1999, server={SPEC_VERSION}"
    )
    await asyncio.wait_for(conn.wait_closed(), WAIT)
    assert h.zipper.connections() == []
    assert h.zipper.stats()["rejections_by_reason"]["version"] == 1


async def test_credential_is_checked(harness: Make) -> None:
    h = await harness(authenticators=[TokenAuth("secret")])
    _, reply = await h.open(
        hello_frame(
            name="src", connection_id="x", client_type=ClientType.SOURCE, credential="token:nope"
        )
    )
    assert reply == RejectedFrame(message="invalid token: nope")
    await h.connect("src", ClientType.SOURCE, credential="token:secret")
    assert [c.name for c in h.zipper.connections()] == ["src"]
    assert h.zipper.stats()["rejections_by_reason"]["auth"] == 1


async def test_a_first_frame_that_is_not_a_handshake_is_rejected(harness: Make) -> None:
    h = await harness()
    _, reply = await h.open(_data(IN, b"too early"))
    assert reply == RejectedFrame(message="yomo: handshake read unexpected frame, read: DataFrame")
    assert h.zipper.stats()["rejections_by_reason"]["unexpected_frame"] == 1


async def test_bad_bytes_before_the_handshake_close_with_the_decoders_reason(
    harness: Make,
) -> None:
    h = await harness()
    client = await h.pair()
    client.send_nowait(b"\x3f\x05ab")  # a type byte that is no frame
    with pytest.raises(ConnectionClosedError) as info:
        await asyncio.wait_for(client.read_frame(), WAIT)
    assert info.value.remote
    assert client.close_reason
    assert h.zipper.stats()["protocol_errors"] == 1


# -- routing -----------------------------------------------------------------


async def test_frames_go_to_observers_of_their_tag_only(harness: Make) -> None:
    h = await harness()
    fn_in = await h.connect("fn-in", ClientType.STREAM_FUNCTION, (IN,))
    fn_out = await h.connect("fn-out", ClientType.STREAM_FUNCTION, (OUT,))
    src = await h.connect("src", ClientType.SOURCE)
    for i in range(3):
        src.send_nowait(_data(IN, b"in%d" % i, {md_keys.TID: f"t{i}"}))
    src.send_nowait(_data(OUT, b"out"))
    got = [await _read(fn_in) for _ in range(3)]
    assert [f.payload for f in got] == [b"in0", b"in1", b"in2"]
    assert [decode_metadata(f.metadata)[md_keys.TID] for f in got] == ["t0", "t1", "t2"]
    assert (await _read(fn_out)).payload == b"out"
    assert fn_in.recv_backlog == 0  # nothing of OUT reached fn-in
    tags = h.zipper.stats()["tags"]
    assert (tags[IN]["frames_in"], tags[IN]["frames_out"]) == (3, 3)


async def test_a_targeted_frame_goes_only_to_the_function_that_wants_it(harness: Make) -> None:
    h = await harness()
    alice = await h.connect("alice", ClientType.STREAM_FUNCTION, (IN,), wanted_target="alice")
    bob = await h.connect("bob", ClientType.STREAM_FUNCTION, (IN,), wanted_target="bob")
    src = await h.connect("src", ClientType.SOURCE)
    src.send_nowait(_data(IN, b"for bob", {md_keys.TARGET: "bob"}))
    src.send_nowait(_data(IN, b"for both"))
    assert [(await _read(bob)).payload for _ in range(2)] == [b"for bob", b"for both"]
    assert (await _read(alice)).payload == b"for both"
    assert alice.recv_backlog == 0


async def test_unobserved_frames_are_counted(harness: Make) -> None:
    h = await harness()
    src = await h.connect("src", ClientType.SOURCE)
    src.send_nowait(_data(0x99, b"nobody"))
    await _until(lambda: h.zipper.stats()["unobserved"] == 1, "the frame counted")


async def test_a_reserved_tag_closes_the_writer_with_gos_text(harness: Make) -> None:
    h = await harness()
    src = await h.connect("src", ClientType.SOURCE)
    src.send_nowait(_data(0xF001, b"reserved"))
    await asyncio.wait_for(src.wait_closed(), WAIT)
    assert src.closed_by_peer
    assert src.close_reason == RESERVED_TAG_MESSAGE


# The zipper forwards a frame's metadata as the bytes it came in unless routing changed
# it. These bytes decode to {"k": "v"} but are not what encode_metadata writes (str8
# headers where it writes fixstr): a re-encoded frame would not carry them.
_ODD_METADATA = b"\x81\xd9\x01k\xd9\x01v"


def _odd(extra: dict[str, str]) -> bytes:
    """``_ODD_METADATA`` with ``extra`` added, all in str8 form."""
    items = {"k": "v", **extra}
    out = bytearray([0x80 | len(items)])
    for key, value in items.items():
        for text in (key, value):
            raw = text.encode()
            out += bytes([0xD9, len(raw)]) + raw
    return bytes(out)


def test_odd_metadata_is_not_what_the_encoder_writes() -> None:
    assert _odd({}) == _ODD_METADATA
    assert decode_metadata(_ODD_METADATA) == {"k": "v"}
    assert encode_metadata({"k": "v"}) != _ODD_METADATA


async def test_a_frames_metadata_bytes_are_forwarded_as_received(harness: Make) -> None:
    h = await harness()
    fn = await h.connect("fn", ClientType.STREAM_FUNCTION, (IN,))
    src = await h.connect("src", ClientType.SOURCE)
    src.send_nowait(encode_data_frame(IN, _ODD_METADATA, b"a"))
    assert (await _read(fn)).metadata == _ODD_METADATA


async def test_a_merge_that_changes_nothing_keeps_the_received_bytes(harness: Make) -> None:
    h = await harness()
    sink = await h.connect("sink", ClientType.STREAM_FUNCTION, (OUT,))
    # a function with a wanted target merges yomo-wanted-target into what it writes
    fn = await h.connect("fn", ClientType.STREAM_FUNCTION, (IN,), wanted_target="alice")
    same = _odd({md_keys.WANTED_TARGET: "alice"})
    fn.send_nowait(encode_data_frame(OUT, same, b"same"))
    assert (await _read(sink)).metadata == same
    fn.send_nowait(encode_data_frame(OUT, _ODD_METADATA, b"merged"))
    merged = (await _read(sink)).metadata
    assert decode_metadata(merged) == {"k": "v", md_keys.WANTED_TARGET: "alice"}


async def test_frame_middleware_that_changes_nothing_keeps_the_received_bytes(
    harness: Make,
) -> None:
    def tag_b(next_handler: FrameHandler) -> FrameHandler:
        def handle(ctx: FrameContext) -> None:
            if ctx.payload == b"b":
                ctx.metadata["seen"] = "yes"
            next_handler(ctx)

        return handle

    h = await harness(frame_middleware=[tag_b])
    fn = await h.connect("fn", ClientType.STREAM_FUNCTION, (IN,))
    src = await h.connect("src", ClientType.SOURCE)
    src.send_nowait(encode_data_frame(IN, _ODD_METADATA, b"a"))
    src.send_nowait(encode_data_frame(IN, _ODD_METADATA, b"b"))
    assert (await _read(fn)).metadata == _ODD_METADATA
    assert decode_metadata((await _read(fn)).metadata) == {"k": "v", "seen": "yes"}


# -- backpressure ------------------------------------------------------------


async def test_a_function_that_does_not_read_holds_its_producer(harness: Make) -> None:
    h = await harness(4096)
    stuck = await h.connect("stuck", ClientType.STREAM_FUNCTION, (IN,))
    src = await h.connect("src", ClientType.SOURCE)
    for _ in range(40):
        src.send_nowait(_data(IN, b"x" * 1000))
    # the zipper routes until stuck's connection has no room, then waits for it
    await _until(lambda: stuck.recv_backlog >= 4096, "stuck's connection full")
    for _ in range(50):  # loop turns, not time: a zipper that did not wait would go on
        await asyncio.sleep(0)
    held = _tag(h, IN, "frames_in")
    assert held < 40
    assert src.send_backlog > 0 and not src.has_room  # the rest waits at the producer
    # nothing is dropped: once the function reads, every frame arrives, in order
    got = [await _read(stuck) for _ in range(40)]
    assert len(got) == 40
    assert h.zipper.stats()["drops"] == 0
    await _until(lambda: src.has_room, "the producer free again")


async def test_drop_policy_drops_and_counts_instead_of_waiting(harness: Make) -> None:
    h = await harness(4096, slow_consumer="drop", drop_threshold=4096)
    await h.connect("stuck", ClientType.STREAM_FUNCTION, (IN,))
    src = await h.connect("src", ClientType.SOURCE)
    for _ in range(40):
        src.send_nowait(_data(IN, b"x" * 1000))
    await _until(lambda: _tag(h, IN, "frames_in") == 40, "all frames routed")
    stats = h.zipper.stats()
    assert stats["drops"] > 0
    assert stats["tags"][IN]["frames_out"] + stats["drops"] == 40
    assert src.has_room


async def test_stop_closes_every_in_memory_client(harness: Make) -> None:
    h = await harness()
    fn = await h.connect("fn", ClientType.STREAM_FUNCTION, (IN,))
    await h.zipper.stop("bye")
    await asyncio.wait_for(fn.wait_closed(), WAIT)
    assert fn.close_reason == "bye"
    with pytest.raises(ConnectionClosedError):
        fn.send_nowait(_data(IN, b"late"))
