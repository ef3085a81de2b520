"""Pipe handlers: an ordered stream in, an ordered stream out, for 10,000 frames.

A plain generator runs on a worker thread; an async generator on the loop. Both keep
order both ways; an error in the pipe goes to the error handler with the frame's tag and
ends the function; close() ends the input so the pipe can finish its outputs.
"""

from __future__ import annotations

import asyncio
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
async def test_pipe_error_is_reported_with_its_tag_and_ends_the_function(
    aio_zipper, aio_clients, kind
):
    """Issue 17 item 11: a pipe that raises never leaves a function that looks alive."""
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
    assert errors[0].tag == IN
    assert f"tag 0x{IN:x}" in str(errors[0])
    # the function ends: wait() returns, the zipper forgets it, nothing is held
    await asyncio.wait_for(fn.wait(), 10.0)
    assert fn.state is yomo.aio.ClientState.CLOSED
    await wait_until_async(lambda: all(c.name != "pipe" for c in z.connections()), "pipe gone")
    for i in range(3000):  # far more than the pipe's queue: the source is never held
        await src.write(IN, b"later-%d" % i)
    assert sink.data() == [b"good"]


def test_script_with_a_failing_pipe_exits_and_ctrl_c_is_prompt(sync_zipper, tmp_path):
    """Issue 17 item 11: an in-process script ends by itself; Ctrl-C on a stuck pipe is prompt."""
    import signal
    import subprocess
    import sys
    import time

    z = sync_zipper()
    script = tmp_path / "fn.py"
    script.write_text(
        "import sys, time, yomo\n"
        "mode = sys.argv[2]\n"
        "def pipe(frames):\n"
        "    for data in frames:\n"
        "        if mode == 'stuck':\n"
        "            time.sleep(3600)\n"
        "        raise RuntimeError('boom')\n"
        "    yield 0x34, b''\n"
        "fn = yomo.StreamFunction('pipe-script', sys.argv[1], observe_data_tags=[0x33])\n"
        "fn.set_pipe_handler(pipe)\n"
        "fn.set_error_handler(lambda e: print('error:', e, flush=True))\n"
        "fn.connect()\n"
        "print('ready', flush=True)\n"
        "fn.wait()\n"
        "print('ended', flush=True)\n"
    )
    src = yomo.Source("src", z.addr, tls=yomo.TlsConfig())
    src.connect()
    try:
        for mode in ("fail", "stuck"):
            proc = subprocess.Popen(
                [sys.executable, str(script), z.addr, mode],
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
                for _ in range(2000):  # past the pipe's queue of 1024
                    src.write(0x33, b"x")
                if mode == "stuck":
                    time.sleep(0.5)
                    proc.send_signal(signal.SIGINT)
                out, _ = proc.communicate(timeout=15)
            finally:
                if proc.poll() is None:
                    proc.kill()
            if mode == "fail":
                assert proc.returncode == 0, out
                assert "tag 0x33" in out and "RuntimeError: boom" in out and "ended" in out, out
            else:
                assert proc.returncode is not None  # Ctrl-C ended it within the bound
    finally:
        src.close()


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
    seen: list[int] = []  # frames the pipe took in: close must come after all ten

    def summing(frames: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
        total = 0
        for d in frames:
            total += int(d)
            seen.append(int(d))
        yield OUT, b"total=%d" % total

    async def asumming(frames: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
        total = 0
        async for d in frames:
            total += int(d)
            seen.append(int(d))
        yield OUT, b"total=%d" % total

    fn = aio_clients.sfn(z.addr, "pipe", [IN])
    fn.set_pipe_handler(summing if kind == "sync" else asumming)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    for i in range(1, 11):
        await src.write(IN, b"%d" % i)
    # The zipper having sent them is not enough: under load frames may still be on
    # their way to the function when it closes, and those a closed pipe never sees.
    await wait_until_async(lambda: len(seen) == 10, "the pipe to take in 10 frames")
    await fn.close()
    await sink.wait_async(1)
    assert sink.data() == [b"total=55"]
