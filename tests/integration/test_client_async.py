"""The asyncio front door (``yomo.aio``) against a real zipper; mirrors test_client_sync.py.

Every public method of Source and StreamFunction and every Context member is used
at least once, on real QUIC over loopback.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

import yomo
import yomo.aio

from .clients_helpers import Collector, unobserved, wait_until_async

IN = 0x33
OUT = 0x34
FENCE = 0x99


async def test_handler_writes_keep_tid_and_source_id(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    seen: list[tuple[bytes, str, str]] = []

    async def upper(ctx: yomo.AsyncContext) -> None:
        seen.append((ctx.data, ctx.tid, ctx.source_id))
        await ctx.write(OUT, ctx.data.upper())

    fn = aio_clients.sfn(z.addr, "upper", [IN])
    fn.set_handler(upper)
    await fn.connect()
    src = aio_clients.source(z.addr, "src")
    await src.connect()
    for i in range(20):
        await src.write(IN, b"hello-%d" % i)
    await sink.wait_async(20)
    assert sink.data() == [b"HELLO-%d" % i for i in range(20)]
    tids = [tid for _, tid, _ in seen]
    assert len(set(tids)) == 20
    assert sink.tids() == tids
    assert {sid for _, _, sid in seen} == {src.client_id}
    assert {md["yomo-source-id"] for _, _, md in sink.items} == {src.client_id}


async def test_handler_return_value_is_written(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])

    async def reverse(ctx: yomo.AsyncContext) -> tuple[int, bytes] | None:
        if ctx.data == b"skip":
            return None
        return OUT, ctx.data[::-1]

    fn = aio_clients.sfn(z.addr, "reverse")
    fn.set_observe_data_tags(IN, [0x35, 0x36])  # tags and lists of tags
    fn.set_handler(reverse)
    await fn.connect()
    async with aio_clients.source(z.addr, "src") as src:
        for payload in (b"abc", b"skip", b"xyz"):
            await src.write(IN, payload)
        await src.write(FENCE, b"fence")
    await sink.wait_async(2)
    # one handler at a time, in order: a reply to "skip" would have come before "zyx"
    assert sink.data() == [b"cba", b"zyx"]
    (info,) = [c for c in z.connections() if c.name == "reverse"]
    assert info.observed_tags == (IN, 0x35, 0x36)


async def test_sync_handler_runs_on_worker_threads(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    loop_thread = threading.get_ident()
    threads: set[int] = set()

    def blocking(ctx: yomo.Context) -> None:
        threads.add(threading.get_ident())
        ctx.write(OUT, ctx.data + b"!")

    fn = aio_clients.sfn(z.addr, "blocking", [IN], concurrency=4)
    fn.set_handler(blocking)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    for i in range(40):
        await src.write(IN, b"%d" % i)
    await sink.wait_async(40)
    assert sorted(sink.data()) == sorted(b"%d!" % i for i in range(40))
    assert threads and loop_thread not in threads


async def test_async_handler_runs_on_the_loop(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    loop = asyncio.get_running_loop()
    loops: list[Any] = []

    async def on_loop(ctx: yomo.AsyncContext) -> tuple[int, bytes]:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return OUT, ctx.data

    fn = aio_clients.sfn(z.addr, "on-loop", [IN])
    fn.set_handler(on_loop)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    await src.write(IN, b"x")
    await sink.wait_async(1)
    assert loops == [loop]


async def test_context_members(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    checks: list[Any] = []

    async def handler(ctx: yomo.AsyncContext) -> None:
        checks.append((ctx.tag, ctx.data, ctx.json()))
        try:
            ctx.metadata["yomo-tid"] = "forged"  # type: ignore[index]
        except TypeError:
            checks.append("read-only")
        await ctx.write_json(OUT, {"n": ctx.json()["n"] + 1})
        await ctx.write(OUT, None)  # no-op

    fn = aio_clients.sfn(z.addr, "json", [IN])
    fn.set_handler(handler)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    await src.write(IN, json.dumps({"n": 41}).encode())
    await sink.wait_async(1)
    await src.write(FENCE, b"fence")
    assert checks == [(IN, b'{"n": 41}', {"n": 41}), "read-only"]
    assert sink.data() == [b'{"n":42}']
    assert sink.items[0][2]["yomo-tid"] != "forged"


async def test_write_with_target(aio_zipper, aio_clients):
    z = await aio_zipper()
    alice, bob = Collector(), Collector()

    async def record_alice(ctx: yomo.AsyncContext) -> None:
        alice.add(ctx)

    async def record_bob(ctx: yomo.AsyncContext) -> None:
        bob.add(ctx)

    for name, fn_, target in (("alice", record_alice, "t-alice"), ("bob", record_bob, "t-bob")):
        f = aio_clients.sfn(z.addr, name, [OUT, FENCE])
        f.set_wanted_target(target)
        f.set_handler(fn_)
        await f.connect()

    async def route(ctx: yomo.AsyncContext) -> None:
        await ctx.write_with_target(OUT, b"via-ctx:" + ctx.data, "t-bob")

    router = aio_clients.sfn(z.addr, "router", [IN])
    router.set_handler(route)
    await router.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    await src.write_with_target(OUT, b"direct", "t-alice")
    await src.write(IN, b"x")
    await wait_until_async(lambda: len(bob) >= 1, "bob's frame")
    await src.write(FENCE, b"fence")
    await alice.wait_async(2)
    await bob.wait_async(2)
    assert alice.data() == [b"direct", b"fence"]
    assert bob.data() == [b"via-ctx:x", b"fence"]


async def test_a_targeted_frame_is_handled_without_its_target(aio_zipper, aio_clients):
    """Go clears the target before handling: the handler does not see it, and what it
    writes (with the frame's tid and source id) reaches functions of any target."""
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    seen: list[tuple[bool, str]] = []

    async def relay(ctx: yomo.AsyncContext) -> tuple[int, bytes]:
        seen.append(("yomo-target" in ctx.metadata, ctx.tid))
        await ctx.write(OUT, b"w:" + ctx.data)
        return OUT, b"r:" + ctx.data

    fn = aio_clients.sfn(z.addr, "relay", [IN])
    fn.set_wanted_target("t-relay")
    fn.set_handler(relay)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    await src.write_with_target(IN, b"x", "t-relay")
    await sink.wait_async(2)
    assert sink.data() == [b"w:x", b"r:x"]
    assert seen[0][0] is False
    assert {md["yomo-tid"] for _, _, md in sink.items} == {seen[0][1]}
    assert all("yomo-target" not in md for _, _, md in sink.items)


async def test_init_runs_once_before_first_frame(aio_zipper, aio_clients):
    z = await aio_zipper()
    events: list[str] = []

    async def init() -> None:
        await asyncio.sleep(0.05)
        events.append("init")

    async def handler(ctx: yomo.AsyncContext) -> None:
        events.append("frame")

    fn = aio_clients.sfn(z.addr, "init-fn", [IN])
    fn.init(init)
    fn.set_handler(handler)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    for _ in range(3):
        await src.write(IN, b"x")
    await wait_until_async(lambda: events.count("frame") == 3, "3 frames")
    assert events == ["init", "frame", "frame", "frame"]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_init_error_is_raised_by_connect_and_nothing_is_handled(
    aio_zipper, aio_clients, kind
):
    z = await aio_zipper()
    handled: list[bytes] = []

    def boom() -> None:
        raise RuntimeError("model not found")

    async def aboom() -> None:
        raise RuntimeError("model not found")

    async def handler(ctx: yomo.AsyncContext) -> None:
        handled.append(ctx.data)

    fn = aio_clients.sfn(z.addr, "init-fails", [IN])
    fn.init(boom if kind == "sync" else aboom)
    fn.set_handler(handler)
    with pytest.raises(RuntimeError, match="model not found"):
        await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    await src.write(IN, b"x")
    await wait_until_async(lambda: unobserved(z, IN) == 1, "the frame counted as unobserved")
    assert handled == []
    assert [c.name for c in z.connections()] == ["source"]


async def test_pipe_handler(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])

    async def pipe(frames):
        async for data in frames:
            yield OUT, data + b"|"

    fn = aio_clients.sfn(z.addr, "pipe", [IN])
    fn.set_pipe_handler(pipe)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    for i in range(100):
        await src.write(IN, b"%03d" % i)
    await sink.wait_async(100)
    assert sink.data() == [b"%03d|" % i for i in range(100)]


