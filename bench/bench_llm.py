"""The bridge bench's scripted LLM: ScriptedLLM's script and bodies, served fast.

tests/support/scripted_llm.py answers every request on a thread of its own and
builds each reply from the openai SDK's pydantic types: right for tests, but at a
hundred requests at once it was the bench's bottleneck (its "direct to the LLM"
row ran slower than Go's bridge, which makes two LLM calls per request). This
server runs the same kind of script per request, but builds the body of each
distinct reply once, with ScriptedLLM's own builders (so the wire format is the
same), and serves it from uvicorn (httptools parser; uvloop when installed) on
one event loop. Every answer still gets fresh completion and tool-call ids.

It counts what it answered, so the bench can check how many LLM round trips a
bridge made per request: ``GET /_bench/counts`` ->
``{"requests": N, "tool_call_replies": N, "text_replies": N, "errors": N}``.

    python bench/bench_llm.py PORT    # serves http://127.0.0.1:PORT/v1 until SIGTERM
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.scripted_llm import (  # noqa: E402
    HttpError,
    Reply,
    Script,
    ScriptedLLM,
    ToolCall,
)

__all__ = ["BenchLLM", "main"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# Placeholders in a cached body, replaced by fresh ids per answer.
_CHAT_ID = "chatcmpl-000000000000000000000000"
_CALL_ID = "call_000000000000000000000000"
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class _Template:
    """A body split at its id placeholders; ``render()`` joins it with fresh ids
    (one completion id per answer, a new one per tool call)."""

    def __init__(self, body: bytes) -> None:
        self.parts: list[list[bytes]] = [
            piece.split(_CALL_ID.encode()) for piece in body.split(_CHAT_ID.encode())
        ]

    def render(self) -> bytes:
        out: list[bytes] = []
        chat_id = b"chatcmpl-" + os.urandom(12).hex().encode()  # one per answer (stream)
        for i, piece in enumerate(self.parts):
            if i:
                out.append(chat_id)
            for j, part in enumerate(piece):
                if j:
                    out.append(b"call_" + os.urandom(12).hex().encode())
                out.append(part)
        return b"".join(out)


class BenchLLM:
    """An ASGI app answering ``POST /v1/chat/completions`` with ``script``'s replies.

    Bodies are cached per distinct reply (and model, and streamed or not); the
    first request that needs a body builds it with ``ScriptedLLM``'s builders.
    """

    def __init__(self, script: Script, *, model: str = "scripted-model") -> None:
        self.script = script
        self.builder = ScriptedLLM(script, model=model)  # only its body builders are used
        self.builder.stop()  # it bound a socket in __init__; this server has its own
        self.cache: dict[tuple[str, str, bool, bool], _Template] = {}
        self.counts = {"requests": 0, "tool_call_replies": 0, "text_replies": 0, "errors": 0}

    def _template(self, request: Mapping[str, Any], reply: Reply) -> _Template:
        stream = bool(request.get("stream"))
        options = request.get("stream_options") or {}
        usage = isinstance(options, dict) and bool(options.get("include_usage"))
        key = (repr(reply), str(request.get("model") or ""), stream, usage)
        template = self.cache.get(key)
        if template is None:
            marked = Reply(
                content=reply.content,
                tool_calls=tuple(
                    ToolCall(c.name, c.arguments, c.id or _CALL_ID) for c in reply.tool_calls
                ),
                finish_reason=reply.finish_reason,
            )
            if stream:
                body = b"".join(
                    b"data: "
                    + chunk.model_copy(update={"id": _CHAT_ID})
                    .model_dump_json(exclude_none=True)
                    .encode()
                    + b"\n\n"
                    for chunk in self.builder.chunks(request, marked)
                )
                body += b"data: [DONE]\n\n"
            else:
                completion = self.builder.completion(request, marked)
                body = (
                    completion.model_copy(update={"id": _CHAT_ID})
                    .model_dump_json(exclude_none=True)
                    .encode()
                )
            template = self.cache[key] = _Template(body)
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"].rstrip("/")
        if scope["method"] == "GET":
            if path.endswith("/models"):
                models = {"object": "list", "data": [{"id": "scripted-model", "object": "model"}]}
                return await _answer(send, 200, json.dumps(models).encode())
            if path == "/_bench/counts":
                return await _answer(send, 200, json.dumps(self.counts).encode())
            return await _answer(send, 404, _error(f"no route {path}"))
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if not path.endswith("/chat/completions"):
            return await _answer(send, 404, _error(f"no route {path}"))
        self.counts["requests"] += 1
        try:
            request = json.loads(b"".join(chunks))
        except ValueError:
            request = None
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            self.counts["errors"] += 1
            return await _answer(send, 400, _error("body must be a JSON object with messages"))
        reply = self.script(request)
        if isinstance(reply, HttpError):
            self.counts["errors"] += 1
            return await _answer(send, reply.status, _error(reply.message, reply.type))
        self.counts["tool_call_replies" if reply.tool_calls else "text_replies"] += 1
        body = self._template(request, reply).render()
        await _answer(send, 200, body, sse=bool(request.get("stream")))


async def _answer(send: Send, status: int, body: bytes, *, sse: bool = False) -> None:
    headers = [*(_SSE if sse else _JSON), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error(message: str, kind: str = "invalid_request_error") -> bytes:
    error = {"message": message, "type": kind, "param": None, "code": None}
    return json.dumps({"error": error}).encode()


def main(script: Script, port: int) -> None:
    """Serve ``script`` on 127.0.0.1:``port`` until SIGTERM or SIGINT (uvicorn's handlers)."""
    import uvicorn

    uvicorn.run(
        BenchLLM(script),
        host="127.0.0.1",
        port=port,
        http="httptools",
        loop="auto",  # uvloop when installed
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        date_header=False,
        backlog=4096,
        # Longer than any client's idle pool timeout: a server closing an idle connection
        # races a client reusing it (Go's net/http keeps idle connections 90 s).
        timeout_keep_alive=120,
    )


if __name__ == "__main__":
    from support.scripted_llm import call_tools_then_answer

    main(call_tools_then_answer({"get-weather": {}}), int(sys.argv[1]))
