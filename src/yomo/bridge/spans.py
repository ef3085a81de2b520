"""The bridge's spans, skipped while OpenTelemetry has nowhere to send them.

Go names them (pkg/bridge/ai/chat.go): a server span per path, ``llm_chat(#n)`` per
LLM turn, ``call_functions(#n)`` per round of tool calls, one span per tool. Until a
tracer provider is set, OpenTelemetry's global proxy hands out no-op spans, which
still cost about 12 µs each to enter and leave; a bridge request made five of them.
``current_span`` checks the global provider per call, so a provider set later (after
the bridge started) is used from the next span on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

__all__ = ["current_span", "tracing"]

_OFF: contextlib.nullcontext[None] = contextlib.nullcontext()


def tracing(tracer: trace.Tracer) -> bool:
    """False while ``tracer`` is the global proxy and no tracer provider is set."""
    return not (
        isinstance(tracer, trace.ProxyTracer)
        and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    )


def current_span(
    tracer: trace.Tracer,
    name: str,
    *,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> contextlib.AbstractContextManager[Any]:
    """``tracer.start_as_current_span(...)``, or a shared no-op while tracing is off."""
    if not tracing(tracer):
        return _OFF
    return tracer.start_as_current_span(name, kind=kind, attributes=attributes)
