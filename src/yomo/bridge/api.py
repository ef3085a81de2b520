"""The AI bridge's HTTP API: ``/overview``, ``/invoke``, ``/v1/chat/completions``.

Go: pkg/bridge/llm (handler.go, llm_server.go) and pkg/bridge/ai/response_writer.go.
Errors are answered in OpenAI's format, ``{"error": {"code", "message", "type"}}``:
400 for a body that is not JSON or not a chat request, the provider's own 4xx (an
unknown model), 502 when the provider fails or cannot be reached, 504 when it or
the whole request takes too long. Beyond Go: an optional bearer token (401), a
bound on the body (413) and on requests served at once (429).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from yomo.errors import YomoError
from yomo.zipper.bridge_config import AIServerConfig

from .caller import new_id
from .chat import BridgeStats, ChatEngine
from .openai_compat import ProviderError
from .spans import current_span

__all__ = ["Guard", "HttpError", "api_routes", "error_response"]

_timeout: Callable[[float], AbstractAsyncContextManager[Any]] | None = getattr(
    asyncio, "timeout", None
)  # Python 3.11+
_STREAM_HEADERS = {
    "Cache-Control": "no-cache, must-revalidate",
    "X-Content-Type-Options": "nosniff",
}


class HttpError(Exception):
    """An error answered with ``status`` and an OpenAI-style body."""

    def __init__(self, status: int, message: str, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def error_response(status: int, message: str, code: str) -> JSONResponse:
    """``{"error": {"code", "message", "type"}}`` with ``status``."""
    kind = "invalid_request_error" if status < 500 else "api_error"
    return JSONResponse({"error": {"code": code, "message": message, "type": kind}}, status)


class Guard:
    """Checks every request: bearer token, body size, how many run at once; counts them."""

    def __init__(
        self,
        stats: BridgeStats,
        *,
        token: str,
        max_body_bytes: int,
        max_concurrent: int,
        log: logging.Logger,
    ) -> None:
        self.stats = stats
        self.token = token
        self.max_body_bytes = max_body_bytes
        self.max_concurrent = max_concurrent
        self.log = log
        self.running = 0

    def check_token(self, request: Request) -> None:
        if not self.token:
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or value.strip() != self.token:
            raise HttpError(401, "missing or wrong bearer token", "invalid_api_key")

    async def read_json(self, request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise HttpError(413, self._too_large(), "request_too_large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise HttpError(413, self._too_large(), "request_too_large")
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"Invalid request: {exc}") from exc

    def _too_large(self) -> str:
        return f"request body is larger than {self.max_body_bytes} bytes"

    def enter(self) -> None:
        if self.running >= self.max_concurrent:
            raise HttpError(
                429,
                f"too many requests at once (limit {self.max_concurrent}); retry later",
                "rate_limit_exceeded",
            )
        self.running += 1
        self.stats.in_flight = self.running

    def leave(self) -> None:
        self.running -= 1
        self.stats.in_flight = self.running


Handler = Callable[[Request, str], Awaitable[Response]]


def api_routes(
    engine: ChatEngine, server: AIServerConfig, stats: BridgeStats, log: logging.Logger
) -> list[Route]:
    """The routes of the AI bridge (no global app: mount them where you like)."""
    guard = Guard(
        stats,
        token=server.token,
        max_body_bytes=server.max_body_bytes,
        max_concurrent=server.max_concurrent_calls,
        log=log,
    )
    tracer = trace.get_tracer("yomo-llm-bridge")
    span_attributes = {"host": socket.gethostname()}
    request_timeout = server.request_timeout

    def endpoint(handler: Handler, *, limited: bool) -> Callable[[Request], Awaitable[Response]]:
        # Go: llm_server.go DecorateReqContext: a transaction id and a server span per request.
        async def serve(request: Request) -> Response:
            stats.requests += 1
            tid = new_id(32)
            start = time.monotonic()
            path: str = request.scope["path"]
            entered = False
            response: Response | None = None
            with current_span(tracer, path, kind=SpanKind.SERVER, attributes=span_attributes):
                try:
                    guard.check_token(request)
                    if limited:
                        guard.enter()
                        entered = True
                    response = await handler(request, tid)
                except HttpError as exc:
                    if exc.status in (401, 413, 429):
                        stats.rejected += 1
                    else:
                        stats.errors += 1
                    log.warning("%s %s: %d %s", request.method, path, exc.status, exc)
                    response = error_response(exc.status, exc.message, exc.code)
                except ProviderError as exc:
                    stats.errors += 1
                    log.warning("%s %s: %d %s", request.method, path, exc.status, exc)
                    response = error_response(exc.status, exc.message, exc.code)
                except YomoError as exc:  # the zipper could not take a tool call
                    stats.errors += 1
                    log.warning("%s %s: 502 %s", request.method, path, exc)
                    response = error_response(502, exc.message, "bridge_error")
                finally:  # a stream leaves when it ends; anything else (even a crash) now
                    if entered:
                        if isinstance(response, StreamingResponse):
                            response.background = BackgroundTask(guard.leave)
                        else:
                            guard.leave()
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "llm bridge request %s %s requestId=%s duration=%.3fs",
                    request.method,
                    path,
                    tid,
                    time.monotonic() - start,
                )
            return response

        return serve

    async def overview(request: Request, tid: str) -> Response:
        functions = [
            {
                "name": d.name,
                **({"description": d.description} if d.description else {}),
                "parameters": d.parameters or None,
            }
            for d in engine.functions.definitions()
        ]
        return JSONResponse({"Functions": functions})

    async def invoke(request: Request, tid: str) -> Response:
        body = await guard.read_json(request)
        if not isinstance(body, dict):
            raise HttpError(400, "Invalid request: the body must be a JSON object")
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str):
            raise HttpError(400, "Invalid type for `prompt`: expected a string")
        include = body.get("include_call_stack", False)
        if not isinstance(include, bool):
            raise HttpError(400, "Invalid type for `include_call_stack`: expected a boolean")
        chat = {"messages": [{"role": "user", "content": prompt}]}
        result = await _bounded(
            engine.complete(chat, tid=tid, agent_context=_agent_context(body)), request_timeout
        )
        choices = result.body.get("choices") or [{}]
        message = choices[0].get("message") or {}
        out: dict[str, Any] = {}
        if message.get("content"):
            out["content"] = message["content"]
        if choices[0].get("finish_reason"):
            out["finish_reason"] = choices[0]["finish_reason"]
        out["token_usage"] = {
            "prompt_tokens": result.usage.get("prompt_tokens", 0),
            "completion_tokens": result.usage.get("completion_tokens", 0),
        }
        if include:
            out["history"] = result.messages
        return JSONResponse(out)

    async def chat_completions(request: Request, tid: str) -> Response:
        body = await guard.read_json(request)
        _check_chat_request(body)
        agent_context = _agent_context(body)
        body.pop("agent_context", None)
        if not body.get("stream"):
            result = await _bounded(
                engine.complete(body, tid=tid, agent_context=agent_context), request_timeout
            )
            return JSONResponse(result.body)
        events = engine.stream(body, tid=tid, agent_context=agent_context)
        deadline = asyncio.get_running_loop().time() + request_timeout
        first = await _bounded(events.__anext__(), request_timeout)
        return StreamingResponse(
            _rest(first, events, deadline, stats, log),
            media_type="text/event-stream",
            headers=_STREAM_HEADERS,
        )

    return [
        Route("/overview", endpoint(overview, limited=False), methods=["GET"]),
        Route("/invoke", endpoint(invoke, limited=True), methods=["POST"]),
        Route("/v1/chat/completions", endpoint(chat_completions, limited=True), methods=["POST"]),
    ]


async def _bounded(work: Awaitable[Any], seconds: float) -> Any:
    """``await work``, a 504 after ``seconds``. Python 3.11+ bounds it in the request's own
    task (``asyncio.timeout``); ``wait_for`` would start a task per request for it."""
    try:
        if _timeout is None:
            return await asyncio.wait_for(work, seconds)
        async with _timeout(seconds):
            return await work
    except asyncio.TimeoutError:
        raise HttpError(504, f"the request took longer than {seconds:g} s", "timeout") from None


async def _rest(
    first: bytes,
    events: AsyncIterator[bytes],
    deadline: float,
    stats: BridgeStats,
    log: logging.Logger,
) -> AsyncIterator[bytes]:
    """The stream after its first event, ended with an error event past ``deadline``.

    The deadline is checked between events; a provider that stops sending in the
    middle of a turn is bounded by the provider client's own timeout.
    """
    loop = asyncio.get_running_loop()
    if first:
        yield first
    async for event in events:
        if loop.time() > deadline:
            stats.errors += 1
            log.warning("streamed chat request took too long, ended")
            error = {"code": "timeout", "message": "the request took too long"}
            yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
            break
        yield event


def _agent_context(body: Mapping[str, Any]) -> str:
    """The JSON text of ``agent_context`` (``"null"`` when absent, as Go marshals it)."""
    return json.dumps(body.get("agent_context"), separators=(",", ":"))


def _check_chat_request(body: Any) -> None:
    """The checks Go's decoding into ChatCompletionRequest makes, as 400s."""
    if not isinstance(body, dict):
        raise HttpError(400, "Invalid request: the body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise HttpError(400, "Invalid type for `messages`: expected a non-empty array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise HttpError(
                400, f"Invalid type for `messages[{i}]`: expected an object with a role"
            )
    tools = body.get("tools")
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(t, dict) for t in tools)
    ):
        raise HttpError(400, "Invalid type for `tools`: expected an array of objects")
    if not isinstance(body.get("stream", False), bool):
        raise HttpError(400, "Invalid type for `stream`: expected a boolean")
    if not isinstance(body.get("model", ""), str):
        raise HttpError(400, "Invalid type for `model`: expected a string")
