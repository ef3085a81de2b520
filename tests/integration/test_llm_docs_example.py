"""The complete example of docs/llm.md: a Python LLM function behind our zipper's AI bridge.

The function is the page's ``weather.py`` (same type, description and handler); the
LLM is the scripted OpenAI-compatible server; the bridge is called as the page
calls it (``/overview`` and ``/v1/chat/completions`` over plain HTTP, then the
openai SDK plain and streamed) and through MCP. The definition the page shows is
checked against the one the function announces.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import openai
import pytest

import yomo
import yomo.aio
from support.scripted_llm import ScriptedLLM, by_prompt, call_tools_then_answer, tool_results

from .bridge_helpers import ai_bridge, bridge_url, mcp_url
from .helpers import PLAIN_TLS, eventually

DOC = (Path(__file__).resolve().parents[2] / "docs" / "llm.md").read_text()


@dataclass
class Weather:
    city: Annotated[str, "The city name to get the weather for"]
    unit: Annotated[Literal["celsius", "fahrenheit"], "The temperature unit"] = "celsius"


PARIS_F = "It is sunny in Paris, 70 degrees fahrenheit"
SCRIPT = by_prompt(
    {
        "Paris, in fahrenheit": call_tools_then_answer(
            {"get-weather": {"city": "Paris", "unit": "fahrenheit"}}
        ),
        "weather in Paris": call_tools_then_answer({"get-weather": {"city": "Paris"}}),
        "no city": call_tools_then_answer({"get-weather": {"unit": "celsius"}}),
    }
)


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(SCRIPT) as server:
        yield server


@pytest.fixture
async def served(zipper: Any, llm: ScriptedLLM) -> AsyncIterator[tuple[Any, list[Any]]]:
    z = await zipper(bridge=ai_bridge(llm.base_url, mcp=True))
    seen: list[Any] = []
    lock = threading.Lock()
    sfn = yomo.aio.StreamFunction(
        "get-weather",
        z.addr,
        tls=PLAIN_TLS,
        description="Get the current weather for a given city",
        input_schema=Weather,
    )

    def handler(ctx: yomo.Context) -> None:  # weather.py's handler
        args = ctx.read_llm_arguments(Weather)
        with lock:
            seen.append(args)
        degrees = 21 if args.unit == "celsius" else 70
        ctx.write_llm_result(f"It is sunny in {args.city}, {degrees} degrees {args.unit}")

    sfn.set_handler(handler)
    await sfn.connect()
    await eventually(lambda: "get-weather" in z.stats().get("llm_functions", []), "registered")
    yield z, seen
    await sfn.close()


async def test_the_page_shows_the_definition_the_function_announces(served: Any) -> None:
    z, _ = served
    shown = json.loads(re.search(r"```json\n(.*?)```", DOC, re.S).group(1))  # type: ignore[union-attr]
    async with httpx.AsyncClient() as http:
        overview = (await http.get(bridge_url(z) + "/overview")).json()
    assert overview == {"Functions": [shown]}


async def test_curl_and_the_openai_sdk(served: Any, llm: ScriptedLLM) -> None:
    z, seen = served
    body = {"messages": [{"role": "user", "content": "Weather in Paris, in fahrenheit?"}]}
    async with httpx.AsyncClient(timeout=30) as http:  # what the page's curl sends
        reply = await http.post(bridge_url(z) + "/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    assert (
        reply.json()["choices"][0]["message"]["content"] == f"Tool results: get-weather: {PARIS_F}"
    )
    assert seen == [Weather("Paris", "fahrenheit")]

    client = openai.AsyncOpenAI(base_url=bridge_url(z) + "/v1", api_key="unused", max_retries=0)
    question: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=question)
    sunny = "It is sunny in Paris, 21 degrees celsius"
    assert answer.choices[0].message.content == f"Tool results: get-weather: {sunny}"
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=question, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == f"Tool results: get-weather: {sunny}"
    assert seen[1:] == [Weather("Paris", "celsius")] * 2
    # the tool the LLM was offered is the function's definition
    offered = llm.requests[-1].body["tools"]
    assert [t["function"]["name"] for t in offered] == ["get-weather"]


async def test_bad_arguments_reach_the_llm_as_a_failed_call(served: Any, llm: ScriptedLLM) -> None:
    z, seen = served
    client = openai.AsyncOpenAI(base_url=bridge_url(z) + "/v1", api_key="unused", max_retries=0)
    question: Any = [{"role": "user", "content": "The weather, no city"}]
    answer = await client.chat.completions.create(model="m", messages=question)
    failure = "error: invalid arguments for function 'get-weather': missing required field 'city'"
    assert answer.choices[0].message.content == f"Tool results: get-weather: {failure}"
    assert tool_results(llm.requests[-1].body) == [("get-weather", failure)]
    assert seen == []


async def test_mcp_calls_the_python_function(served: Any) -> None:
    import mcp

    z, seen = served
    async with mcp.Client(mcp_url(z) + "/mcp") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool("get-weather", {"city": "Oslo"})
    assert tools["get-weather"].input_schema["required"] == ["city"]
    assert [c.text for c in result.content] == ["It is sunny in Oslo, 21 degrees celsius"]
    assert seen == [Weather("Oslo", "celsius")]
