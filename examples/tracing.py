"""Tracing: one OpenTelemetry trace across source -> function -> sink.

Give each client a ``tracer_provider``; YoMo carries the trace in the frame
metadata (``yomo-trace-id``, ``yomo-span-id``), so the source's write, the
function's handler and the sink's handler are spans of one trace, across Go
and Python alike. Spans go to an OTLP/HTTP collector: the one named by
``OTEL_EXPORTER_OTLP_ENDPOINT`` if set, otherwise a tiny collector this script
runs on loopback and prints from. Without the exporter package the spans are
kept in memory and printed; without ``opentelemetry-sdk`` the example skips::

    pip install 'pyyomo[tracing]'
    python examples/tracing.py
"""

from __future__ import annotations

import http.server
import logging
import os
import sys
import threading
from typing import Any

import yomo

TAG_IN = 0x33
TAG_OUT = 0x34
COUNT = 3


class _Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver good enough for a demo: decodes and keeps the spans."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []  # (service, span name, trace id)
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for rs in request.resource_spans:
            service = next(
                (a.value.string_value for a in rs.resource.attributes if a.key == "service.name"),
                "?",
            )
            for ss in rs.scope_spans:
                for span in ss.spans:
                    with self.server.lock:
                        self.server.spans.append((service, span.name, span.trace_id.hex()))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:  # no access log
        pass


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("quic").setLevel(logging.ERROR)
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    except ImportError:
        print("skipped: this example needs opentelemetry-sdk (pip install 'pyyomo[tracing]')")
        return 0

    collector: _Collector | None = None
    memory: Any = None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        memory = InMemorySpanExporter()
        print("no OTLP exporter installed (pip install 'pyyomo[tracing]'): keeping spans in memory")

        def exporter() -> Any:
            return memory
    else:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if endpoint:
            print(f"exporting spans to the OTLP collector at {endpoint}")
            url = endpoint.rstrip("/") + "/v1/traces"
        else:
            collector = _Collector()
            threading.Thread(target=collector.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
            print(f"exporting spans over OTLP/HTTP to a demo collector at {url}")

        def exporter() -> Any:
            return OTLPSpanExporter(endpoint=url, timeout=5)

    def provider(service: str) -> TracerProvider:
        tp = TracerProvider(resource=Resource.create({"service.name": service}))
        tp.add_span_processor(SimpleSpanProcessor(exporter()))
        return tp

    providers = {name: provider(name) for name in ("source", "uppercase", "sink")}
    seen_traces: list[str] = []
    done = threading.Event()
    with yomo.Zipper("zipper", "127.0.0.1", 0, stats_interval=0) as zipper:
        upper = yomo.StreamFunction(
            "uppercase",
            zipper.addr,
            observe_data_tags=[TAG_IN],
            tracer_provider=providers["uppercase"],
        )
        upper.set_handler(lambda ctx: ctx.write(TAG_OUT, ctx.data.upper()))
        sink = yomo.StreamFunction(
            "sink", zipper.addr, observe_data_tags=[TAG_OUT], tracer_provider=providers["sink"]
        )

        @sink.set_handler
        def show(ctx: yomo.Context) -> None:
            trace_id = ctx.metadata.get("yomo-trace-id", "")
            seen_traces.append(trace_id)
            print(f"sink    <- {ctx.data.decode()!r} trace {trace_id}", flush=True)
            if len(seen_traces) == COUNT:
                done.set()

        with (
            upper,
            sink,
            yomo.Source("source", zipper.addr, tracer_provider=providers["source"]) as source,
        ):
            for i in range(COUNT):
                source.write(TAG_IN, f"traced message {i}".encode())
            done.wait(5)
    for tp in providers.values():
        tp.force_flush(5000)
        tp.shutdown()

    if memory is not None:
        spans = [
            (
                s.resource.attributes.get("service.name", "?"),
                s.name,
                format(s.context.trace_id, "032x"),
            )
            for s in memory.get_finished_spans()
        ]
    elif collector is not None:
        with collector.lock:
            spans = list(collector.spans)
        collector.shutdown()
    else:
        print(
            f"sent spans of {len(set(seen_traces))} traces to {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}"
        )
        return 0
    for trace_id in dict.fromkeys(seen_traces):
        chain = [f"{service}:{name}" for service, name, tid in spans if tid == trace_id]
        print(f"trace {trace_id}: {' -> '.join(chain)}")
    whole = all(
        {service for service, _, tid in spans if tid == t} == {"source", "uppercase", "sink"}
        for t in seen_traces
    )
    print(
        f"done: {len(spans)} spans, {len(set(seen_traces))} traces, each spans all 3 services: {whole}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
