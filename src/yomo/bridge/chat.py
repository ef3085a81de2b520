"""Multi-turn function calling: ask the LLM, run the tools it calls, ask again.

Go: pkg/bridge/ai/chat.go (multiTurnFunctionCalling, chatResp, streamChatResp,
invokeResp) and service.go (mergeToolsToRequest). The registered functions are
offered as tools beside the caller's own; calls to registered functions run
through the zipper (in parallel) and their results go back to the LLM, at most 14
times; calls to the caller's tools end the turn and are handed back to the caller
(with server calls of the same turn dropped, as Go does). Token usage is summed
over all turns. Streamed turns keep one completion id, hold back finish chunks of
tool-call turns, and stream the caller's tool calls as they come.

Bodies are the chat-completions JSON as dicts: the provider's ``ChatCompletion`` /
``ChatCompletionChunk`` objects are turned into dicts once, so fields this bridge
does not know (``reasoning_content``, ``extra_content``) pass through unchanged.

Why this module is a little over ~400 lines: it is one algorithm, the multi-turn
loop of Go's chat.go in its plain and streamed form (``ChatEngine``, ``_Turn``), whose
two forms share the turn's state; split, each half would need the other's internals.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from yomo.zipper.functions import FunctionRegistry

from .caller import Caller, ToolCall, new_id
from .openai_compat import Provider, ProviderError
from .spans import current_span, tracing

__all__ = ["MAX_TURNS", "BridgeStats", "ChatEngine", "ChatResult", "sse"]

#: LLM calls after the first one may still run tools (Go: chat.go maxCalls).
MAX_TURNS = 14
_DONE = b"data: [DONE]\n\n"


@dataclass
class BridgeStats:
    """Counters of the HTTP side since start (``Zipper.stats()["bridge"]``)."""

    requests: int = 0
    errors: int = 0
    rejected: int = 0
    """Requests refused by a limit or the token check (401, 413, 429)."""
    llm_turns: int = 0
    in_flight: int = 0


@dataclass
class ChatResult:
    """The final non-streamed body and the conversation that led to it."""

    body: dict[str, Any]
    messages: list[dict[str, Any]]
    usage: dict[str, Any] = field(default_factory=dict)


def sse(obj: Mapping[str, Any]) -> bytes:
    """One server-sent event carrying ``obj`` as JSON."""
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    result: dict[str, Any] = obj.to_dict(mode="json")
    return result


def _add_usage(total: dict[str, Any], usage: Any) -> None:
    """Sum token counts (nested details too), as Go's updateCtxUsage does."""
    if not isinstance(usage, Mapping):
        return
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, Mapping):
            _add_usage(total.setdefault(key, {}), value)


def _name(call: Mapping[str, Any]) -> str:
    function = call.get("function") or {}
    return str(function.get("name") or "")