async def test_cron_handler_writes(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    runs: list[str] = []

    async def tick(ctx: yomo.CronContext) -> None:
        runs.append(ctx.metadata["yomo-tid"])
        await ctx.write(OUT, b"tick")

    fn = aio_clients.sfn(z.addr, "cron")
    fn.set_cron_handler("@every 200ms", tick)
    await fn.connect()
    await sink.wait_async(2, timeout=5.0)
    assert sink.data()[:2] == [b"tick", b"tick"]
    assert sink.tids()[:2] == runs[:2]
    assert runs[0] != runs[1]
    assert sink.items[0][2]["yomo-source-id"] == fn.client_id


async def test_error_handler_gets_handler_errors_and_handling_goes_on(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    errors: list[BaseException] = []

    async def handler(ctx: yomo.AsyncContext) -> tuple[int, bytes]:
        if ctx.data == b"bad":
            raise ValueError("cannot handle bad")
        return OUT, ctx.data

    fn = aio_clients.sfn(z.addr, "flaky", [IN])
    fn.set_handler(handler)
    fn.set_error_handler(errors.append)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    for payload in (b"a", b"bad", b"b"):
        await src.write(IN, payload)
    await sink.wait_async(2)
    assert sink.data() == [b"a", b"b"]
    assert len(errors) == 1
    err = errors[0]
    assert isinstance(err, yomo.HandlerError)
    assert isinstance(err.error, ValueError)
    assert err.tag == IN
    assert "cannot handle bad" in str(err)
    assert fn.state is yomo.ClientState.CONNECTED


async def test_error_handler_gets_rejection(aio_zipper, aio_clients):
    from yomo.zipper.auth import TokenAuth

    z = await aio_zipper(authenticators=[TokenAuth("s3cret")])
    errors: list[BaseException] = []
    src = aio_clients.source(z.addr, credential="token:wrong")
    src.set_error_handler(errors.append)
    with pytest.raises(yomo.AuthenticationError):
        await src.connect()
    assert len(errors) == 1
    assert isinstance(errors[0], yomo.AuthenticationError)
    assert "invalid token: wrong" in str(errors[0])


async def test_function_write_outside_handler(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])

    async def handler(ctx: yomo.AsyncContext) -> None:
        pass

    fn = aio_clients.sfn(z.addr, "writer", [IN])
    fn.set_handler(handler)
    await fn.connect()
    await fn.write(OUT, b"one")
    await fn.write(OUT, b"two")
    await sink.wait_async(2)
    assert sink.data() == [b"one", b"two"]
    assert {md["yomo-source-id"] for _, _, md in sink.items} == {fn.client_id}
    assert len(set(sink.tids())) == 2


async def test_close_is_idempotent_and_context_managers(aio_zipper):
    z = await aio_zipper()
    got: list[bytes] = []

    async def handler(ctx: yomo.AsyncContext) -> None:
        got.append(ctx.data)

    fn = yomo.aio.StreamFunction("cm", z.addr, observe_data_tags=[IN], tls=yomo.TlsConfig())
    fn.set_handler(handler)
    async with fn:
        assert fn.state is yomo.ClientState.CONNECTED
        async with yomo.aio.Source("cm-src", z.addr, tls=yomo.TlsConfig()) as src:
            waiter = asyncio.ensure_future(src.wait())
            await src.write(IN, b"x")
        assert src.state is yomo.ClientState.CLOSED
        await asyncio.wait_for(waiter, 2.0)
        await wait_until_async(lambda: got == [b"x"], "the frame")
    assert fn.state is yomo.ClientState.CLOSED
    await fn.close()
    await src.close()
    await asyncio.wait_for(fn.wait(), 1.0)
    with pytest.raises(yomo.YomoError):
        await src.write(IN, b"after close")
    await wait_until_async(lambda: z.connections() == [], "zipper to drop both")


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_close_waits_for_running_handlers(aio_zipper, aio_clients, concurrency):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])
    started = asyncio.Event()
    count = 0

    async def slow(ctx: yomo.AsyncContext) -> None:
        nonlocal count
        count += 1
        if count == concurrency:
            started.set()
        await asyncio.sleep(0.4)
        await ctx.write(OUT, b"done:" + ctx.data)

    fn = aio_clients.sfn(z.addr, "slow", [IN], concurrency=concurrency)
    fn.set_handler(slow)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    for i in range(concurrency):
        await src.write(IN, b"%d" % i)
    await asyncio.wait_for(started.wait(), 5.0)
    await asyncio.wait_for(fn.close(), 5.0)
    await sink.wait_async(concurrency)
    assert sorted(sink.data()) == [b"done:%d" % i for i in range(concurrency)]


