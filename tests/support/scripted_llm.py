"""A scripted OpenAI-compatible chat-completions server on loopback, for tests.

No LLM provider runs in CI, so tests point an AI bridge (ours or Go YoMo's) at this
server. It speaks the real wire format: ``POST <base>/chat/completions`` is answered
with a ``ChatCompletion`` JSON body, or, for ``"stream": true``, with server-sent
events of ``ChatCompletionChunk`` objects ending in ``data: [DONE]``. Bodies are
built from the official ``openai`` SDK's own types. A *script* decides each reply
from the request; every request is recorded for the test to inspect.

::

    with ScriptedLLM(call_tools_then_answer({"get-weather": {"city": "Paris"}})) as llm:
        ...  # point the bridge at llm.base_url
        assert llm.requests[0].body["tools"]
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import (
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.chat.chat_completion_message import ChatCompletionMessage
from openai.types.chat.chat_completion_message_function_tool_call import (
    ChatCompletionMessageFunctionToolCall,
    Function,
)

__all__ = [
    "HttpError",
    "RecordedRequest",
    "Reply",
    "Script",
    "ScriptedLLM",
    "ToolCall",
    "answer",
    "by_prompt",
    "call_tools_then_answer",
    "first_user_text",
    "tool_results",
]


@dataclass(frozen=True)
class ToolCall:
    """A tool call the scripted model makes; ``arguments`` as a JSON string or an object."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str = ""

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    """One assistant turn: text, tool calls, or both; sent after ``delay`` seconds."""

    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = ""
    """Defaults to ``"tool_calls"`` when there are tool calls, else ``"stop"``."""
    delay: float = 0.0


@dataclass(frozen=True)
class HttpError:
    """Answer with an HTTP error status and an OpenAI-style error body."""

    status: int = 500
    message: str = "scripted provider failure"
    type: str = "server_error"
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received (header names lower-cased; body parsed as JSON when it was)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


Script = Callable[[dict[str, Any]], "Reply | HttpError"]


def tool_results(request: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(function name, content)`` of the tool messages after the last assistant turn."""
    messages = list(request.get("messages") or [])
    names: dict[str, str] = {}
    results: list[tuple[str, str]] = []
    for message in messages:
        if message.get("role") == "assistant":
            results = []
            for call in message.get("tool_calls") or []:
                names[call.get("id", "")] = (call.get("function") or {}).get("name", "")
        elif message.get("role") == "tool":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            results.append((names.get(message.get("tool_call_id", ""), ""), str(content or "")))
    return results


def offered_tools(request: Mapping[str, Any]) -> list[str]:
    """The function names in the request's ``tools``."""
    names = []
    for tool in request.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def answer(text: str) -> Script:
    """A script that always answers ``text`` and never calls a tool."""
    return lambda request: Reply(content=text)


def call_tools_then_answer(
    arguments: Mapping[str, str | Mapping[str, Any]], *, prefix: str = "Tool results: "
) -> Script:
    """Call every tool named in ``arguments`` that the request offers; once tool results
    came back, answer ``prefix`` followed by ``name: result`` for each, joined by `` | ``.

    A request offering none of them is answered ``"no tool to call"``.
    """

    def script(request: dict[str, Any]) -> Reply | HttpError:
        last = (request.get("messages") or [{}])[-1]
        if last.get("role") == "tool":
            results = tool_results(request)
            return Reply(content=prefix + " | ".join(f"{n}: {c}" for n, c in results))
        offered = set(offered_tools(request))
        calls = tuple(ToolCall(name, args) for name, args in arguments.items() if name in offered)
        if not calls:
            return Reply(content="no tool to call")
        return Reply(tool_calls=calls)

    return script


def first_user_text(request: Mapping[str, Any]) -> str:
    """The text of the request's first user message (the prompt of the conversation)."""
    for message in request.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def by_prompt(scripts: Mapping[str, Script], default: Script | None = None) -> Script:
    """Route each request to the script whose key occurs in the first user message.

    Lets one server (one bridge) serve several tests at once, each with its own
    prompt; a prompt matching no key gets ``default`` (an HTTP 400 without one).
    """

    def script(request: dict[str, Any]) -> Reply | HttpError:
        prompt = first_user_text(request)
        for key, chosen in scripts.items():
            if key in prompt:
                return chosen(request)
        if default is not None:
            return default(request)
        return HttpError(400, f"no script for the prompt {prompt!r}", "invalid_request_error")

    return script


class ScriptedLLM:
    """The server: ``start()``/``stop()`` or a ``with`` block; ``base_url`` ends in ``/v1``.

    Args:
        script: decides each reply from the parsed request body (default: answers "hello").
        model: reported when the request names none.
        host, port: where to listen (port 0: any free port).
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        model: str = "scripted-model",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.script: Script = script or answer("hello")
        self.model = model
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server = _Server((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the ``base_url`` / ``api_endpoint`` to configure."""
        return f"http://{self._server.server_address[0]}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every chat-completions request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def start(self) -> ScriptedLLM:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="scripted-llm", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # -- building replies (official SDK types) ------------------------------

    def completion(self, request: Mapping[str, Any], reply: Reply) -> ChatCompletion:
        """The non-streamed body for ``reply``."""
        calls = [
            ChatCompletionMessageFunctionToolCall(
                id=call.id or _call_id(),
                type="function",
                function=Function(name=call.name, arguments=call.arguments_json()),
            )
            for call in reply.tool_calls
        ]
        message = ChatCompletionMessage(
            role="assistant", content=reply.content or None, tool_calls=calls or None
        )
        return ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
            object="chat.completion",
            created=int(time.time()),
            model=str(request.get("model") or self.model),
            choices=[Choice(index=0, message=message, finish_reason=_finish(reply))],
            usage=_usage(request, reply),
        )

    def chunks(self, request: Mapping[str, Any], reply: Reply) -> Iterator[ChatCompletionChunk]:
        """The streamed bodies for ``reply``: role, content pieces, tool-call pieces, finish."""
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        model = str(request.get("model") or self.model)

        def chunk(delta: ChoiceDelta, finish: str | None = None) -> ChatCompletionChunk:
            choice = ChunkChoice(index=0, delta=delta, finish_reason=finish)  # type: ignore[arg-type]
            return ChatCompletionChunk(
                id=ident,
                object="chat.completion.chunk",
                created=created,
                model=model,
                choices=[choice],
            )

        yield chunk(ChoiceDelta(role="assistant", content=""))
        for piece in _pieces(reply.content):
            yield chunk(ChoiceDelta(content=piece))
        for index, call in enumerate(reply.tool_calls):
            head = ChoiceDeltaToolCall(
                index=index,
                id=call.id or _call_id(),
                type="function",
                function=ChoiceDeltaToolCallFunction(name=call.name, arguments=""),
            )
            yield chunk(ChoiceDelta(tool_calls=[head]))
            for piece in _pieces(call.arguments_json()):
                part = ChoiceDeltaToolCall(
                    index=index, function=ChoiceDeltaToolCallFunction(arguments=piece)
                )
                yield chunk(ChoiceDelta(tool_calls=[part]))
        yield chunk(ChoiceDelta(), _finish(reply))
        options = request.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            yield ChatCompletionChunk(
                id=ident,
                object="chat.completion.chunk",
                created=created,
                model=model,
                choices=[],
                usage=_usage(request, reply),
            )


