"""Go YoMo v1.22.3 LLM functions behind our zipper's AI bridge and MCP server.

The function is Go's own `yomo init -t llm -r go` template (get-weather), run with
Go's `yomo run -r go -m go.mod` (Go's `yomo run` runs `go mod tidy`, which needs a
module listing the proxy refuses here; the go.mod given requires v1.22.3 and every
module the harness already has). It registers with our zipper through its
handshake's function definition; the bridge calls it through the zipper.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from go_llm import GoLLMFunctions, prepare_go_llm_app
from goharness import GoBins, GoProcess
from mcp import Client

from support.scripted_llm import ScriptedLLM, call_tools_then_answer, tool_results
from yomo.zipper.bridge_config import AIConfig, AIServerConfig, BridgeConfig, MCPConfig

ARGS = {"city": "New York", "latitude": 40.7128, "longitude": -74.006}
RESULT = "The current weather in New York (40.712800,-74.006000) is sunny"


@pytest.fixture(scope="session")
def go_llm_app(go_bins: GoBins) -> Path:
    """Go's llm template, initialised once by Go's CLI, with a go.mod requiring v1.22.3."""
    return prepare_go_llm_app(go_bins)


@pytest.fixture
def go_llm(go_bins: GoBins, go_llm_app: Path) -> Iterator[GoLLMFunctions]:
    functions = GoLLMFunctions(go_bins, go_llm_app)
    yield functions
    functions.stop_all()


async def wait_registered(z: Any, name: str, proc: GoProcess, timeout: float = 240.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while name not in z.functions:
        if proc.returncode is not None or loop.time() > deadline:
            raise AssertionError(f"{name} did not register:\n{proc.tail()}")
        await asyncio.sleep(0.2)


def bridge(llm: ScriptedLLM) -> BridgeConfig:
    return BridgeConfig(
        ai=AIConfig(
            server=AIServerConfig(addr="127.0.0.1:0", provider="vllm"),
            providers={"vllm": {"api_endpoint": llm.base_url, "max_retries": "0"}},
        ),
        mcp=MCPConfig(addr="127.0.0.1:0"),
    )


@pytest.mark.timeout(600)
async def test_go_llm_function_behind_our_bridge(py_zipper: Any, go_llm: GoLLMFunctions) -> None:
    with ScriptedLLM(call_tools_then_answer({"get-weather": ARGS})) as llm:
        z = await py_zipper(bridge=bridge(llm))
        proc = go_llm.start("get-weather", z.addr)
        await wait_registered(z, "get-weather", proc)
        api = z._bridge.api.url
        # /overview: Go's definition, as its function generated it
        async with httpx.AsyncClient() as http:
            overview = (await http.get(api + "/overview")).json()
        (function,) = overview["Functions"]
        assert function["name"] == "get-weather"
        assert function["description"].startswith("Get current weather for a given city.")
        assert set(function["parameters"]["properties"]) == {"city", "latitude", "longitude"}
        assert "city" in function["parameters"]["required"]
        async with openai.AsyncOpenAI(base_url=api + "/v1", api_key="k", max_retries=0) as c:
            plain = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "weather in New York?"}]
            )
            stream = await c.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "weather in New York?"}],
                stream=True,
            )
            streamed = "".join(
                [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
            )
        assert plain.choices[0].message.content == f"Tool results: get-weather: {RESULT}"
        assert streamed == f"Tool results: get-weather: {RESULT}"
        async with httpx.AsyncClient(timeout=30) as http:
            invoked = await http.post(api + "/invoke", json={"prompt": "weather in New York?"})
        assert invoked.json()["content"] == f"Tool results: get-weather: {RESULT}"
        # MCP: the same Go function as an MCP tool
        async with Client(z._bridge.mcp.url + "/mcp") as client:
            tools = await client.list_tools()
            assert [t.name for t in tools.tools] == ["get-weather"]
            result = await client.call_tool("get-weather", ARGS)
        assert result.content[0].text == RESULT  # type: ignore[union-attr]
        # the LLM was offered Go's schema and saw the result as Go's function wrote it
        offered = llm.requests[0].body["tools"][0]["function"]
        assert offered["parameters"]["properties"]["latitude"]["type"] == "number"
        assert tool_results(llm.requests[1].body) == [("get-weather", RESULT)]


@pytest.mark.timeout(600)
async def test_two_go_functions_and_a_duplicate_name(
    py_zipper: Any, go_llm: GoLLMFunctions
) -> None:
    args = {"get-weather": ARGS, "get-weather-2": {**ARGS, "city": "Paris"}}
    with ScriptedLLM(call_tools_then_answer(args)) as llm:
        z = await py_zipper(bridge=bridge(llm))
        first = go_llm.start("get-weather", z.addr)
        await wait_registered(z, "get-weather", first)
        second = go_llm.start("get-weather-2", z.addr)
        await wait_registered(z, "get-weather-2", second)
        # a second instance under a taken name is refused with Go's text and exits
        # (a start that could not even connect, on a loaded machine, is tried again)
        for _ in range(3):
            dup = go_llm.start("get-weather", z.addr)
            await asyncio.to_thread(dup.wait_exit, 120)
            if any("already registered" in line for line in dup.stdout + dup.stderr):
                break
        assert "function `get-weather` already registered" in dup.tail(), dup.tail()
        assert z.stats()["rejections"] >= 1
        async with openai.AsyncOpenAI(base_url=z._bridge.api.url + "/v1", api_key="k") as c:
            done = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "weather?"}]
            )
    content = done.choices[0].message.content or ""
    assert content.startswith("Tool results: ")
    assert RESULT in content
    assert "The current weather in Paris (40.712800,-74.006000) is sunny" in content
