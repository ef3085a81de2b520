"""The anthropic provider: chat-completions requests through the official ``anthropic`` SDK.

Go: pkg/bridge/ai/provider/anthropic/provider.go. A chat-completions request
becomes a Messages API request (system messages -> ``system``, assistant tool calls
-> ``tool_use`` blocks, tool messages -> ``tool_result`` blocks in a user turn,
function tools -> tools with their JSON schema, ``max_tokens`` 2048 unless given);
the answer and the streamed events become ``ChatCompletion`` and
``ChatCompletionChunk`` JSON, stop reasons mapped as Go maps them
(end_turn/stop_sequence -> stop, max_tokens -> length, tool_use -> tool_calls).

Where Go differs: it sends all tool results at the end of the conversation and a
temperature and top_p of 0 when the request has none; here tool results stay where
they are and unset sampling options stay unset.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .openai_compat import ProviderError, http_client, provider_error, require

__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicProvider", "to_messages_request"]

#: ``max_tokens`` when the request has none (Go: anthropic.DefaultMaxTokens).
DEFAULT_MAX_TOKENS = 2048
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _sdk() -> Any:
    return require("anthropic", "the anthropic provider")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def _finish(reason: Any) -> str:
    # OpenAI's finish reasons are a closed set; others (pause_turn) read as "stop".
    return _FINISH.get(str(reason), "stop")


def to_messages_request(body: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The Messages API parameters for a chat-completions ``body``."""
    messages: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []

    def flush_results() -> None:
        if results:
            messages.append({"role": "user", "content": list(results)})
            results.clear()

    for message in body.get("messages") or []:
        role = message.get("role")
        if role == "tool":
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.get("tool_call_id", ""),
                    "content": _text(message.get("content")),
                }
            )
            continue
        flush_results()
        if role in ("system", "developer"):
            if _text(message.get("content")):
                system.append({"type": "text", "text": _text(message.get("content"))})
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if _text(message.get("content")):
                blocks.append({"type": "text", "text": _text(message.get("content"))})
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": arguments,
                    }
                )
            messages.append({"role": "assistant", "content": blocks})
        elif role in ("user", "assistant"):
            messages.append({"role": role, "content": _text(message.get("content"))})
    flush_results()
    tools = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if tool.get("type", "function") == "function" else None
        if not isinstance(function, Mapping):
            continue
        tools.append(
            {
                "name": function.get("name", ""),
                "description": function.get("description", ""),
                "input_schema": function.get("parameters") or {"type": "object"},
            }
        )
    params: dict[str, Any] = {
        "model": body.get("model") or model,
        "max_tokens": body.get("max_tokens")
        or body.get("max_completion_tokens")
        or DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    if system:
        params["system"] = system
    if tools:
        params["tools"] = tools
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p")):
        if body.get(ours) is not None:
            params[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    return params


class AnthropicProvider:
    """Claude models behind the chat-completions interface."""

    def __init__(
        self, *, api_key: str, model: str, base_url: str | None = None, max_retries: int = 2
    ) -> None:
        anthropic = _sdk()
        self._error: type[Exception] = anthropic.AnthropicError
        self._sdk = anthropic
        self.model = model
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key or "none",
            base_url=base_url,
            max_retries=max_retries,
            http_client=http_client(anthropic),
        )

    @property
    def name(self) -> str:
        return "anthropic"

    async def chat(self, body: dict[str, Any]) -> Any:
        try:
            result = await self.client.messages.create(**to_messages_request(body, self.model))
        except self._error as exc:
            raise provider_error(exc, self.name, self._sdk) from exc
        text = "".join(b.text for b in result.content if b.type == "text")
        calls = [
            {
                "id": b.id,
                "type": "function",
                "function": {
                    "name": b.name,
                    "arguments": json.dumps(b.input, separators=(",", ":")),
                },
            }
            for b in result.content
            if b.type == "tool_use"
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        usage = result.usage
        return {  # a ChatCompletion as JSON (no pydantic model built and dumped again)
            "id": result.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(result.model),
            "system_fingerprint": "yomo_anthropic",
            "choices": [
                {"index": 0, "message": message, "finish_reason": _finish(result.stop_reason)}
            ],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
            },
        }

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[Any]:
        options = body.get("stream_options") or {}
        include_usage = isinstance(options, Mapping) and bool(options.get("include_usage"))
        ident, model, created = "", "", int(time.time())
        input_tokens = output_tokens = 0
        calls = 0

        def chunk(
            choices: list[dict[str, Any]], usage: dict[str, Any] | None = None
        ) -> dict[str, Any]:  # a ChatCompletionChunk as JSON
            data: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
            }
            if usage is not None:
                data["usage"] = usage
            return data

        try:
            events = await self.client.messages.create(
                **to_messages_request(body, self.model), stream=True
            )
            async for event in events:
                kind = event.type
                if kind == "message_start":
                    ident, model = event.message.id, str(event.message.model)
                    input_tokens = event.message.usage.input_tokens
                elif kind == "content_block_start" and event.content_block.type == "tool_use":
                    block = event.content_block
                    head = {
                        "index": calls,
                        "id": block.id,
                        "type": "function",
                        "function": {"name": block.name, "arguments": ""},
                    }
                    calls += 1
                    yield chunk([{"index": 0, "delta": {"tool_calls": [head]}}])
                elif kind == "content_block_delta" and event.delta.type == "text_delta":
                    delta = {"role": "assistant", "content": event.delta.text}
                    yield chunk([{"index": 0, "delta": delta}])
                elif kind == "content_block_delta" and event.delta.type == "input_json_delta":
                    part = {"index": calls - 1, "function": {"arguments": event.delta.partial_json}}
                    yield chunk([{"index": 0, "delta": {"tool_calls": [part]}}])
                elif kind == "message_delta":
                    output_tokens = event.usage.output_tokens
                    finish = _finish(event.delta.stop_reason)
                    yield chunk([{"index": 0, "delta": {}, "finish_reason": finish}])
                elif kind == "message_stop" and include_usage:
                    total = input_tokens + output_tokens
                    usage = {
                        "prompt_tokens": input_tokens,
                        "completion_tokens": output_tokens,
                        "total_tokens": total,
                    }
                    yield chunk([], usage)
        except self._error as exc:
            raise provider_error(exc, self.name, self._sdk) from exc
        except ProviderError:
            raise

    async def aclose(self) -> None:
        await self.client.close()
