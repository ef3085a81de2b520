"""Frame listeners (Go: WithFrameListener, pkg/listener/mem): in-process connections a
zipper serves like QUIC ones, next to real QUIC clients."""

from __future__ import annotations

import asyncio

import pytest

import yomo
import yomo.aio
from yomo.wire import (
    ClientType,
    DataFrame,
    HandshakeFrame,
    decode_metadata,
    encode_metadata,
)
from yomo.zipper.auth import TokenAuth
from yomo.zipper.memory import MemoryConnection, MemoryListener

from .clients_helpers import Collector

IN = 0x33


def _hello(name: str, client_type: int, **fields: object) -> HandshakeFrame:
    return HandshakeFrame(
        name=name, id=f"{name}-1", client_type=client_type, version=yomo.SPEC_VERSION, **fields
    )


async def test_memory_and_quic_clients_share_one_zipper(aio_zipper, aio_clients):
    listener = MemoryListener()
    z = await aio_zipper(listeners=[listener], authenticators=[TokenAuth("s3cret")])
    assert z.python_frames is True and not z.backend.startswith("native")

    # a memory stream function receives what a QUIC source writes
    fn = await listener.dial()
    await fn.handshake(
        _hello("mem-fn", ClientType.STREAM_FUNCTION, observe_data_tags=(IN,),
               auth_name="token", auth_payload="s3cret")
    )  # fmt: skip
    async with aio_clients.source(z.addr, "quic-src", credential="token:s3cret") as src:
        await src.write(IN, b"over QUIC")
    frame = await asyncio.wait_for(fn.read_frame(), 5)
    assert isinstance(frame, DataFrame) and frame.payload == b"over QUIC"
    assert decode_metadata(frame.metadata)["yomo-source-id"] == src.client_id

    # a QUIC stream function receives what a memory source writes
    out = Collector()

    async def collect(ctx: yomo.AsyncContext) -> None:
        out.add(ctx)

    sink = aio_clients.sfn(z.addr, "quic-fn", [0x34], credential="token:s3cret")
    sink.set_handler(collect)
    await sink.connect()
    source = await listener.dial()
    await source.handshake(
        _hello("mem-src", ClientType.SOURCE, auth_name="token", auth_payload="s3cret")
    )
    md = encode_metadata({"yomo-tid": "t-1", "yomo-source-id": "mem-src-1"})
    await source.write_frame(DataFrame(tag=0x34, metadata=md, payload=b"in memory"))
    await out.wait_async(1)
    assert out.data() == [b"in memory"] and out.tids() == ["t-1"]
    names = {c.name: c for c in z.connections()}
    assert names["mem-src"].remote_address == ("memory", 2)
    assert names["mem-src"].frames_in == 1

    # the same handshake rules: a wrong credential is rejected with Go's text
    with pytest.raises(yomo.RejectedError, match="invalid token: nope"):
        await (await listener.dial()).handshake(
            _hello("intruder", ClientType.SOURCE, auth_name="token", auth_payload="nope")
        )

    source.close("done")
    await asyncio.wait_for(_gone(z, "mem-src"), 5)


async def _gone(z: yomo.aio.Zipper, name: str) -> None:
    while any(c.name == name for c in z.connections()):
        await asyncio.sleep(0.01)


async def test_a_memory_function_that_does_not_read_holds_the_producer(aio_zipper, aio_clients):
    """Backpressure crosses the memory connection: the QUIC source waits, nothing is lost."""
    listener = MemoryListener(high_water=64 * 1024)
    z = await aio_zipper(listeners=[listener])
    fn = await listener.dial()
    await fn.handshake(_hello("mem-fn", ClientType.STREAM_FUNCTION, observe_data_tags=(IN,)))
    src = aio_clients.source(z.addr, "src", write_timeout=30.0)
    await src.connect()
    payload = b"x" * 65536
    n = 300  # about 20 MB: more than every buffer on the way holds (QUIC windows, queues)
    writing = asyncio.ensure_future(_write_many(src, payload, n))
    await asyncio.sleep(1.0)
    assert not writing.done(), "the producer should wait for the memory function"
    (info,) = [c for c in z.connections() if c.name == "mem-fn"]
    assert info.send_backlog <= 64 * 1024 + len(payload) + 64  # bounded: one frame past it
    got = 0
    while got < n:
        frame = await asyncio.wait_for(fn.read_frame(), 10)
        assert isinstance(frame, DataFrame) and frame.payload == payload
        got += 1
    await asyncio.wait_for(writing, 30)
    assert z.stats()["drops"] == 0


async def _write_many(src: yomo.aio.Source, payload: bytes, n: int) -> None:
    for _ in range(n):
        await src.write(IN, payload)


async def test_stopping_the_zipper_closes_memory_connections(aio_zipper):
    listener = MemoryListener()
    z = await aio_zipper(listeners=[listener])
    conn = await listener.dial()
    await conn.handshake(_hello("mem-src", ClientType.SOURCE))
    await z.stop("bye")
    await asyncio.wait_for(conn.wait_closed(), 5)
    with pytest.raises(yomo.ConnectionClosedError):
        await conn.read_frame()
    with pytest.raises(yomo.ConnectionClosedError):
        await listener.dial()


async def test_bad_bytes_from_a_memory_client_close_it_and_nothing_else(aio_zipper):
    listener = MemoryListener()
    z = await aio_zipper(listeners=[listener])
    good = await listener.dial()
    await good.handshake(_hello("good", ClientType.SOURCE))
    bad = await listener.dial()
    await bad.handshake(_hello("bad", ClientType.SOURCE))
    bad.send_nowait(b"\x3f\x05not a frame")
    await asyncio.wait_for(bad.wait_closed(), 5)
    assert [c.name for c in z.connections()] == ["good"]
    assert z.stats()["protocol_errors"] == 1


async def test_memory_connection_alone() -> None:
    """The pair without a zipper: order, close reasons, bounded drains."""
    listener = MemoryListener(high_water=10)
    client = await listener.dial()
    server = await listener.accept()
    assert isinstance(server, MemoryConnection)
    client.send_nowait(DataFrame(tag=1, metadata=b"", payload=b"a" * 20))
    assert not client.has_room and client.send_backlog > 10 and server.recv_backlog > 10
    with pytest.raises(yomo.TimeoutError):
        await client.drain(timeout=0.05)
    draining = asyncio.ensure_future(client.drain(timeout=5))
    frame = await server.read_frame()
    assert isinstance(frame, DataFrame) and frame.payload == b"a" * 20
    await draining
    client.send_nowait(DataFrame(tag=2, metadata=b"", payload=b"last"))
    client.close("client done")
    frame = await server.read_frame()  # written before the close: still read
    assert isinstance(frame, DataFrame) and frame.tag == 2
    with pytest.raises(yomo.ConnectionClosedError) as info:
        await server.read_frame()
    assert info.value.reason == "client done" and info.value.remote is True
    assert server.closed_by_peer and not client.closed_by_peer
    await listener.aclose()
    with pytest.raises(yomo.ConnectionClosedError):
        await listener.accept()
