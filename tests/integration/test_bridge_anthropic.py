"""The anthropic provider through the official anthropic SDK, against a scripted Messages API."""

from __future__ import annotations

from typing import Any

import openai

from support.scripted_anthropic import ScriptedAnthropic, tool_results
from support.scripted_llm import Reply, ToolCall
from support.wire_tool import WireTool
from yomo.zipper.bridge_config import AIConfig, AIServerConfig, BridgeConfig

from .bridge_helpers import bridge_url


def script(request: dict[str, Any]) -> Reply:
    results = tool_results(request)
    if results:
        return Reply(content="Claude says: " + " | ".join(results))
    return Reply(tool_calls=(ToolCall("get-weather", {"city": "Bern"}),))


def anthropic_bridge(base_url: str) -> BridgeConfig:
    return BridgeConfig(
        ai=AIConfig(
            server=AIServerConfig(addr="127.0.0.1:0"),
            providers={
                "anthropic": {"api_key": "k", "api_endpoint": base_url, "model": "claude-x"}
            },
        )
    )


async def test_anthropic_provider_plain_and_streamed(zipper: Any) -> None:
    with ScriptedAnthropic(script) as claude:
        z = await zipper(bridge=anthropic_bridge(claude.base_url))
        async with WireTool("get-weather", z.addr) as tool:
            async with openai.AsyncOpenAI(base_url=bridge_url(z) + "/v1", api_key="k") as c:
                plain = await c.chat.completions.create(
                    model="",
                    messages=[
                        {"role": "system", "content": "be brief"},
                        {"role": "user", "content": "weather?"},
                    ],
                )
                stream = await c.chat.completions.create(
                    model="",
                    messages=[{"role": "user", "content": "weather?"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                chunks = [chunk async for chunk in stream]
    expected = 'Claude says: get-weather got {"city":"Bern"}'
    assert plain.choices[0].message.content == expected
    assert plain.usage is not None and plain.usage.total_tokens == 2 * (11 + 7)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
    assert len(tool.calls) == 2
    first, second = claude.requests[0], claude.requests[1]
    assert first["model"] == "claude-x" and first["max_tokens"] == 2048
    assert first["system"] == [{"type": "text", "text": "be brief"}]
    assert first["tools"][0]["name"] == "get-weather"
    assert second["messages"][1]["content"][0]["type"] == "tool_use"
    assert (
        second["messages"][2]["content"][0]["tool_use_id"]
        == second["messages"][1]["content"][0]["id"]
    )
