"""A scripted Anthropic Messages API server on loopback, for the anthropic provider's tests.

``POST /v1/messages`` is answered with a ``Message`` body, or for ``"stream": true``
with the Messages API's server-sent events (message_start, content_block_start /
_delta / _stop, message_delta, message_stop), built from the official ``anthropic``
SDK's types. The reply comes from the same ``Reply``/``ToolCall`` values as
scripted_llm.py; every request is recorded.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from anthropic.types import (
    Message,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
)

from .scripted_llm import Reply

__all__ = ["ScriptedAnthropic", "tool_results"]

AnthropicScript = Callable[[dict[str, Any]], Reply]


def tool_results(request: dict[str, Any]) -> list[str]:
    """The tool_result contents of the request's last user turn."""
    last = (request.get("messages") or [{}])[-1]
    content = last.get("content")
    if not isinstance(content, list):
        return []
    return [str(b.get("content")) for b in content if b.get("type") == "tool_result"]


class ScriptedAnthropic:
    """``base_url`` is ``http://127.0.0.1:<port>`` (the SDK appends ``/v1/messages``)."""

    def __init__(self, script: AnthropicScript, *, model: str = "claude-scripted") -> None:
        self.script = script
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedAnthropic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def message(self, request: dict[str, Any], reply: Reply) -> Message:
        blocks: list[dict[str, Any]] = []
        if reply.content:
            blocks.append({"type": "text", "text": reply.content})
        for call in reply.tool_calls:
            arguments = json.loads(call.arguments_json())
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.id or _id("toolu"),
                    "name": call.name,
                    "input": arguments,
                }
            )
        return Message.model_validate(
            {
                "id": _id("msg"),
                "type": "message",
                "role": "assistant",
                "model": request.get("model") or self.model,
                "content": blocks,
                "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 11, "output_tokens": 7},
            }
        )

    def events(self, request: dict[str, Any], reply: Reply) -> Iterator[Any]:
        message = self.message(request, reply)
        start = message.model_copy(update={"content": [], "stop_reason": None})
        yield RawMessageStartEvent(type="message_start", message=start)
        for index, block in enumerate(message.content):
            if block.type == "text":
                head: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [
                    {"type": "text_delta", "text": block.text[i : i + 5]}
                    for i in range(0, len(block.text), 5)
                ]
            else:
                head = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
                text = json.dumps(block.input, separators=(",", ":"))
                deltas = [
                    {"type": "input_json_delta", "partial_json": text[i : i + 5]}
                    for i in range(0, len(text), 5)
                ]
            yield RawContentBlockStartEvent.model_validate(
                {"type": "content_block_start", "index": index, "content_block": head}
            )
            for delta in deltas:
                yield RawContentBlockDeltaEvent.model_validate(
                    {"type": "content_block_delta", "index": index, "delta": delta}
                )
            yield RawContentBlockStopEvent(type="content_block_stop", index=index)
        yield RawMessageDeltaEvent.model_validate(
            {
                "type": "message_delta",
                "delta": {"stop_reason": message.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 7},
            }
        )
        yield RawMessageStopEvent(type="message_stop")


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _handler_for(server: ScriptedAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            server.requests.append(body)
            reply = server.script(body)
            if not body.get("stream"):
                out = server.message(body, reply).model_dump_json().encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for event in server.events(body, reply):
                self.wfile.write(
                    f"event: {event.type}\ndata: {event.model_dump_json()}\n\n".encode()
                )
                self.wfile.flush()

    return Handler