@pytest.mark.parametrize(
    ("tag", "error"),
    [
        (-1, yomo.TagError),
        (2**32, yomo.TagError),
        (0xF000, yomo.ReservedTagError),
        (0xFFFF, yomo.ReservedTagError),
        ("0x33", TypeError),
        ("x", TypeError),
        (None, TypeError),
        (1.5, TypeError),
        (True, TypeError),
    ],
)
async def test_bad_tags_are_refused_before_sending(aio_zipper, aio_clients, tag, error):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [FENCE])
    src = aio_clients.source(z.addr, "src")
    await src.connect()
    with pytest.raises(error) as info:
        await src.write(tag, b"data")
    assert type(info.value) is error or error is TypeError
    assert str(info.value).startswith("yomo: ")
    if error is yomo.TagError:  # out of range: said in hex, not called reserved
        assert "out of range" in str(info.value) and "reserved" not in str(info.value)
        assert f"{tag:#x}".lstrip("-") in str(info.value)
    if tag == "0x33":
        assert "write 0x33" in str(info.value)
    with pytest.raises(error):
        await src.write_with_target(tag, b"data", "t")
    fn = aio_clients.sfn(z.addr, "fn")
    with pytest.raises(error):
        fn.set_observe_data_tags(tag)
    await src.write(FENCE, b"fence")
    await sink.wait_async(1)
    (info_src,) = [c for c in z.connections() if c.name == "src"]
    assert info_src.frames_in == 1


