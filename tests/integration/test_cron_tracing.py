"""Cron handlers and spans as Go YoMo v1.22.3 makes them (sfn.go), on a real zipper.

A cron run may write to one target (``CronContext.write_with_target``); every run,
pipe output and handler call is a span named after the function with Go's attributes
(``sfn_handler_type``, ``recv_data_tag``, ``recv_data_len``), so one dashboard serves
Go and Python functions. tests/interop/test_tracing_go.py compares with Go's own spans.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import yomo
import yomo.aio

from .clients_helpers import Collector, wait_until, wait_until_async

IN = 0x33
OUT = 0x34


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


async def _targeted_sinks(aio_clients, addr: str) -> dict[str, Collector]:
    sinks: dict[str, Collector] = {}
    for name, target in (("plain", ""), ("alice", "alice"), ("bob", "bob")):
        out = Collector()

        async def collect(ctx: yomo.AsyncContext, out: Collector = out) -> None:
            out.add(ctx)

        fn = aio_clients.sfn(addr, name, [OUT], wanted_target=target)
        fn.set_handler(collect)
        await fn.connect()
        sinks[name] = out
    return sinks


async def test_cron_write_with_target_reaches_only_that_target(aio_zipper, aio_clients):
    z = await aio_zipper()
    sinks = await _targeted_sinks(aio_clients, z.addr)
    runs: list[str] = []

    async def tick(ctx: yomo.CronContext) -> None:
        if runs:
            return
        runs.append(ctx.metadata["yomo-tid"])
        await ctx.write_with_target(OUT, b"for alice", "alice")
        await ctx.write_with_target(OUT, b"no target", "")  # empty: like write
        await ctx.write(OUT, b"for all")

    clock = aio_clients.sfn(z.addr, "clock")
    clock.set_cron_handler("@every 100ms", tick)
    await clock.connect()
    await sinks["alice"].wait_async(3)
    await sinks["plain"].wait_async(2)
    await sinks["bob"].wait_async(2)
    await asyncio.sleep(0.2)
    assert sinks["alice"].data() == [b"for alice", b"no target", b"for all"]
    assert sinks["plain"].data() == [b"no target", b"for all"]
    assert sinks["bob"].data() == [b"no target", b"for all"]
    # one run: one tid on all three writes; the target key is not left on the others
    assert set(sinks["alice"].tids()) == {runs[0]}


def test_cron_write_with_target_sync(sync_zipper, sync_clients):
    z = sync_zipper()
    alice = Collector()
    sink = sync_clients.sfn(z.addr, "alice", [OUT], wanted_target="alice")
    sink.set_handler(alice.add)
    sink.connect()
    plain = sync_clients.sink(z.addr, "plain", [OUT])
    done = threading.Event()

    def tick(ctx: yomo.CronContext) -> None:
        if not done.is_set():
            done.set()
            ctx.write_with_target(OUT, b"for alice", "alice")
            ctx.write(OUT, b"for all")

    clock = sync_clients.sfn(z.addr, "clock")
    clock.set_cron_handler("@every 100ms", tick)
    clock.connect()
    alice.wait(2)
    plain.wait(1)
    assert alice.data() == [b"for alice", b"for all"]
    assert plain.data() == [b"for all"]


async def test_each_cron_run_is_a_span_whose_ids_travel_on_its_writes(
    aio_zipper, aio_clients, spans
):
    provider, exporter = spans
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])

    def tick(ctx: yomo.CronContext) -> None:  # plain: runs on a worker thread
        ctx.write(OUT, b"tick")

    clock = aio_clients.sfn(z.addr, "clock", tracer_provider=provider)
    clock.set_cron_handler("@every 100ms", tick)
    await clock.connect()
    await sink.wait_async(2)
    await clock.close()
    finished = [s for s in exporter.get_finished_spans() if s.name == "clock"]
    assert len(finished) >= 2
    for span in finished:
        assert dict(span.attributes or {}) == {"sfn_handler_type": "corn_handler"}
        assert span.instrumentation_scope.name == "StreamFunction"
        assert span.parent is None  # a run starts its own trace
    by_trace = {format(s.context.trace_id, "032x"): s for s in finished}
    assert len(by_trace) == len(finished)
    for _, _, md in sink.items:
        span = by_trace[md["yomo-trace-id"]]
        assert md["yomo-span-id"] == format(span.context.span_id, "016x")


async def test_pipe_output_frames_are_spans(aio_zipper, aio_clients, spans):
    provider, exporter = spans
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])

    async def shout(frames: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
        async for data in frames:
            yield OUT, data + b"!"

    fn = aio_clients.sfn(z.addr, "shout", [IN], tracer_provider=provider)
    fn.set_pipe_handler(shout)
    await fn.connect()
    async with aio_clients.source(z.addr, "src") as src:
        for data in (b"a", b"bb", b"ccc"):
            await src.write(IN, data)
    await sink.wait_async(3)
    finished = [s for s in exporter.get_finished_spans() if s.name == "shout"]
    assert [dict(s.attributes or {}) for s in finished] == [
        {"sfn_handler_type": "pipe_handler", "recv_data_tag": OUT, "recv_data_len": n}
        for n in (2, 3, 4)
    ]
    assert [md["yomo-trace-id"] for _, _, md in sink.items] == [
        format(s.context.trace_id, "032x") for s in finished
    ]


@pytest.mark.parametrize("kind", ["async", "plain"])
async def test_handler_spans_carry_gos_attributes(aio_zipper, aio_clients, spans, kind):
    provider, exporter = spans
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])

    async def upper_async(ctx: yomo.AsyncContext) -> tuple[int, bytes]:
        return OUT, ctx.data.upper()

    def upper_plain(ctx: yomo.Context) -> tuple[int, bytes]:
        return OUT, ctx.data.upper()

    fn = aio_clients.sfn(z.addr, "upper", [IN], tracer_provider=provider)
    fn.set_handler(upper_async if kind == "async" else upper_plain)
    await fn.connect()
    async with aio_clients.source(z.addr, "src", tracer_provider=provider) as src:
        await src.write(IN, b"hello")
    await sink.wait_async(1)
    await wait_until_async(lambda: len(exporter.get_finished_spans()) >= 2, "two spans")
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "upper"]
    assert dict(span.attributes or {}) == {
        "sfn_handler_type": "async_handler",  # Go's name for every SetHandler handler
        "recv_data_tag": IN,
        "recv_data_len": 5,
    }
    (source_span,) = [s for s in exporter.get_finished_spans() if s.name == "src"]
    assert source_span.instrumentation_scope.name == "Source"
    assert span.parent is not None and span.parent.span_id == source_span.context.span_id


def test_sync_cron_handler_span(sync_zipper, sync_clients, spans):
    provider, exporter = spans
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    clock = sync_clients.sfn(z.addr, "clock", tracer_provider=provider)

    def tick(ctx: yomo.CronContext) -> None:
        ctx.write(OUT, b"tick")

    clock.set_cron_handler("@every 100ms", tick)
    clock.connect()
    sink.wait(1)
    wait_until(lambda: any(s.name == "clock" for s in exporter.get_finished_spans()), "a span")
