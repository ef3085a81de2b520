"""The synchronous front door (``yomo.Source``, ``yomo.StreamFunction``, ``yomo.Zipper``).

Mirrors test_client_async.py test for test: plain handlers run on worker threads
with a blocking ``ctx.write``, ``async def`` handlers on yomo's loop thread.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

import yomo

from .clients_helpers import Collector, unobserved, wait_until

IN = 0x33
OUT = 0x34
FENCE = 0x99


def test_handler_writes_keep_tid_and_source_id(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    seen: list[tuple[bytes, str, str]] = []

    def upper(ctx: yomo.Context) -> None:
        seen.append((ctx.data, ctx.tid, ctx.source_id))
        ctx.write(OUT, ctx.data.upper())

    fn = sync_clients.sfn(z.addr, "upper", [IN])
    fn.set_handler(upper)
    fn.connect()
    src = sync_clients.source(z.addr, "src")
    src.connect()
    for i in range(20):
        src.write(IN, b"hello-%d" % i)
    sink.wait(20)
    assert sink.data() == [b"HELLO-%d" % i for i in range(20)]
    tids = [tid for _, tid, _ in seen]
    assert len(set(tids)) == 20
    assert sink.tids() == tids
    assert {sid for _, _, sid in seen} == {src.client_id}
    assert {md["yomo-source-id"] for _, _, md in sink.items} == {src.client_id}


def test_handler_return_value_is_written(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])

    def reverse(ctx: yomo.Context) -> tuple[int, bytes] | None:
        if ctx.data == b"skip":
            return None
        return OUT, ctx.data[::-1]

    fn = sync_clients.sfn(z.addr, "reverse")
    fn.set_observe_data_tags(IN, [0x35, 0x36])  # tags and lists of tags
    fn.set_handler(reverse)
    fn.connect()
    with sync_clients.source(z.addr, "src") as src:
        for payload in (b"abc", b"skip", b"xyz"):
            src.write(IN, payload)
        src.write(FENCE, b"fence")
    sink.wait(2)
    # one handler at a time, in order: a reply to "skip" would have come before "zyx"
    assert sink.data() == [b"cba", b"zyx"]
    (info,) = [c for c in z.connections() if c.name == "reverse"]
    assert info.observed_tags == (IN, 0x35, 0x36)


def test_sync_handler_runs_on_worker_threads(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    threads: set[str] = set()

    def blocking(ctx: yomo.Context) -> None:
        threads.add(threading.current_thread().name)
        ctx.write(OUT, ctx.data + b"!")

    fn = sync_clients.sfn(z.addr, "blocking", [IN], concurrency=4)
    fn.set_handler(blocking)
    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    for i in range(40):
        src.write(IN, b"%d" % i)
    sink.wait(40)
    assert sorted(sink.data()) == sorted(b"%d!" % i for i in range(40))
    assert threads
    assert threading.current_thread().name not in threads
    assert "yomo-loop" not in threads


def test_async_handler_runs_on_the_loop(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    threads: list[str] = []

    async def on_loop(ctx: yomo.AsyncContext) -> tuple[int, bytes]:
        threads.append(threading.current_thread().name)
        return OUT, ctx.data

    fn = sync_clients.sfn(z.addr, "on-loop", [IN])
    fn.set_handler(on_loop)
    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    src.write(IN, b"x")
    sink.wait(1)
    assert threads == ["yomo-loop"]


def test_context_members(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    checks: list[Any] = []

    def handler(ctx: yomo.Context) -> None:
        checks.append((ctx.tag, ctx.data, ctx.json()))
        try:
            ctx.metadata["yomo-tid"] = "forged"  # type: ignore[index]
        except TypeError:
            checks.append("read-only")
        ctx.write_json(OUT, {"n": ctx.json()["n"] + 1})
        ctx.write(OUT, None)  # no-op

    fn = sync_clients.sfn(z.addr, "json", [IN])
    fn.set_handler(handler)
    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    src.write(IN, json.dumps({"n": 41}).encode())
    sink.wait(1)
    src.write(FENCE, b"fence")
    assert checks == [(IN, b'{"n": 41}', {"n": 41}), "read-only"]
    assert sink.data() == [b'{"n":42}']
    assert sink.items[0][2]["yomo-tid"] != "forged"


def test_write_with_target(sync_zipper, sync_clients):
    z = sync_zipper()
    alice, bob = Collector(), Collector()
    for name, record, target in (("alice", alice, "t-alice"), ("bob", bob, "t-bob")):
        f = sync_clients.sfn(z.addr, name, [OUT, FENCE])
        f.set_wanted_target(target)
        f.set_handler(record.add)
        f.connect()

    def route(ctx: yomo.Context) -> None:
        ctx.write_with_target(OUT, b"via-ctx:" + ctx.data, "t-bob")

    router = sync_clients.sfn(z.addr, "router", [IN])
    router.set_handler(route)
    router.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    src.write_with_target(OUT, b"direct", "t-alice")
    src.write(IN, b"x")
    wait_until(lambda: len(bob) >= 1, "bob's frame")
    src.write(FENCE, b"fence")
    alice.wait(2)
    bob.wait(2)
    assert alice.data() == [b"direct", b"fence"]
    assert bob.data() == [b"via-ctx:x", b"fence"]


def test_init_runs_once_before_first_frame(sync_zipper, sync_clients):
    z = sync_zipper()
    events: list[str] = []
    fn = sync_clients.sfn(z.addr, "init-fn", [IN])

    @fn.init
    def init() -> None:
        time.sleep(0.05)
        events.append("init")

    @fn.set_handler
    def handler(ctx: yomo.Context) -> None:
        events.append("frame")

    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    for _ in range(3):
        src.write(IN, b"x")
    wait_until(lambda: events.count("frame") == 3, "3 frames")
    assert events == ["init", "frame", "frame", "frame"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_init_error_is_raised_by_connect_and_nothing_is_handled(sync_zipper, sync_clients, kind):
    z = sync_zipper()
    handled: list[bytes] = []

    def boom() -> None:
        raise RuntimeError("model not found")

    async def aboom() -> None:
        raise RuntimeError("model not found")

    fn = sync_clients.sfn(z.addr, "init-fails", [IN])
    fn.init(boom if kind == "sync" else aboom)
    fn.set_handler(lambda ctx: handled.append(ctx.data))
    with pytest.raises(RuntimeError, match="model not found"):
        fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    src.write(IN, b"x")
    wait_until(lambda: unobserved(z, IN) == 1, "the frame counted as unobserved")
    assert handled == []
    assert [c.name for c in z.connections()] == ["source"]


def test_pipe_handler(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])

    def pipe(frames):
        for data in frames:
            yield OUT, data + b"|"

    fn = sync_clients.sfn(z.addr, "pipe", [IN])
    fn.set_pipe_handler(pipe)
    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    for i in range(100):
        src.write(IN, b"%03d" % i)
    sink.wait(100)
    assert sink.data() == [b"%03d|" % i for i in range(100)]


def test_cron_handler_writes(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    runs: list[str] = []

    def tick(ctx: yomo.CronContext) -> None:
        runs.append(ctx.metadata["yomo-tid"])
        ctx.write(OUT, b"tick")

    fn = sync_clients.sfn(z.addr, "cron")
    fn.set_cron_handler("@every 200ms", tick)
    fn.connect()
    sink.wait(2, timeout=5.0)
    assert sink.data()[:2] == [b"tick", b"tick"]
    assert sink.tids()[:2] == runs[:2]
    assert runs[0] != runs[1]
    assert sink.items[0][2]["yomo-source-id"] == fn.client_id


def test_error_handler_gets_handler_errors_and_handling_goes_on(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    errors: list[BaseException] = []

    def handler(ctx: yomo.Context) -> tuple[int, bytes]:
        if ctx.data == b"bad":
            raise ValueError("cannot handle bad")
        return OUT, ctx.data

    fn = sync_clients.sfn(z.addr, "flaky", [IN])
    fn.set_handler(handler)
    fn.set_error_handler(errors.append)
    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    for payload in (b"a", b"bad", b"b"):
        src.write(IN, payload)
    sink.wait(2)
    assert sink.data() == [b"a", b"b"]
    assert len(errors) == 1
    err = errors[0]
    assert isinstance(err, yomo.HandlerError)
    assert isinstance(err.error, ValueError)
    assert err.tag == IN
    assert "cannot handle bad" in str(err)
    assert fn.state is yomo.ClientState.CONNECTED


def test_error_handler_gets_rejection(sync_zipper, sync_clients):
    from yomo.zipper.auth import TokenAuth

    z = sync_zipper(authenticators=[TokenAuth("s3cret")])
    errors: list[BaseException] = []
    src = sync_clients.source(z.addr, credential="token:wrong")
    src.set_error_handler(errors.append)
    with pytest.raises(yomo.AuthenticationError):
        src.connect()
    assert len(errors) == 1
    assert isinstance(errors[0], yomo.AuthenticationError)
    assert "invalid token: wrong" in str(errors[0])


def test_function_write_outside_handler(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    fn = sync_clients.sfn(z.addr, "writer", [IN])
    fn.set_handler(lambda ctx: None)
    fn.connect()
    fn.write(OUT, b"one")
    fn.write(OUT, b"two")
    sink.wait(2)
    assert sink.data() == [b"one", b"two"]
    assert {md["yomo-source-id"] for _, _, md in sink.items} == {fn.client_id}
    assert len(set(sink.tids())) == 2


def test_close_is_idempotent_and_context_managers(sync_zipper):
    z = sync_zipper()
    got: list[bytes] = []
    fn = yomo.StreamFunction("cm", z.addr, observe_data_tags=[IN], tls=yomo.TlsConfig())
    fn.set_handler(lambda ctx: got.append(ctx.data))
    with fn:
        assert fn.state is yomo.ClientState.CONNECTED
        with yomo.Source("cm-src", z.addr, tls=yomo.TlsConfig()) as src:
            waiter = threading.Thread(target=src.wait)
            waiter.start()
            src.write(IN, b"x")
        assert src.state is yomo.ClientState.CLOSED
        waiter.join(2.0)
        assert not waiter.is_alive()
        wait_until(lambda: got == [b"x"], "the frame")
    assert fn.state is yomo.ClientState.CLOSED
    fn.close()
    src.close()
    fn.wait()
    with pytest.raises(yomo.YomoError):
        src.write(IN, b"after close")
    wait_until(lambda: z.connections() == [], "zipper to drop both")


@pytest.mark.parametrize("concurrency", [1, 3])
def test_close_waits_for_running_handlers(sync_zipper, sync_clients, concurrency):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    started = threading.Semaphore(0)

    def slow(ctx: yomo.Context) -> None:
        started.release()
        time.sleep(0.4)
        ctx.write(OUT, b"done:" + ctx.data)

    fn = sync_clients.sfn(z.addr, "slow", [IN], concurrency=concurrency)
    fn.set_handler(slow)
    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    for i in range(concurrency):
        src.write(IN, b"%d" % i)
    for _ in range(concurrency):
        assert started.acquire(timeout=5.0)
    fn.close()
    sink.wait(concurrency)
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
def test_bad_tags_are_refused_before_sending(sync_zipper, sync_clients, tag, error):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [FENCE])
    src = sync_clients.source(z.addr, "src")
    src.connect()
    with pytest.raises(error) as info:
        src.write(tag, b"data")
    assert type(info.value) is error or error is TypeError
    assert str(info.value).startswith("yomo: ")
    if error is yomo.TagError:  # out of range: said in hex, not called reserved
        assert "out of range" in str(info.value) and "reserved" not in str(info.value)
        assert f"{tag:#x}".lstrip("-") in str(info.value)
    if tag == "0x33":
        assert "write 0x33" in str(info.value)
    with pytest.raises(error):
        src.write_with_target(tag, b"data", "t")
    fn = sync_clients.sfn(z.addr, "fn")
    with pytest.raises(error):
        fn.set_observe_data_tags(tag)
    src.write(FENCE, b"fence")
    sink.wait(1)
    (info_src,) = [c for c in z.connections() if c.name == "src"]
    assert info_src.frames_in == 1


def test_bad_data_is_refused_and_none_is_a_noop(sync_zipper, sync_clients):
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [IN, FENCE])
    failures: list[str] = []

    def echo(ctx: yomo.Context) -> None:
        for bad in ("text", 42):
            try:
                ctx.write(FENCE, bad)  # type: ignore[arg-type]
            except TypeError:
                failures.append(type(bad).__name__)
        ctx.write(FENCE, None)

    fn = sync_clients.sfn(z.addr, "echo", [OUT])
    fn.set_handler(echo)
    fn.connect()
    src = sync_clients.source(z.addr, "src")
    src.connect()
    for bad in ("text", 42):
        with pytest.raises(TypeError):
            src.write(IN, bad)  # type: ignore[arg-type]
    src.write(IN, None)
    src.write(IN, bytearray(b"ok"))
    src.write(IN, memoryview(b"mv"))
    src.write(OUT, b"to-echo")
    wait_until(lambda: len(failures) == 2, "the handler's checks")
    src.write(FENCE, b"fence")
    sink.wait(3)
    assert sink.data() == [b"ok", b"mv", b"fence"]
    assert failures == ["str", "int"]
    (info_src,) = [c for c in z.connections() if c.name == "src"]
    assert info_src.frames_in == 4


def test_tracing_spans_form_one_trace(sync_zipper, sync_clients):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    z = sync_zipper()
    sink = sync_clients.sink(z.addr, "sink", [OUT])
    fn = sync_clients.sfn(z.addr, "traced-fn", [IN], tracer_provider=provider)
    fn.set_handler(lambda ctx: (OUT, ctx.data.upper()))
    fn.connect()
    src = sync_clients.source(z.addr, "traced-src", tracer_provider=provider)
    src.connect()
    src.write(IN, b"trace me")
    sink.wait(1)
    wait_until(lambda: len(exporter.get_finished_spans()) >= 2, "two spans")
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


def test_connect_twice_is_harmless(sync_zipper, sync_clients):
    z = sync_zipper()
    lock = threading.Lock()
    state = {"active": 0, "peak": 0, "runs": 0}

    def tick(ctx: yomo.CronContext) -> None:
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
        time.sleep(0.3)  # longer than the period: a second cron task would overlap
        with lock:
            state["active"] -= 1
            state["runs"] += 1

    fn = sync_clients.sfn(z.addr, "cron")
    fn.set_cron_handler("@every 100ms", tick)
    fn.connect()
    fn.connect()
    wait_until(lambda: state["runs"] >= 3, "three cron runs")
    assert state["peak"] == 1
    assert len(z.connections()) == 1


def test_close_gives_up_on_a_stuck_handler(sync_zipper, sync_clients):
    z = sync_zipper()
    errors: list[BaseException] = []
    started, release = threading.Event(), threading.Event()

    def stuck(ctx: yomo.Context) -> None:
        started.set()
        release.wait(10)
        ctx.write(OUT, b"too late")

    fn = sync_clients.sfn(z.addr, "stuck", [IN])
    fn.set_handler(stuck)
    fn.set_error_handler(errors.append)
    fn.connect()
    src = sync_clients.source(z.addr)
    src.connect()
    src.write(IN, b"x")
    assert started.wait(5.0)
    fn.close(timeout=0.3)
    assert fn.state is yomo.ClientState.CLOSED
    release.set()
    # the late write fails and is reported, not lost silently
    wait_until(lambda: len(errors) == 1, "the late write's error")
    assert isinstance(errors[0], yomo.HandlerError)
    assert isinstance(errors[0].error, yomo.YomoError)
    wait_until(lambda: [c.name for c in z.connections()] == ["source"], "fn gone")
