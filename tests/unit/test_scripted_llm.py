"""The scripted OpenAI-compatible server the LLM tests use, checked with the official openai SDK."""

from __future__ import annotations

import json

import openai
import pytest

from support.scripted_llm import (
    HttpError,
    ScriptedLLM,
    call_tools_then_answer,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get-weather",
            "description": "Get the weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def _turns(client: openai.OpenAI, stream: bool) -> tuple[dict, str]:
    messages: list = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        calls: dict[int, dict] = {}
        for chunk in client.chat.completions.create(
            model="m", messages=messages, tools=TOOLS, stream=True
        ):
            for call in chunk.choices[0].delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] = call.id or entry["id"]
                entry["name"] = call.function.name or entry["name"]
                entry["arguments"] += call.function.arguments or ""
        call = calls[0]
    else:
        first = client.chat.completions.create(model="m", messages=messages, tools=TOOLS)
        assert first.choices[0].finish_reason == "tool_calls"
        tc = first.choices[0].message.tool_calls[0]
        call = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
    messages.append(
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call["id"], "content": "sunny"})
    if stream:
        text = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in client.chat.completions.create(model="m", messages=messages, stream=True)
            if chunk.choices
        )
    else:
        text = (
            client.chat.completions.create(model="m", messages=messages).choices[0].message.content
        )
    return call, text


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_tool_call_then_answer(stream: bool) -> None:
    with ScriptedLLM(call_tools_then_answer({"get-weather": {"city": "Paris"}})) as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="k", max_retries=0)
        call, text = _turns(client, stream)
        assert call["name"] == "get-weather"
        assert json.loads(call["arguments"]) == {"city": "Paris"}
        assert text == "Tool results: get-weather: sunny"
        assert len(llm.requests) == 2
        assert llm.requests[0].body["tools"] == TOOLS
        assert llm.requests[0].headers["authorization"] == "Bearer k"


def test_http_error_reaches_the_client() -> None:
    with ScriptedLLM(lambda request: HttpError(503, "overloaded")) as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="k", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 503
        assert "overloaded" in str(info.value)
