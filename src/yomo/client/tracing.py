"""OpenTelemetry spans carried in YoMo metadata (``yomo-trace-id``, ``yomo-span-id``, ``yomo-traced``).

Only active with a tracer provider, so functions without tracing pay nothing.
Without one, ``OTEL_EXPORTER_OTLP_ENDPOINT`` turns tracing on as in Go: one
OTLP/HTTP exporter (the ``tracing`` extra) whose service name is ``yomo``
(Go: pkg/trace ServiceName; ``OTEL_SERVICE_NAME`` overrides it). The ids use
OpenTelemetry's hex forms (32 and 16 characters), as Go does, so one trace
crosses Go and Python functions. Spans are named after the client and carry
Go's attributes (sfn.go): ``sfn_handler_type`` (``async_handler``,
``pipe_handler``, ``corn_handler``: Go's spelling), ``recv_data_tag`` and
``recv_data_len``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from yomo.wire import SPAN_ID, TRACE_ID, TRACED

__all__ = [
    "ASYNC_HANDLER",
    "CRON_HANDLER",
    "OTLP_ENDPOINT_ENV",
    "PIPE_HANDLER",
    "SERVICE_NAME",
    "Tracing",
    "provider_from_env",
    "span_attributes",
]

OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
#: The service name of the provider built from the environment (Go: pkg/trace ServiceName).
SERVICE_NAME = "yomo"
#: ``sfn_handler_type`` values, as Go v1.22.3 writes them (sfn.go; "corn" is Go's spelling).
ASYNC_HANDLER = "async_handler"
PIPE_HANDLER = "pipe_handler"
CRON_HANDLER = "corn_handler"
_providers: dict[str, Any] = {}
_providers_lock = threading.Lock()
_warned = False


def provider_from_env(service: str = SERVICE_NAME) -> Any | None:
    """A tracer provider exporting over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    One per service name (``yomo`` unless ``OTEL_SERVICE_NAME`` says otherwise). None
    when the variable is unset, or (with one warning) when the ``tracing`` extra
    (opentelemetry-sdk and the OTLP exporter) is not installed.
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
        # OTEL_SERVICE_NAME (read by Resource.create) wins over ours
        attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _providers[service] = provider
        return provider


def span_attributes(handler_type: str, tag: int, data: Any) -> dict[str, Any]:
    """Go's attributes of a handler span: the handler type, the frame's tag and length."""
    return {"sfn_handler_type": handler_type, "recv_data_tag": tag, "recv_data_len": len(data)}


class Tracing:
    """Starts spans for writes and handlers and stamps their ids into metadata.

    Args:
        tracer_provider: an OpenTelemetry tracer provider; None: from the environment.
        name: the client's name (the name of its spans).
        scope: the instrumentation scope, as Go names its tracers (``StreamFunction``).
    """

    def __init__(
        self, tracer_provider: Any | None, name: str, scope: str = "StreamFunction"
    ) -> None:
        if tracer_provider is None:
            tracer_provider = provider_from_env()
        self.enabled = tracer_provider is not None
        self._tracer: Any = None
        if tracer_provider is not None:
            self._tracer = tracer_provider.get_tracer(scope, schema_url=None)
        self.name = name

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
