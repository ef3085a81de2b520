"""OpenTelemetry spans carried in YoMo metadata (``yomo-trace-id``, ``yomo-span-id``, ``yomo-traced``).

Only active with a tracer provider, so functions without tracing pay nothing.
Without one, ``OTEL_EXPORTER_OTLP_ENDPOINT`` turns tracing on as in Go: an
OTLP/HTTP exporter from the ``tracing`` extra, one provider per service name.
The ids use OpenTelemetry's hex forms (32 and 16 characters), as Go does, so
one trace crosses Go and Python functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from yomo.wire import SPAN_ID, TRACE_ID, TRACED

__all__ = ["OTLP_ENDPOINT_ENV", "Tracing", "provider_from_env"]

OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
_providers: dict[str, Any] = {}
_providers_lock = threading.Lock()
_warned = False


def provider_from_env(service: str) -> Any | None:
    """A tracer provider exporting over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    None when the variable is unset, or (with one warning) when the ``tracing``
    extra (opentelemetry-sdk and the OTLP exporter) is not installed.
    """
    global _warned
    if not os.environ.get(OTLP_ENDPOINT_ENV):
        return None
    with _providers_lock:
        if service in _providers:
            return _providers[service]
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            if not _warned:
                _warned = True
                logging.getLogger("yomo").warning(
                    "%s is set but tracing is off: install the tracing extra "
                    "(pip install 'pyyomo[tracing]')",
                    OTLP_ENDPOINT_ENV,
                )
            return None
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _providers[service] = provider
        return provider


class Tracing:
    """Starts spans for writes and handlers and stamps their ids into metadata."""

    def __init__(self, tracer_provider: Any | None, service: str) -> None:
        if tracer_provider is None:
            tracer_provider = provider_from_env(service)
        self.enabled = tracer_provider is not None
        self._tracer: Any = None
        if tracer_provider is not None:
            self._tracer = tracer_provider.get_tracer("yomo", schema_url=None)
        self.service = service

    @contextlib.contextmanager
    def span(self, name: str, metadata: dict[str, str], **attributes: Any) -> Iterator[Any]:
        """A span that continues the trace found in ``metadata`` and writes its ids back.

        Yields the OpenTelemetry span (None when tracing is off) for more attributes.
        """
        if not self.enabled:
            yield None
            return
        from opentelemetry import trace

        parent = _parent_context(metadata)
        with self._tracer.start_as_current_span(
            name, context=parent, attributes=attributes or None
        ) as span:
            sc = span.get_span_context()
            metadata[TRACE_ID] = format(sc.trace_id, "032x")
            metadata[SPAN_ID] = format(sc.span_id, "016x")
            metadata[TRACED] = "true" if span.is_recording() else "false"
            del trace
            yield span


def _parent_context(metadata: dict[str, str]) -> Any:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    trace_id = metadata.get(TRACE_ID, "")
    span_id = metadata.get(SPAN_ID, "")
    if len(trace_id) != 32 or len(span_id) != 16:
        return None
    try:
        sc = SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(1 if metadata.get(TRACED) == "true" else 0),
        )
    except ValueError:
        return None
    if not sc.is_valid:
        return None
    return trace.set_span_in_context(NonRecordingSpan(sc))
