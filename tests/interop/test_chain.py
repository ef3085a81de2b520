"""Chains that cross languages: source -> fn -> fn -> sink, alternating Go and Python.

Every stage must keep the tid and source id of the original write; with
tracing on (Python: an opentelemetry-sdk TracerProvider) the trace id travels
the whole chain, and Go passes `yomo-trace-id` / `yomo-span-id` on unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from goharness import GoPeers, expected_payload, sha256hex, transform
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pypeers import PySink, py_sfn, run_py_source

from yomo.aio import Zipper

__all__: list[str] = []

T0, T1, T2 = 0x10, 0x11, 0x12
N = 100
SIZES = (0, 1, 1024, 65536)


def _tracer() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _rows(sink: Any) -> list[dict[str, Any]]:
    if isinstance(sink, PySink):
        return [
            {
                "tag": f.tag,
                "sha256": f.sha256,
                "tid": f.tid,
                "source_id": f.source_id,
                "trace_id": f.trace_id,
                "span_id": f.span_id,
            }
            for f in sink.frames
        ]
    return list(sink.frames())


def _check_chain(rows: list[dict[str, Any]], first: str, second: str) -> dict[int, list[Any]]:
    """Payloads of each stage right and in order; one tid and source id per write along the chain."""
    stage = {t: [r for r in rows if r["tag"] == t] for t in (T0, T1, T2)}
    assert [len(v) for v in stage.values()] == [N, N, N]
    raw = [expected_payload(i, SIZES[i % len(SIZES)]) for i in range(N)]
    assert [r["sha256"] for r in stage[T0]] == [sha256hex(p) for p in raw]
    assert [r["sha256"] for r in stage[T1]] == [sha256hex(transform(p, first)) for p in raw]
    assert [r["sha256"] for r in stage[T2]] == [
        sha256hex(transform(transform(p, first), second)) for p in raw
    ]
    tids = [r["tid"] for r in stage[T0]]
    assert len(set(tids)) == N and all(isinstance(t, str) and len(t) == 21 for t in tids)
    assert [r["tid"] for r in stage[T1]] == tids, "tid kept by the first function"
    assert [r["tid"] for r in stage[T2]] == tids, "tid kept by the second function"
    source_ids = {r["source_id"] for r in rows}
    assert len(source_ids) == 1 and None not in source_ids
    return stage


async def test_go_source_py_fn_go_fn_py_sink(any_zipper: Any, go_peer: GoPeers) -> None:
    fn_provider, fn_spans = _tracer()
    # The sink records the metadata as it arrives (a tracing sink would put its own span there).
    sink = py_sfn(any_zipper, name="py-sink", observe=(T0, T1, T2), out_tag=None)
    await sink.sfn.connect()
    await asyncio.to_thread(
        go_peer.sfn, any_zipper, name="go-fn", observe=(T1,), out_tag=T2, transform="prefix:go>",
        mode="ordered",
    )  # fmt: skip
    py_fn = py_sfn(any_zipper, name="py-fn", observe=(T0,), out_tag=T1, spec="upper",
                   tracer_provider=fn_provider)  # fmt: skip
    await py_fn.sfn.connect()

    source = go_peer.source(any_zipper, n=N, sizes=SIZES, tags=(T0,))
    assert await source.async_wait_exit(60) == 0, source.tail()
    await sink.wait_count({T0: N, T1: N, T2: N}, 60)
    await py_fn.close()
    await sink.close()

    stage = _check_chain(_rows(sink), "upper", "prefix:go>")
    # Go's source traces nothing without an OTLP endpoint: the trace starts at the Python function.
    assert {r["trace_id"] for r in stage[T0]} == {None}
    made = {format(s.context.trace_id, "032x"): s for s in fn_spans.get_finished_spans()}
    assert len(made) == N
    t1 = [(r["trace_id"], r["span_id"]) for r in stage[T1]]
    assert {t for t, _ in t1} == set(made), "the Python function's trace ids are on its writes"
    assert [(r["trace_id"], r["span_id"]) for r in stage[T2]] == t1, (
        "the Go function passes yomo-trace-id and yomo-span-id on unchanged"
    )


async def test_py_source_go_fn_py_fn_go_sink(any_zipper: Any, go_peer: GoPeers) -> None:
    source_provider, source_spans = _tracer()
    fn_provider, fn_spans = _tracer()

    sink = await asyncio.to_thread(go_peer.sink, any_zipper, observe=(T0, T1, T2))
    py_fn = py_sfn(any_zipper, name="py-fn", observe=(T1,), out_tag=T2, spec="prefix:py>",
                   tracer_provider=fn_provider)  # fmt: skip
    await py_fn.sfn.connect()
    await asyncio.to_thread(
        go_peer.sfn, any_zipper, name="go-fn", observe=(T0,), out_tag=T1, transform="upper",
        mode="ordered",
    )  # fmt: skip

    source_id = await run_py_source(
        any_zipper, n=N, sizes=SIZES, tags=(T0,), tracer_provider=source_provider
    )
    await sink.async_wait_for(lambda p: len(p.frames()) >= 3 * N, 60, f"{3 * N} frames")
    await asyncio.sleep(0.5)
    await py_fn.close()

    stage = _check_chain(_rows(sink), "upper", "prefix:py>")
    assert {r["source_id"] for r in _rows(sink)} == {source_id}
    written = [
        (format(s.context.trace_id, "032x"), format(s.context.span_id, "016x"))
        for s in source_spans.get_finished_spans()
    ]
    assert [(r["trace_id"], r["span_id"]) for r in stage[T0]] == written
    assert [(r["trace_id"], r["span_id"]) for r in stage[T1]] == written, (
        "the Go function passes yomo-trace-id and yomo-span-id on unchanged"
    )
    assert [r["trace_id"] for r in stage[T2]] == [t for t, _ in written], "one trace end to end"
    # The Python function's spans are children of the source's spans, by way of the Go function.
    fn = {format(s.context.trace_id, "032x"): s for s in fn_spans.get_finished_spans()}
    assert len(fn) == N
    for (trace_id, span_id), row in zip(written, stage[T2], strict=True):
        span = fn[trace_id]
        assert span.parent is not None and format(span.parent.span_id, "016x") == span_id
        assert row["span_id"] == format(span.context.span_id, "016x")


async def test_go_handler_with_an_otlp_endpoint_passes_the_trace_on(
    py_zipper: Callable[..., Awaitable[Zipper]], go_peer: GoPeers
) -> None:
    """Go's SetHandler path, even with OTEL_EXPORTER_OTLP_ENDPOINT set, keeps trace and span id.

    v1.22.3 hands `DisableOtelTrace()` (false unless set) to `trace.NewTracer` as its
    *enable* flag, so the handler always gets the no-op tracer, whose span is the
    frame's own: the ids pass through unchanged (see docs/interop.md).
    """
    zipper = await py_zipper()
    provider, spans = _tracer()
    sink = py_sfn(zipper, name="py-sink", observe=(T1,), out_tag=None)
    await sink.sfn.connect()
    # Nothing listens on the endpoint: Go's exporter fails in the background, spans still exist.
    await asyncio.to_thread(
        go_peer.sfn, zipper, observe=(T0,), out_tag=T1, transform="identity", mode="handler",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"},
    )  # fmt: skip
    await run_py_source(zipper, n=20, sizes=(8,), tags=(T0,), tracer_provider=provider, linger=0)
    await sink.wait_count({T1: 20}, 30)
    await sink.close()

    written = {
        format(s.context.trace_id, "032x"): format(s.context.span_id, "016x")
        for s in spans.get_finished_spans()
    }
    assert len(written) == 20
    got = {f.trace_id: f.span_id for f in sink.frames}
    assert got == written, "Go keeps the trace id and the span id"
