"""The MCP server of the bridge, called with the official mcp SDK client."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from mcp import Client, ClientSession
from mcp.client.sse import sse_client

from support.wire_tool import WireTool
from yomo.zipper.bridge_config import BridgeConfig, MCPConfig

from .bridge_helpers import mcp_url
from .helpers import eventually


def mcp_only(**options: Any) -> BridgeConfig:
    return BridgeConfig(mcp=MCPConfig(addr="127.0.0.1:0", **options))


async def test_tools_list_and_call_over_streamable_http(zipper: Any) -> None:
    z = await zipper(bridge=mcp_only())
    async with WireTool("get-weather", z.addr, description="current weather") as tool:
        async with Client(mcp_url(z) + "/mcp") as client:
            listed = await client.list_tools()
            assert [(t.name, t.description) for t in listed.tools] == [
                ("get-weather", "current weather")
            ]
            assert listed.tools[0].input_schema == tool.definition.parameters
            result = await client.call_tool("get-weather", {"city": "Paris"})
    assert not result.is_error
    assert [c.text for c in result.content] == ['get-weather got {"city":"Paris"}']  # type: ignore[union-attr]
    assert json.loads(tool.calls[0].arguments) == {"city": "Paris"}
    assert z.stats()["bridge"]["calls"]["answered"] == 1


async def test_tools_follow_the_functions(zipper: Any) -> None:
    z = await zipper(bridge=mcp_only())
    async with Client(mcp_url(z) + "/mcp") as client:
        assert (await client.list_tools()).tools == []
        tool = WireTool("add", z.addr)
        await tool.connect()
        assert [t.name for t in (await client.list_tools()).tools] == ["add"]
        await tool.close()
        await eventually(lambda: len(z.functions) == 0, "the function to leave")
        assert (await client.list_tools()).tools == []
        missing = await client.call_tool("add", {})
    assert missing.is_error
    assert missing.content[0].text == "function `add` is not registered"  # type: ignore[union-attr]


async def test_sse_transport_and_health(zipper: Any) -> None:
    z = await zipper(bridge=mcp_only(call_timeout=0.5))
    async with WireTool("slow", z.addr, answer=lambda call: None):
        async with sse_client(mcp_url(z) + "/sse") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                assert [t.name for t in listed.tools] == ["slow"]
                result = await session.call_tool("slow", {"city": "x"})
    assert result.is_error
    assert result.content[0].text == "timeout in this function calling, you should ignore this."  # type: ignore[union-attr]
    async with httpx.AsyncClient() as http:
        health = await http.get(mcp_url(z) + "/health")
        index = await http.get(mcp_url(z) + "/")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert index.text == "MCP Server is running"


async def test_bearer_token(zipper: Any) -> None:
    z = await zipper(bridge=mcp_only(token="s3cret"))
    async with httpx.AsyncClient() as http:
        denied = await http.post(mcp_url(z) + "/mcp", json={})
        assert denied.status_code == 401
        assert (await http.get(mcp_url(z) + "/health")).status_code == 200
    import httpx2

    async with WireTool("get-weather", z.addr):
        headers = {"Authorization": "Bearer s3cret"}
        async with httpx2.AsyncClient(headers=headers) as http2:
            from mcp.client.streamable_http import streamable_http_client

            async with streamable_http_client(mcp_url(z) + "/mcp", http_client=http2) as (r, w):
                async with ClientSession(r, w) as session:
                    await session.initialize()
                    tools = await session.list_tools()
    assert [t.name for t in tools.tools] == ["get-weather"]


@pytest.mark.parametrize("path", ["/mcp"])
async def test_mcp_serves_beside_the_ai_bridge(zipper: Any, path: str) -> None:
    from support.scripted_llm import ScriptedLLM

    from .bridge_helpers import ai_bridge

    with ScriptedLLM() as llm:
        z = await zipper(bridge=ai_bridge(llm.base_url, mcp=True))
        async with WireTool("get-weather", z.addr):
            async with Client(mcp_url(z) + path) as client:
                result = await client.call_tool("get-weather", {"city": "Rome"})
    assert result.content[0].text == 'get-weather got {"city":"Rome"}'  # type: ignore[union-attr]
