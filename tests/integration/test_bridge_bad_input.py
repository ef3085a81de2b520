"""The AI bridge under bad input: each gets one clear error, and the bridge keeps serving."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from support.scripted_llm import Reply, ScriptedLLM, call_tools_then_answer
from support.wire_tool import WireTool
from yomo.bridge.caller import TIMEOUT_RESULT

from .bridge_helpers import ai_bridge, bridge_url
from .helpers import eventually

WEATHER = {"get-weather": {"city": "Paris"}}
ASK = [{"role": "user", "content": "weather in Paris?"}]


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with ScriptedLLM(call_tools_then_answer(WEATHER)) as server:
        yield server


def client(z: Any, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=bridge_url(z) + "/v1", api_key="k", max_retries=0, **options)


async def post(z: Any, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(bridge_url(z) + path, **kwargs)


async def test_malformed_json_and_bad_requests_are_400(zipper: Any, llm: ScriptedLLM) -> None:
    z = await zipper(bridge=ai_bridge(llm.base_url))
    cases = [
        ("/v1/chat/completions", b"{not json", "Invalid request: "),
        ("/v1/chat/completions", b"[1, 2]", "the body must be a JSON object"),
        ("/v1/chat/completions", b'{"messages": "hi"}', "Invalid type for `messages`"),
        ("/v1/chat/completions", b'{"messages": [{"role": "user"}], "stream": "yes"}', "`stream`"),
        ("/invoke", b"{", "Invalid request: "),
        ("/invoke", b'{"prompt": 3}', "Invalid type for `prompt`"),
    ]
    for path, body, text in cases:
        response = await post(z, path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, body, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request_error" and text in error["message"]
    assert llm.requests == []
    # the bridge still serves
    async with client(z) as c:
        done = await c.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
    assert done.choices[0].message.content == "no tool to call"
    assert z.stats()["bridge"]["errors"] == len(cases)


async def test_a_tool_that_never_answers_gets_gos_timeout_text(
    zipper: Any, llm: ScriptedLLM
) -> None:
    z = await zipper(bridge=ai_bridge(llm.base_url, call_timeout=0.5))
    async with WireTool("get-weather", z.addr, answer=lambda call: None) as tool:
        async with client(z) as c:
            done = await c.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
    assert len(tool.calls) == 1
    assert done.choices[0].message.content == f"Tool results: get-weather: {TIMEOUT_RESULT}"
    assert TIMEOUT_RESULT == "timeout in this function calling, you should ignore this."
    assert z.stats()["bridge"]["calls"]["timeouts"] == 1


async def test_a_tool_that_raises_is_answered_as_unanswered(zipper: Any, llm: ScriptedLLM) -> None:
    def boom(call: Any) -> str:
        raise RuntimeError("tool bug")

    z = await zipper(bridge=ai_bridge(llm.base_url, call_timeout=0.5))
    async with WireTool("get-weather", z.addr, answer=boom):
        async with client(z) as c:
            done = await c.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
    assert done.choices[0].message.content == f"Tool results: get-weather: {TIMEOUT_RESULT}"


async def test_a_tool_that_disconnects_mid_call_is_answered_at_once(
    zipper: Any, llm: ScriptedLLM
) -> None:
    z = await zipper(bridge=ai_bridge(llm.base_url, call_timeout=30))
    tool = WireTool("get-weather", z.addr, answer=lambda call: None)
    await tool.connect()
    async with client(z) as c:
        task = asyncio.ensure_future(c.chat.completions.create(model="m", messages=ASK))  # type: ignore[arg-type]
        await eventually(lambda: len(tool.calls) == 1, "the call to reach the tool")
        await tool.close()
        done = await asyncio.wait_for(task, 10)  # long before the 30 s call timeout
    assert done.choices[0].message.content == (
        "Tool results: get-weather: function `get-weather` left before answering"
    )
    assert z.stats()["bridge"]["calls"]["failed"] == 1


async def test_provider_down_is_502_and_slow_provider_504(zipper: Any) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    z = await zipper(bridge=ai_bridge(f"http://127.0.0.1:{port}/v1"))
    async with client(z) as c:
        with pytest.raises(openai.APIStatusError) as info:
            await c.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
        assert info.value.status_code == 502
        assert "unreachable" in str(info.value)
        with pytest.raises(openai.APIStatusError) as info:
            await c.chat.completions.create(model="m", messages=ASK, stream=True)  # type: ignore[arg-type]
        assert info.value.status_code == 502
    with ScriptedLLM(lambda r: Reply(content="late", delay=2.0)) as slow:
        z2 = await zipper(bridge=ai_bridge(slow.base_url, request_timeout=0.5))
        async with client(z2) as c:
            with pytest.raises(openai.APIStatusError) as info:
                await c.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
    assert info.value.status_code == 504


async def test_bearer_token(zipper: Any, llm: ScriptedLLM) -> None:
    z = await zipper(bridge=ai_bridge(llm.base_url, token="s3cret"))
    async with client(z) as c:
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
    async with httpx.AsyncClient() as http:
        assert (await http.get(bridge_url(z) + "/overview")).status_code == 401
        ok = await http.get(bridge_url(z) + "/overview", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    async with client(z, default_headers={"Authorization": "Bearer s3cret"}) as c:
        done = await c.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
    assert done.choices[0].message.content == "no tool to call"
    assert z.stats()["bridge"]["rejected"] == 2


async def test_body_limit_and_concurrency_limit(zipper: Any) -> None:
    with ScriptedLLM(lambda r: Reply(content="slow", delay=1.0)) as llm:
        z = await zipper(
            bridge=ai_bridge(llm.base_url, max_body_bytes=2000, max_concurrent_calls=1)
        )
        big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
        response = await post(z, "/v1/chat/completions", json=big)
        assert response.status_code == 413
        assert "larger than 2000 bytes" in response.json()["error"]["message"]
        async with client(z) as c:
            first = asyncio.ensure_future(c.chat.completions.create(model="m", messages=ASK))  # type: ignore[arg-type]
            await eventually(lambda: len(llm.requests) == 1, "the first request to reach the LLM")
            with pytest.raises(openai.RateLimitError, match="too many requests at once"):
                await c.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
            assert (await first).choices[0].message.content == "slow"
            again = await c.chat.completions.create(model="m", messages=ASK)  # type: ignore[arg-type]
            assert again.choices[0].message.content == "slow"


async def test_hundred_concurrent_chat_requests_lose_nothing(zipper: Any) -> None:
    def script(request: dict[str, Any]) -> Reply:
        last = request["messages"][-1]
        if last["role"] == "tool":
            return Reply(content=f"answer {last['content']}")
        return call_tools_then_answer({"echo": {"n": request["messages"][0]["content"]}})(request)  # type: ignore[return-value]

    def echo(call: Any) -> str:
        return call.arguments

    with ScriptedLLM(script) as llm:
        z = await zipper(bridge=ai_bridge(llm.base_url))
        async with WireTool("echo", z.addr, answer=echo) as tool:
            async with client(z, timeout=60) as c:

                async def one(i: int) -> str:
                    done = await c.chat.completions.create(
                        model="m",
                        messages=[{"role": "user", "content": f"n{i}"}],
                        stream=i % 2 == 1,
                    )
                    if i % 2 == 1:
                        return "".join(
                            [ch.choices[0].delta.content or "" async for ch in done if ch.choices]  # type: ignore[union-attr]
                        )
                    return done.choices[0].message.content or ""  # type: ignore[union-attr]

                answers = await asyncio.gather(*(one(i) for i in range(100)))
    assert answers == [f'answer {{"n":"n{i}"}}' for i in range(100)]
    assert len(tool.calls) == 100
    stats = z.stats()["bridge"]
    assert stats["calls"]["answered"] == 100 and stats["calls"]["timeouts"] == 0
    assert stats["requests"] == 100 and stats["llm_turns"] == 200