async def test_bad_data_is_refused_and_none_is_a_noop(aio_zipper, aio_clients):
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [IN, FENCE])
    failures: list[str] = []

    async def echo(ctx: yomo.AsyncContext) -> None:
        for bad in ("text", 42):
            try:
                await ctx.write(FENCE, bad)  # type: ignore[arg-type]
            except TypeError:
                failures.append(type(bad).__name__)
        await ctx.write(FENCE, None)

    fn = aio_clients.sfn(z.addr, "echo", [OUT])
    fn.set_handler(echo)
    await fn.connect()
    src = aio_clients.source(z.addr, "src")
    await src.connect()
    for bad in ("text", 42):
        with pytest.raises(TypeError):
            await src.write(IN, bad)  # type: ignore[arg-type]
    await src.write(IN, None)
    await src.write(IN, bytearray(b"ok"))
    await src.write(IN, memoryview(b"mv"))
    await src.write(OUT, b"to-echo")
    await wait_until_async(lambda: len(failures) == 2, "the handler's checks")
    await src.write(FENCE, b"fence")
    await sink.wait_async(3)
    assert sink.data() == [b"ok", b"mv", b"fence"]
    assert failures == ["str", "int"]
    (info_src,) = [c for c in z.connections() if c.name == "src"]
    assert info_src.frames_in == 4


async def test_tracing_spans_form_one_trace(aio_zipper, aio_clients):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    z = await aio_zipper()
    sink = await aio_clients.sink(z.addr, "sink", [OUT])

    async def upper(ctx: yomo.AsyncContext) -> tuple[int, bytes]:
        return OUT, ctx.data.upper()

    fn = aio_clients.sfn(z.addr, "traced-fn", [IN], tracer_provider=provider)
    fn.set_handler(upper)
    await fn.connect()
    src = aio_clients.source(z.addr, "traced-src", tracer_provider=provider)
    await src.connect()
    await src.write(IN, b"trace me")
    await sink.wait_async(1)
    await wait_until_async(lambda: len(exporter.get_finished_spans()) >= 2, "two spans")
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"traced-src", "traced-fn"}  # spans are named after the client
    source_span, fn_span = spans["traced-src"], spans["traced-fn"]
    trace_id = source_span.context.trace_id
    assert fn_span.context.trace_id == trace_id
    assert fn_span.parent is not None and fn_span.parent.span_id == source_span.context.span_id
    md = sink.items[0][2]
    assert md["yomo-trace-id"] == format(trace_id, "032x")
    assert md["yomo-span-id"] == format(fn_span.context.span_id, "016x")
    assert md["yomo-traced"] == "true"
    assert sink.data() == [b"TRACE ME"]


async def test_connect_twice_is_harmless(aio_zipper, aio_clients):
    z = await aio_zipper()
    active, peak, runs = 0, 0, 0

    async def tick(ctx: yomo.CronContext) -> None:
        nonlocal active, peak, runs
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.3)  # longer than the period: a second cron task would overlap
        active -= 1
        runs += 1

    fn = aio_clients.sfn(z.addr, "cron")
    fn.set_cron_handler("@every 100ms", tick)
    await fn.connect()
    await fn.connect()
    await wait_until_async(lambda: runs >= 3, "three cron runs")
    assert peak == 1
    assert len(z.connections()) == 1


async def test_close_gives_up_on_a_stuck_handler(aio_zipper, aio_clients):
    z = await aio_zipper()
    errors: list[BaseException] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def stuck(ctx: yomo.AsyncContext) -> None:
        started.set()
        await release.wait()
        await ctx.write(OUT, b"too late")

    fn = aio_clients.sfn(z.addr, "stuck", [IN])
    fn.set_handler(stuck)
    fn.set_error_handler(errors.append)
    await fn.connect()
    src = aio_clients.source(z.addr)
    await src.connect()
    await src.write(IN, b"x")
    await asyncio.wait_for(started.wait(), 5.0)
    await asyncio.wait_for(fn.close(timeout=0.3), 5.0)
    assert fn.state is yomo.ClientState.CLOSED
    release.set()
    await wait_until_async(lambda: [c.name for c in z.connections()] == ["source"], "fn gone")
