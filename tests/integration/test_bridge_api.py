"""The AI bridge's HTTP API, called with real clients (the openai SDK, httpx).

A real zipper serves the bridge; LLM functions connect to it over QUIC; the LLM
is the scripted OpenAI-compatible server on loopback (tests/support/scripted_llm.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from support.scripted_llm import (
    HttpError,
    Reply,
    ScriptedLLM,
    ToolCall,
    call_tools_then_answer,
    tool_results,
)
from support.wire_tool import WireTool, arguments_of

from .bridge_helpers import ai_bridge, bridge_url
from .helpers import eventually

WEATHER = {"get-weather": {"city": "Paris"}}


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(call_tools_then_answer(WEATHER)) as server:
        yield server


@pytest.fixture
async def served(zipper: Any, llm: ScriptedLLM) -> AsyncIterator[tuple[Any, WireTool]]:
    z = await zipper(bridge=ai_bridge(llm.base_url))
    tool = WireTool("get-weather", z.addr, description="current weather of a city")
    await tool.connect()
    yield z, tool
    await tool.close()


def client(z: Any, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=bridge_url(z) + "/v1", api_key="unused", max_retries=0, **options
    )


async def test_overview_lists_registered_functions(served: Any) -> None:
    z, tool = served
    async with httpx.AsyncClient() as http:
        response = await http.get(bridge_url(z) + "/overview")
    assert response.status_code == 200
    assert response.json() == {
        "Functions": [
            {
                "name": "get-weather",
                "description": "current weather of a city",
                "parameters": tool.definition.parameters,
            }
        ]
    }


async def test_chat_completion_runs_the_tool_and_quotes_its_result(
    served: Any, llm: ScriptedLLM
) -> None:
    z, tool = served
    async with client(z) as c:
        completion = await c.chat.completions.create(
            model="scripted-model",
            messages=[{"role": "user", "content": "weather in Paris?"}],
        )
    assert completion.choices[0].message.content == (
        'Tool results: get-weather: get-weather got {"city":"Paris"}'
    )
    assert completion.choices[0].finish_reason == "stop"
    # the function got the call as Go sends it
    assert len(tool.calls) == 1
    call = tool.calls[0]
    assert arguments_of(call) == {"city": "Paris"}
    assert call.function_name == "get-weather" and call.agent_context == "null"
    assert len(call.tid) == 32 and len(call.req_id) == 16 and call.tool_call_id
    assert tool.metadata[0].get("yomo-target") == "get-weather"
    # the LLM was offered the tool and saw its result; usage is summed over both turns
    first, second = llm.requests
    assert [t["function"]["name"] for t in first.body["tools"]] == ["get-weather"]
    assert tool_results(second.body) == [("get-weather", 'get-weather got {"city":"Paris"}')]
    assert completion.usage is not None and completion.usage.total_tokens > 0
    stats = z.stats()["bridge"]
    assert stats["llm_turns"] == 2 and stats["calls"]["answered"] == 1


async def test_streamed_chat_completion(served: Any, llm: ScriptedLLM) -> None:
    z, tool = served
    async with client(z) as c:
        stream = await c.chat.completions.create(
            model="scripted-model",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == 'Tool results: get-weather: get-weather got {"city":"Paris"}'
    assert len({c.id for c in chunks}) == 1  # one completion id over both turns
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]  # the tool-call turn's finish chunk is held back
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    usage = [c.usage for c in chunks if c.usage]
    assert usage and usage[-1].total_tokens > 0
    assert len(tool.calls) == 1 and len(llm.requests) == 2


async def test_agent_context_reaches_the_function(served: Any) -> None:
    z, tool = served
    async with httpx.AsyncClient() as http:
        response = await http.post(
            bridge_url(z) + "/v1/chat/completions",
            json={
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "agent_context": {"user": "ada", "n": 1},
            },
        )
    assert response.status_code == 200, response.text
    assert json.loads(tool.calls[0].agent_context) == {"user": "ada", "n": 1}


async def test_invoke(served: Any) -> None:
    z, _ = served
    async with httpx.AsyncClient() as http:
        response = await http.post(
            bridge_url(z) + "/invoke",
            json={"prompt": "weather in Paris?", "include_call_stack": True},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["content"] == 'Tool results: get-weather: get-weather got {"city":"Paris"}'
    assert body["finish_reason"] == "stop"
    assert body["token_usage"]["prompt_tokens"] > 0
    roles = [m["role"] for m in body["history"]]
    assert roles == ["user", "assistant", "tool"]


async def test_callers_own_tools_are_handed_back(zipper: Any) -> None:
    def script(request: dict[str, Any]) -> Reply:
        return Reply(
            tool_calls=(ToolCall("lookup", {"q": "x"}), ToolCall("get-weather", {"city": "Oslo"}))
        )

    with ScriptedLLM(script) as llm:
        z = await zipper(bridge=ai_bridge(llm.base_url))
        async with WireTool("get-weather", z.addr) as tool:
            own = {
                "type": "function",
                "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
            }
            async with client(z) as c:
                completion = await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "?"}], tools=[own]
                )
                stream = await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "?"}], tools=[own], stream=True
                )
                chunks = [chunk async for chunk in stream]
            offered = [t["function"]["name"] for t in llm.requests[0].body["tools"]]
    assert offered == ["get-weather", "lookup"]  # ours first, then the caller's
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and [c.function.name for c in calls] == ["lookup"]  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"
    streamed = [
        d.function.name
        for c in chunks
        if c.choices
        for d in c.choices[0].delta.tool_calls or []
        if d.function and d.function.name
    ]
    assert streamed == ["lookup"]
    assert tool.calls == []  # a mixed turn runs no server tool (Go drops them)
    assert len(llm.requests) == 2


async def test_parallel_tool_calls_run_in_parallel(zipper: Any) -> None:
    import asyncio

    started: list[str] = []
    gate = asyncio.Event()

    async def slow(call: Any) -> str:
        started.append(call.function_name)
        await gate.wait()
        return f"{call.function_name} done"

    with ScriptedLLM(call_tools_then_answer({"a": {}, "b": {}})) as llm:
        z = await zipper(bridge=ai_bridge(llm.base_url))
        async with WireTool("a", z.addr, answer=slow), WireTool("b", z.addr, answer=slow):
            async with client(z) as c:
                task = asyncio.ensure_future(
                    c.chat.completions.create(
                        model="m", messages=[{"role": "user", "content": "?"}]
                    )
                )
                await eventually(lambda: len(started) == 2, "both tools to be called at once")
                gate.set()
                completion = await task
    assert completion.choices[0].message.content == "Tool results: a: a done | b: b done"


async def test_response_format_is_passed_through(served: Any, llm: ScriptedLLM) -> None:
    z, _ = served
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}, "strict": True},
    }
    async with client(z) as c:
        await c.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "?"}],
            response_format=fmt,  # type: ignore[arg-type]
        )
    assert all(r.body["response_format"] == fmt for r in llm.requests)


async def test_turns_are_bounded(zipper: Any) -> None:
    always = lambda request: Reply(tool_calls=(ToolCall("loop", {}),))  # noqa: E731
    with ScriptedLLM(always) as llm:
        z = await zipper(bridge=ai_bridge(llm.base_url))
        async with WireTool("loop", z.addr) as tool:
            async with client(z) as c:
                completion = await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "?"}]
                )
    assert len(llm.requests) == 15  # the first call and 14 more (Go: maxCalls)
    assert len(tool.calls) == 14
    assert completion.choices[0].finish_reason == "tool_calls"


async def test_provider_http_error_status_is_relayed(zipper: Any) -> None:
    def script(request: dict[str, Any]) -> HttpError:
        return HttpError(
            404, f"The model `{request['model']}` does not exist", "invalid_request_error"
        )

    with ScriptedLLM(script) as llm:
        z = await zipper(bridge=ai_bridge(llm.base_url))
        async with client(z) as c:
            with pytest.raises(openai.NotFoundError, match="The model `nope` does not exist"):
                await c.chat.completions.create(
                    model="nope", messages=[{"role": "user", "content": "?"}]
                )
            with pytest.raises(openai.NotFoundError, match="does not exist"):
                await c.chat.completions.create(
                    model="nope", messages=[{"role": "user", "content": "?"}], stream=True
                )
            with pytest.raises(openai.InternalServerError) as info:
                llm.script = lambda r: HttpError(500, "overloaded")
                await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "?"}]
                )
    assert info.value.status_code == 502 and "overloaded" in str(info.value)


async def test_the_bridge_on_the_pure_python_data_path(zipper: Any, llm: ScriptedLLM) -> None:
    import dataclasses

    from yomo.transport import DEFAULT_ZIPPER_SETTINGS

    quic = dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, backend="qh3")
    z = await zipper(bridge=ai_bridge(llm.base_url), quic=quic)
    assert z.backend.startswith("qh3")
    async with WireTool("get-weather", z.addr) as tool, client(z) as c:
        completion = await c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "weather in Paris?"}]
        )
    assert completion.choices[0].message.content == (
        'Tool results: get-weather: get-weather got {"city":"Paris"}'
    )
    assert len(tool.calls) == 1


async def test_an_idle_connection_stays_open_past_the_clients_pool_limit(served: Any) -> None:
    """Clients that pool connections (httpx and the openai SDK: 5 s idle) reuse one that
    has been idle up to their limit; a server closing it at the same moment (uvicorn's
    default 5 s) made those requests fail. The bridge keeps idle connections longer."""
    import asyncio
    from urllib.parse import urlsplit

    z, _ = served
    url = urlsplit(bridge_url(z))
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    request = f"GET /overview HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()

    async def overview() -> bytes:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        return head.split(b"\r\n", 1)[0]

    try:
        assert await overview() == b"HTTP/1.1 200 OK"
        with pytest.raises(asyncio.TimeoutError):  # no EOF: the server keeps it open
            await asyncio.wait_for(reader.read(1), 6.5)
        assert await overview() == b"HTTP/1.1 200 OK"  # the same connection, reused
    finally:
        writer.close()
