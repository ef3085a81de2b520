"""A chain source -> function A (0x33 -> 0x34, upper) -> function B, in both front doors.

B must get every frame in order, each with the tid of the source write it came from.
The ground truth for those tids is a tap function that observes 0x33 directly.
"""

from __future__ import annotations

import pytest

import yomo
import yomo.aio

from .clients_helpers import Collector

N = 10_000
IN = 0x33
OUT = 0x34


def _check(tap: Collector, sink: Collector, source_id: str, n: int) -> None:
    assert tap.data() == [b"frame-%05d" % i for i in range(n)]
    assert sink.data() == [b"FRAME-%05d" % i for i in range(n)]
    tids = tap.tids()
    assert len(set(tids)) == n
    assert sink.tids() == tids
    assert all(md["yomo-source-id"] == source_id for _, _, md in sink.items)


async def test_chain_aio(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "B", [OUT])
    tap = await aio_clients.sink(z.addr, "tap", [IN])

    async def upper(ctx: yomo.AsyncContext) -> None:
        await ctx.write(OUT, ctx.data.upper())

    a = aio_clients.sfn(z.addr, "A", [IN])
    a.set_handler(upper)
    await a.connect()
    src = aio_clients.source(z.addr, "src")
    await src.connect()
    for i in range(N):
        await src.write(IN, b"frame-%05d" % i)
    await sink.wait_async(N, timeout=30)
    await tap.wait_async(N, timeout=10)
    _check(tap, sink, src.client_id, N)


@pytest.mark.parametrize("handler", ["async", "threaded"])
def test_chain_sync(sync_zipper, sync_clients, handler):
    n = N
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "B", [OUT], threaded=handler == "threaded")
    tap = sync_clients.sink(z.addr, "tap", [IN])
    a = sync_clients.sfn(z.addr, "A", [IN])

    async def upper(ctx: yomo.AsyncContext) -> None:
        await ctx.write(OUT, ctx.data.upper())

    if handler == "async":
        a.set_handler(upper)
    else:
        a.set_handler(lambda ctx: (OUT, ctx.data.upper()))  # the returned form keeps the tid too
    a.connect()
    src = sync_clients.source(z.addr, "src")
    src.connect()
    for i in range(n):
        src.write(IN, b"frame-%05d" % i)
    sink.wait(n, timeout=30)
    tap.wait(n, timeout=10)
    _check(tap, sink, src.client_id, n)
