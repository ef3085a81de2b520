"""Pipe handlers: an ordered stream in, an ordered stream out, for 10,000 frames.

A plain generator runs on a worker thread; an async generator on the loop. Both keep
order both ways; an error in the pipe goes to the error handler; close() ends the
input so the pipe can finish its outputs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

import yomo

from .clients_helpers import wait_until, wait_until_async

N = 10_000
IN = 0x33
OUT = 0x34


def sync_pipe(frames: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    for data in frames:
        yield OUT, data.upper()


async def async_pipe(frames: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    async for data in frames:
        yield OUT, data.upper()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_pipe_keeps_order(aio_zipper, aio_clients, kind):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    fn = aio_clients.sfn(z.addr, "pipe", [IN])
    fn.set_pipe_handler(sync_pipe if kind == "sync" else async_pipe)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    for i in range(N):
        await src.write(IN, b"frame-%05d" % i)
    await sink.wait_async(N, timeout=30)
    assert sink.data() == [b"FRAME-%05d" % i for i in range(N)]
    assert {md["yomo-source-id"] for _, _, md in sink.items} == {fn.client_id}


def test_pipe_keeps_order_sync_front_door(sync_zipper, sync_clients):
    n = N
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    fn = sync_clients.sfn(z.addr, "pipe", [IN])
    fn.set_pipe_handler(sync_pipe)
    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    for i in range(n):
        src.write(IN, b"frame-%05d" % i)
    sink.wait(n, timeout=30)
    assert sink.data() == [b"FRAME-%05d" % i for i in range(n)]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_pipe_error_goes_to_error_handler(aio_zipper, aio_clients, kind):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    errors: list[BaseException] = []

    def broken(frames: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
        for data in frames:
            if data == b"bad":
                raise ValueError("bad frame")
            yield OUT, data

    async def abroken(frames: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
        async for data in frames:
            if data == b"bad":
                raise ValueError("bad frame")
            yield OUT, data

    fn = aio_clients.sfn(z.addr, "pipe", [IN])
    fn.set_pipe_handler(broken if kind == "sync" else abroken)
    fn.set_error_handler(errors.append)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    await src.write(IN, b"good")
    await src.write(IN, b"bad")
    await sink.wait_async(1)
    await wait_until_async(lambda: len(errors) == 1, "the pipe's error")
    assert isinstance(errors[0], yomo.HandlerError)
    assert isinstance(errors[0].error, ValueError)
    assert sink.data() == [b"good"]


def test_pipe_yielding_bad_items_is_reported(sync_zipper, sync_clients):
    z = sync_zipper()
    errors: list[BaseException] = []

    def wrong(frames: Iterator[bytes]) -> Iterator[object]:
        yield from frames  # bytes, not (tag, data) pairs

    fn = sync_clients.sfn(z.addr, "pipe", [IN])
    fn.set_pipe_handler(wrong)
    fn.set_error_handler(errors.append)
    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    src.write(IN, b"x")
    wait_until(lambda: len(errors) == 1, "the pipe's error")
    assert isinstance(errors[0], yomo.HandlerError)
    assert isinstance(errors[0].error, TypeError)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_close_ends_the_pipe_and_sends_its_outputs(aio_zipper, aio_clients, kind):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])

    def summing(frames: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
        total = sum(int(d) for d in frames)
        yield OUT, b"total=%d" % total

    async def asumming(frames: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
        total = 0
        async for d in frames:
            total += int(d)
        yield OUT, b"total=%d" % total

    fn = aio_clients.sfn(z.addr, "pipe", [IN])
    fn.set_pipe_handler(summing if kind == "sync" else asumming)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    for i in range(1, 11):
        await src.write(IN, b"%d" % i)
    await wait_until_async(
        lambda: [c.frames_out for c in z.connections() if c.name == "pipe"] == [10],
        "the zipper to deliver 10 frames",
    )
    await fn.close()
    await sink.wait_async(1)
    assert sink.data() == [b"total=55"]