class ChatEngine:
    """Runs chat requests against one provider, with the registered functions as tools."""

    def __init__(
        self,
        provider: Provider,
        caller: Caller,
        functions: FunctionRegistry,
        stats: BridgeStats,
        *,
        call_timeout: float,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.provider = provider
        self.caller = caller
        self.functions = functions
        self.stats = stats
        self.call_timeout = call_timeout
        self.tracer = tracer or trace.get_tracer("yomo-llm-bridge")

    # -- tools ---------------------------------------------------------------------

    def merge_tools(self, body: dict[str, Any]) -> dict[str, bool]:
        """Offer the registered functions before the caller's tools (same name: ours).

        Returns each tool name -> True for registered functions, False for the caller's.
        """
        tools: list[dict[str, Any]] = []
        sources: dict[str, bool] = {}
        for definition in self.functions.definitions():
            # A function without an input model has no parameters: leave the key out
            # (Go sends null, which some providers refuse).
            ours = {k: v for k, v in definition.to_dict().items() if v is not None}
            tools.append({"type": "function", "function": ours})
            sources[definition.name] = True
        for tool in body.get("tools") or []:
            function = tool.get("function") if isinstance(tool, Mapping) else None
            if not isinstance(function, Mapping) or function.get("name") in sources:
                continue
            tools.append(dict(tool))
            sources[str(function.get("name"))] = False
        if tools:
            body["tools"] = tools
        else:
            body.pop("tools", None)
        return sources

    async def _run_tools(
        self,
        turn: int,
        calls: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tid: str,
        agent_context: str,
    ) -> None:
        with current_span(self.tracer, f"call_functions(#{turn})"):
            clean = []
            for i, call in enumerate(calls):
                call = {k: v for k, v in call.items() if k != "index"}
                if not call.get("id"):
                    call["id"] = f"{_name(call)}_{i}"
                call.setdefault("type", "function")
                clean.append(call)
            messages.append({"role": "assistant", "tool_calls": clean})
            results = await self.caller.call(
                [
                    ToolCall(c["id"], _name(c), str((c.get("function") or {}).get("arguments", "")))
                    for c in clean
                ],
                tid=tid,
                req_id=new_id(16),
                agent_context=agent_context,
                timeout=self.call_timeout,
                tracer=self.tracer if tracing(self.tracer) else None,
            )
        for result in results:
            messages.append(
                {"role": "tool", "tool_call_id": result.tool_call_id, "content": result.content}
            )

    def _attributes(self, body: Mapping[str, Any], sources: Mapping[str, bool]) -> dict[str, Any]:
        server = sum(1 for v in sources.values() if v)
        attributes: dict[str, Any] = {
            "stream": bool(body.get("stream")),
            "server_tool_count": server,
            "client_tool_count": len(sources) - server,
        }
        fmt = body.get("response_format")
        if isinstance(fmt, Mapping) and isinstance(fmt.get("type"), str):
            attributes["response_format_type"] = fmt["type"]
        return attributes

    # -- non-streamed ----------------------------------------------------------------

    async def complete(self, body: dict[str, Any], *, tid: str, agent_context: str) -> ChatResult:
        """Run the turns of a non-streamed request; the last LLM answer with summed usage.

        Raises:
            ProviderError: the provider failed.
        """
        body = dict(body)
        body.pop("stream", None)
        body.pop("stream_options", None)
        sources = self.merge_tools(body)
        messages = body["messages"] = list(body.get("messages") or [])
        usage: dict[str, Any] = {}
        for turn in range(MAX_TURNS + 1):
            if turn:
                body.pop("tool_choice", None)
            if tracing(self.tracer):
                with self.tracer.start_as_current_span(
                    f"llm_chat(#{turn + 1})", attributes=self._attributes(body, sources)
                ):
                    response = _dict(await self.provider.chat(body))
            else:
                response = _dict(await self.provider.chat(body))
            self.stats.llm_turns += 1
            _add_usage(usage, response.get("usage"))
            choices = response.get("choices") or []
            message = (choices[0].get("message") or {}) if choices else {}
            calls = list(message.get("tool_calls") or [])
            if turn == MAX_TURNS or not calls:
                response["usage"] = usage
                return ChatResult(response, messages, usage)
            client_calls = [c for c in calls if not sources.get(_name(c), False)]
            if client_calls:  # the caller's tools: hand them back (Go drops the others)
                message["tool_calls"] = client_calls
                response["usage"] = usage
                return ChatResult(response, messages, usage)
            await self._run_tools(turn + 1, calls, messages, tid, agent_context)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- streamed ------------------------------------------------------------------

    async def stream(
        self, body: dict[str, Any], *, tid: str, agent_context: str
    ) -> AsyncIterator[bytes]:
        """Run the turns of a streamed request, yielding server-sent events.

        The first item (``b""``) comes when the provider's first chunk arrived: until
        then a ProviderError can still become an HTTP status. Later failures are
        sent as an ``{"error": ...}`` event before the stream ends.
        """
        body = dict(body)
        body["stream"] = True
        sources = self.merge_tools(body)
        messages = body["messages"] = list(body.get("messages") or [])
        state = _StreamState()
        try:
            for turn in range(MAX_TURNS + 1):
                if turn:
                    body.pop("tool_choice", None)
                # A span that is never "current": this generator's steps run in the
                # contexts of different tasks (the HTTP server iterates it).
                span = self.tracer.start_span(
                    f"llm_chat(#{turn + 1})", attributes=self._attributes(body, sources)
                )
                try:
                    turn_state = _Turn(state, sources, last=turn == MAX_TURNS)
                    async for chunk in self.provider.stream(body):
                        if not state.started:
                            state.started = True
                            yield b""
                        for event in turn_state.feed(_dict(chunk)):
                            yield event
                finally:
                    span.end()
                self.stats.llm_turns += 1
                calls = turn_state.tool_calls()
                events, done = turn_state.end()
                for event in events:
                    yield event
                if done or not calls:
                    if not done:
                        yield _DONE
                    return
                await self._run_tools(turn + 1, calls, messages, tid, agent_context)
        except ProviderError as exc:
            if not state.started:
                raise
            self.stats.errors += 1
            yield sse({"error": {"code": exc.code, "message": exc.message, "type": "api_error"}})


@dataclass
class _StreamState:
    """What lasts across the turns of one streamed request."""

    started: bool = False
    chat_id: str = ""
    usage: dict[str, Any] = field(default_factory=dict)


class _Turn:
    """One streamed LLM turn: which chunks to pass on, hold back or drop (Go: streamChatResp)."""

    def __init__(self, state: _StreamState, sources: Mapping[str, bool], *, last: bool) -> None:
        self.state = state
        self.sources = sources
        self.last = last
        self.buffer: list[dict[str, Any]] = []
        self.finish = ""
        self.calls: dict[int, dict[str, Any]] = {}
        self.client_indexes: set[int] = set()
        self.streaming_calls = False

    def _emit(self, chunk: dict[str, Any]) -> bytes:
        chunk["id"] = self.state.chat_id or chunk.get("id", "")
        usage = chunk.get("usage")
        if isinstance(usage, Mapping) and usage.get("total_tokens"):
            chunk["usage"] = self.state.usage
        return sse(chunk)

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        if not chunk.get("id"):
            return []  # Go skips chunks without an id
        state = self.state
        if not state.chat_id:
            state.chat_id = chunk["id"]
        usage = chunk.get("usage")
        if isinstance(usage, Mapping) and usage.get("total_tokens"):
            _add_usage(state.usage, usage)
        if self.last:  # the last allowed turn passes through as it is
            return [self._emit(chunk)]
        choices = chunk.get("choices") or []
        if not choices:
            return self._write(chunk)
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish = str(choice["finish_reason"])
        delta = choice.get("delta") or {}
        content = delta.get("content") or delta.get("reasoning_content")
        deltas = delta.get("tool_calls") or []
        if not content and not deltas:
            self.buffer.append(chunk)
            return []
        if not deltas:
            return self._write(chunk)
        self._accumulate(deltas)
        if self.client_indexes:
            self.streaming_calls = True
        if self.streaming_calls:
            out = []
            if self.buffer:  # the role chunk goes first; finish chunks wait for the end
                keep = [c for c in self.buffer if _finish_of(c)]
                out = [self._emit(c) for c in self.buffer if not _finish_of(c)]
                self.buffer = keep
            mine = [
                d
                for k, d in enumerate(deltas)
                if (d.get("index") if d.get("index") is not None else k) in self.client_indexes
            ]
            if mine:
                delta["tool_calls"] = mine
                out.append(self._emit(chunk))
            return out
        if content:
            delta.pop("tool_calls", None)
            return self._write(chunk)
        return []

    def _write(self, chunk: dict[str, Any]) -> list[bytes]:
        chunks, self.buffer = [*self.buffer, chunk], []
        out = []
        for c in chunks:
            if _finish_of(c) == "function_call":
                return []
            usage = c.get("usage")
            usage_only = (
                not c.get("choices") and isinstance(usage, Mapping) and usage.get("total_tokens")
            )
            if self.finish != "tool_calls" or usage_only:
                out.append(self._emit(c))
        return out

    def _accumulate(self, deltas: list[dict[str, Any]]) -> None:
        for k, d in enumerate(deltas):
            index = int(d["index"]) if d.get("index") is not None else k
            call = self.calls.get(index)
            if call is None:
                call = self.calls[index] = {
                    "index": index,
                    "id": d.get("id") or "",
                    "type": d.get("type") or "function",
                    "function": {"name": "", "arguments": ""},
                }
            function = d.get("function") or {}
            if function.get("arguments"):
                call["function"]["arguments"] += function["arguments"]
            if function.get("name"):
                call["function"]["name"] = function["name"]
            if d.get("id") and not call["id"]:
                call["id"] = d["id"]
            for key, value in d.items():  # e.g. Gemini's extra_content
                if key not in ("index", "id", "type", "function"):
                    call[key] = value
        for index, call in self.calls.items():
            name = call["function"]["name"]
            if name and not self.sources.get(name, False):
                self.client_indexes.add(index)

    def tool_calls(self) -> list[dict[str, Any]]:
        """The registered-function calls to run after this turn (none: the turn ended it)."""
        if self.last or self.finish not in ("tool_calls", "tool_call") or self.streaming_calls:
            return []
        return [self.calls[i] for i in sorted(self.calls)]

    def end(self) -> tuple[list[bytes], bool]:
        """Events at the end of the turn, and whether the response is complete."""
        if self.last:
            return [_DONE], True
        if self.finish not in ("tool_calls", "tool_call"):
            out = [
                self._emit(c)
                for c in self.buffer
                if _finish_of(c)
                or (isinstance(c.get("usage"), Mapping) and c["usage"].get("total_tokens"))
            ]
            return [*out, _DONE], True
        if self.streaming_calls:
            return [*(self._emit(c) for c in self.buffer if _finish_of(c)), _DONE], True
        return [], False


def _finish_of(chunk: Mapping[str, Any]) -> str:
    choices = chunk.get("choices") or []
    return str(choices[0].get("finish_reason") or "") if choices else ""
