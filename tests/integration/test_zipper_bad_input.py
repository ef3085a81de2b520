"""Bad input on one connection: it is closed with a reason saying what was wrong,
and a well-behaved source -> function pair on the same zipper keeps flowing, losing nothing.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from yomo.errors import ConnectionClosedError, ProtocolError
from yomo.transport import FrameConnection
from yomo.wire import (
    DEFAULT_MAX_FRAME_SIZE,
    ClientType,
    GoawayFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
    encode_data_frame,
    encode_length,
)

from .helpers import Pair, eventually, frame_bytes

TAG = 0x77

BadAct = Callable[[FrameConnection], Awaitable[None]]


async def _after_handshake(raw, z) -> FrameConnection:
    conn, reply = await raw.handshake(z, name="bad", client_type=ClientType.SOURCE)
    assert isinstance(reply, HandshakeAckFrame)
    await eventually(lambda: any(c.name == "bad" for c in z.connections()), "bad registered")
    return conn


async def _closed_reason(conn: FrameConnection) -> str:
    await asyncio.wait_for(conn.wait_closed(), 5.0)
    assert conn.closed_by_peer, conn.close_reason
    with pytest.raises((ConnectionClosedError, ProtocolError)):
        await asyncio.wait_for(conn.read_frame(), 1.0)
    assert conn.close_reason
    return conn.close_reason


async def _survives(z, clients, bad: Callable[[], Awaitable[str]], expected: str) -> str:
    """Run ``bad`` between two bursts of the good pair; check the reason and no loss."""
    pair = await Pair.start(clients, z, TAG)
    await pair.send(100, size=200)
    await pair.check()
    before = z.stats()["protocol_errors"] + z.stats()["rejections"]

    # good traffic keeps going while the bad connection does its thing
    flowing = asyncio.ensure_future(pair.send(200, size=200))
    reason = await bad()
    await asyncio.wait_for(flowing, 10.0)
    await pair.send(100, size=200)
    await pair.check()

    assert expected in reason, reason
    assert z.stats()["protocol_errors"] + z.stats()["rejections"] == before + 1
    names = sorted(c.name for c in z.connections())
    assert names == ["pair-sfn", "pair-src"]
    assert z.stats()["tags"][TAG]["frames_out"] == pair.sent == 400
    return reason


async def test_garbage_first_bytes(zipper, clients, raw):
    z = await zipper()

    async def bad() -> str:
        conn = await raw.dial(z)
        conn.send_nowait(b"GET / HTTP/1.1\r\nHost: zipper\r\n\r\n")
        return await _closed_reason(conn)

    reason = await _survives(z, clients, bad, "expected a frame")
    assert "0x47" in reason  # the 'G' it choked on


async def test_garbage_unknown_frame_type_first(zipper, clients, raw):
    z = await zipper()

    async def bad() -> str:
        conn = await raw.dial(z)
        conn.send_nowait(b"\xff" * 64)
        return await _closed_reason(conn)

    await _survives(z, clients, bad, "unknown frame type 0x7f")


@pytest.mark.parametrize("after_handshake", [False, True], ids=["first", "after-handshake"])
async def test_oversized_length_prefix(zipper, clients, raw, after_handshake):
    z = await zipper()
    huge = DEFAULT_MAX_FRAME_SIZE * 8

    async def bad() -> str:
        conn = await (_after_handshake(raw, z) if after_handshake else raw.dial(z))
        # only the header: the zipper must refuse it from the length alone
        conn.send_nowait(b"\xbf" + encode_length(huge) + b"\x01\x01\x01")
        return await _closed_reason(conn)

    await _survives(
        z, clients, bad, f"frame of {huge} bytes exceeds the limit of {DEFAULT_MAX_FRAME_SIZE}"
    )


async def test_oversized_frame_against_configured_limit(zipper, clients, raw):
    from dataclasses import replace

    from yomo.transport import DEFAULT_ZIPPER_SETTINGS

    z = await zipper(quic=replace(DEFAULT_ZIPPER_SETTINGS, max_frame_size=64 * 1024))

    async def bad() -> str:
        conn = await _after_handshake(raw, z)
        conn.send_nowait(frame_bytes(TAG, b"z" * (100 * 1024)))
        return await _closed_reason(conn)

    await _survives(z, clients, bad, "exceeds the limit of 65536 bytes")


async def test_data_frame_before_handshake(zipper, clients, raw):
    z = await zipper()
    message = "yomo: handshake read unexpected frame, read: DataFrame"

    async def bad() -> str:
        conn = await raw.dial(z)
        conn.send_nowait(frame_bytes(TAG, b"sneaky"))
        reply = await asyncio.wait_for(conn.read_frame(), 5.0)
        assert isinstance(reply, RejectedFrame)
        assert reply.message == message
        return await _closed_reason(conn)

    reason = await _survives(z, clients, bad, message)
    assert reason == message
    # the sneaked frame was not routed
    assert b"sneaky" not in clients.all[0].on_frame.payloads()  # type: ignore[union-attr]


@pytest.mark.parametrize("partial", [b"", b"\xb1\x80"], ids=["silent", "partial-header"])
async def test_handshake_timeout(zipper, clients, raw, partial):
    z = await zipper(handshake_timeout=0.3)

    async def bad() -> str:
        conn = await raw.dial(z)
        if partial:
            conn.send_nowait(partial)
        return await _closed_reason(conn)

    await _survives(z, clients, bad, "handshake timeout: no HandshakeFrame within 0.3 s")


async def test_unknown_frame_type_after_handshake(zipper, clients, raw):
    z = await zipper()

    async def bad() -> str:
        conn = await _after_handshake(raw, z)
        conn.send_nowait(b"\xaa\x00")
        return await _closed_reason(conn)

    await _survives(z, clients, bad, "unknown frame type 0x2a")


@pytest.mark.parametrize(
    "frame",
    [
        GoawayFrame(message="bye"),
        HandshakeFrame(name="again", client_type=ClientType.SOURCE, version="2024-01-03"),
    ],
    ids=["goaway", "second-handshake"],
)
async def test_non_data_frame_after_handshake(zipper, clients, raw, frame):
    z = await zipper()

    async def bad() -> str:
        conn = await _after_handshake(raw, z)
        conn.send_nowait(frame)
        return await _closed_reason(conn)

    await _survives(z, clients, bad, f"unexpected frame from client: {type(frame).__name__}")


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (b"\xc1", "metadata is not valid MessagePack"),
        (b"\x93\x01\x02\x03", "metadata must be a MessagePack map"),
        (b"\x81\xa1k\x01", "metadata must be a MessagePack map of strings to strings"),
        (b"\x80\x80", "after the MessagePack map"),
    ],
    ids=["invalid-byte", "array", "int-value", "trailing"],
)
async def test_invalid_metadata_after_handshake(zipper, clients, raw, metadata, expected):
    z = await zipper()

    async def bad() -> str:
        conn = await _after_handshake(raw, z)
        conn.send_nowait(encode_data_frame(TAG, metadata, b"bad-md"))
        return await _closed_reason(conn)

    await _survives(z, clients, bad, expected)


# Datagrams no connection of the zipper's could have sent: each is dropped where it is
# read (qh3's or quinn's header parse, the qh3 zipper's lane and split server).
STRAY_DATAGRAMS = [
    b"",  # empty
    b"\x40",  # one byte: a short header's first byte and nothing else
    b"\x40" + b"\x07" * 40,  # a short header with an id no connection has
    b"\xc0\x00\x00\x00\x01\x08",  # a long header cut inside its destination id's length
    b"\xc0\x00\x00\x00\x01\x14" + b"\x01" * 8,  # ... inside the id itself
    b"\xff" * 1200,  # a long header of an unknown version, Initial-sized
    bytes(range(256)) * 5,
]


async def test_stray_datagrams_are_dropped(zipper, clients):
    """Stray datagrams at the zipper's UDP socket raise nothing in its loop, and a pair
    on it and a new connection carry on."""
    errors: list[dict] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        z = await zipper()
        pair = await Pair.start(clients, z, TAG)
        await pair.send(50, size=200)
        await pair.check()
        # a plain socket: asyncio's datagram transport would not send an empty one
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stray:
            for _ in range(3):
                for datagram in STRAY_DATAGRAMS:
                    stray.sendto(datagram, z.address)
                await pair.send(50, size=200)
            await pair.check()
        _, inbox = await clients.sfn(z, "late-sfn", [TAG + 1])
        source = await clients.source(z, "late-src")
        await source.send(frame_bytes(TAG + 1, b"still serving"))
        await inbox.wait_count(1, TAG + 1, 5.0)
        assert not errors, errors
    finally:
        loop.set_exception_handler(previous)