class _Server(ThreadingHTTPServer):
    # 100+ clients connect at once in the load tests; the default backlog is 5.
    request_queue_size = 1024


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _finish(reply: Reply) -> Any:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage(request: Mapping[str, Any], reply: Reply) -> CompletionUsage:
    # Deterministic stand-ins for token counts: about four characters a token.
    prompt = max(1, len(json.dumps(request.get("messages") or [])) // 4)
    produced = len(reply.content) + sum(len(c.arguments_json()) for c in reply.tool_calls)
    completion = max(1, produced // 4)
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _error_body(message: str, kind: str) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": None}}
    ).encode()


def _handler_for(llm: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def _send_json(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.split("?")[0].rstrip("/").endswith("/models"):
                models = {"object": "list", "data": [{"id": llm.model, "object": "model"}]}
                self._send_json(200, json.dumps(models).encode())
            else:
                self._send_json(404, _error_body(f"no route {self.path}", "invalid_request_error"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0].rstrip("/")
            try:
                body: Any = json.loads(raw) if raw else {}
            except ValueError:
                body = raw.decode(errors="replace")
            llm._record(
                RecordedRequest(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
            if not path.endswith("/chat/completions"):
                self._send_json(404, _error_body(f"no route {self.path}", "invalid_request_error"))
                return
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                self._send_json(
                    400,
                    _error_body(
                        "body must be a JSON object with messages", "invalid_request_error"
                    ),
                )
                return
            try:
                reply = llm.script(body)
            except Exception as exc:  # a broken script is a test bug: say so loudly
                self._send_json(500, _error_body(f"script failed: {exc!r}", "server_error"))
                return
            if reply.delay:
                time.sleep(reply.delay)
            if isinstance(reply, HttpError):
                self._send_json(reply.status, _error_body(reply.message, reply.type))
                return
            if not body.get("stream"):
                out = llm.completion(body, reply).model_dump_json(exclude_none=True)
                self._send_json(200, out.encode())
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")  # the body ends when the connection does
            self.end_headers()
            self.close_connection = True
            try:
                for chunk in llm.chunks(body, reply):
                    data = chunk.model_dump_json(exclude_none=True)
                    self.wfile.write(f"data: {data}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client went away mid-stream

    return Handler
