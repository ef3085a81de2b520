"""The bridge's spans are named as Go names them (server span per path, llm_chat(#n),
call_functions(#n), one span per tool), recorded by a real OpenTelemetry SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from support.scripted_llm import ScriptedLLM, call_tools_then_answer
from support.wire_tool import WireTool

from .bridge_helpers import ai_bridge, bridge_url


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider can be set only once
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def test_spans_of_a_chat_with_a_tool_call(zipper: Any, spans: InMemorySpanExporter) -> None:
    with ScriptedLLM(call_tools_then_answer({"get-weather": {"city": "Oslo"}})) as llm:
        z = await zipper(bridge=ai_bridge(llm.base_url))
        async with WireTool("get-weather", z.addr):
            async with openai.AsyncOpenAI(base_url=bridge_url(z) + "/v1", api_key="k") as c:
                await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "weather?"}]
                )
    finished = spans.get_finished_spans()
    names = [s.name for s in finished if s.instrumentation_scope.name == "yomo-llm-bridge"]
    assert names.count("llm_chat(#1)") == 1 and names.count("llm_chat(#2)") == 1
    assert "call_functions(#1)" in names and "get-weather" in names
    server = next(s for s in finished if s.name == "/v1/chat/completions")
    assert server.kind == SpanKind.SERVER and "host" in (server.attributes or {})
    chat = next(s for s in finished if s.name == "llm_chat(#1)")
    assert chat.attributes is not None
    assert chat.attributes["server_tool_count"] == 1 and chat.attributes["stream"] is False
    # every span of the request is in the server span's trace
    assert {s.context.trace_id for s in finished if s.name in ("llm_chat(#1)", "get-weather")} == {
        server.context.trace_id
    }
