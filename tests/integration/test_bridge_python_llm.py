"""Our Python LLM functions (yomo.StreamFunction / yomo.aio.StreamFunction with a
description and an input type) behind our zipper's AI bridge and MCP server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import openai
from mcp import Client

import yomo
import yomo.aio
from support.scripted_llm import ScriptedLLM, call_tools_then_answer, tool_results

from .bridge_helpers import ai_bridge, bridge_url, mcp_url
from .helpers import PLAIN_TLS, eventually


@dataclass
class Weather:
    city: str = field(metadata={"description": "the city"})


@dataclass
class AddArgs:
    a: int
    b: int


ARGS = {"get-weather": {"city": "Paris"}, "add": {"a": 2, "b": 40}, "flaky": {}}


async def test_python_llm_functions_behind_our_bridge(zipper: Any) -> None:
    with ScriptedLLM(call_tools_then_answer(ARGS)) as llm:
        z = await zipper(bridge=ai_bridge(llm.base_url, mcp=True))

        async def get_weather(ctx: yomo.AsyncContext) -> None:
            args = ctx.read_llm_arguments(Weather)
            await ctx.write_llm_result(f"sunny in {args.city}")

        def add(ctx: yomo.Context) -> None:
            args = ctx.read_llm_arguments(AddArgs)
            ctx.write_llm_result(args.a + args.b)

        def flaky(ctx: yomo.Context) -> None:
            raise RuntimeError("the weather service is down")

        weather = yomo.aio.StreamFunction(
            "get-weather",
            z.addr,
            tls=PLAIN_TLS,
            description="Current weather",
            input_schema=Weather,
        )
        weather.set_handler(get_weather)
        await weather.connect()
        sync_functions = []
        for name, handler, schema in (("add", add, AddArgs), ("flaky", flaky, None)):
            sfn = yomo.StreamFunction(
                name, z.addr, tls=PLAIN_TLS, description=f"the {name} tool", input_schema=schema
            )
            sfn.set_handler(handler)
            sfn.set_error_handler(lambda error: None)
            await asyncio.to_thread(sfn.connect)
            sync_functions.append(sfn)
        try:
            await eventually(lambda: len(z.functions) == 3, "three functions to register")
            async with openai.AsyncOpenAI(base_url=bridge_url(z) + "/v1", api_key="k") as c:
                plain = await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "weather and sums"}]
                )
                stream = await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "again"}], stream=True
                )
                streamed = "".join(
                    [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
                )
            async with Client(mcp_url(z) + "/mcp") as client:
                names = sorted(t.name for t in (await client.list_tools()).tools)
                sum_result = await client.call_tool("add", {"a": 1, "b": 2})
                bad = await client.call_tool("add", {"a": "one"})
        finally:
            await weather.close()
            for sfn in sync_functions:
                await asyncio.to_thread(sfn.close)
    results = dict(tool_results(llm.requests[1].body))
    assert results["get-weather"] == "sunny in Paris"
    assert results["add"] == "42"
    assert "the weather service is down" in results["flaky"]
    assert plain.choices[0].message.content == streamed
    assert names == ["add", "flaky", "get-weather"]
    assert sum_result.content[0].text == "3"  # type: ignore[union-attr]
    # a call the function cannot read is answered as a failed call, never a crash
    assert bad.is_error
    assert "field 'a': expected an integer" in bad.content[0].text  # type: ignore[union-attr]
