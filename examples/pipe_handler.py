"""Pipe handler (asyncio): one ordered stream in, one ordered stream out.

A pipe handler sees every frame of its tags in arrival order and yields
``(tag, data)`` pairs, kept in order too (Go: ``SetPipeHandler``). Here it keeps
a running total of the numbers written to tag 0x10 and writes it to 0x11.
Runs on loopback and exits by itself::

    python examples/pipe_handler.py
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from yomo import aio

TAG_NUMBERS = 0x10
TAG_TOTALS = 0x11
COUNT = 20


async def running_total(frames: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """The pipe: state lives in the generator, order is guaranteed both ways."""
    total = 0
    async for data in frames:
        total += int(data)
        yield TAG_TOTALS, f"{int(data)} -> total {total}".encode()


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("quic").setLevel(logging.ERROR)
    async with aio.Zipper("zipper", "127.0.0.1", 0, stats_interval=0) as zipper:
        print(f"zipper  listening on {zipper.addr}")
        totals: list[bytes] = []
        done = asyncio.Event()

        summer = aio.StreamFunction("summer", zipper.addr, observe_data_tags=[TAG_NUMBERS])
        summer.set_pipe_handler(running_total)

        sink = aio.StreamFunction("sink", zipper.addr, observe_data_tags=[TAG_TOTALS])

        async def show(ctx: aio.AsyncContext) -> None:
            totals.append(ctx.data)
            print(f"sink    <- {ctx.data.decode()}")
            if len(totals) == COUNT:
                done.set()

        sink.set_handler(show)
        async with summer, sink, aio.Source("numbers", zipper.addr) as source:
            for n in range(1, COUNT + 1):
                await source.write(TAG_NUMBERS, str(n).encode())
            await asyncio.wait_for(done.wait(), 10)
        expected = [f"{n} -> total {n * (n + 1) // 2}".encode() for n in range(1, COUNT + 1)]
        print(f"done: {len(totals)} totals, in order: {totals == expected}")


if __name__ == "__main__":
    asyncio.run(main())
