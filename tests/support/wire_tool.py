"""An LLM function that speaks the wire itself, for bridge tests.

It dials a zipper, sends a HandshakeFrame carrying a function definition (field
0x09), reads tool calls (tag 0xE002, FunctionCall JSON) and answers each on 0xE001
with the same object, ``is_ok`` and ``result`` set and the frame's metadata kept
(minus the target), exactly as Go's ``ctx.WriteLLMResult`` does. What it answers
is up to a test-given ``answer(call) -> str | None``; ``None`` never answers.
Every call received is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from yomo._version import SPEC_VERSION
from yomo.ai import FUNCTION_CALL_TAG, REDUCER_TAG, FunctionCall, FunctionDefinition
from yomo.client.context import build_frame
from yomo.errors import ConnectionClosedError
from yomo.transport import FrameConnection, dial
from yomo.wire import (
    ClientType,
    DataFrame,
    HandshakeAckFrame,
    HandshakeFrame,
    RejectedFrame,
    decode_metadata,
)
from yomo.wire import metadata as md_keys

__all__ = ["WireTool", "echo_arguments"]

Answer = Callable[[FunctionCall], "str | Awaitable[str | None] | None"]


def echo_arguments(call: FunctionCall) -> str:
    """Answers ``<name> got <arguments>``."""
    return f"{call.function_name} got {call.arguments}"


class WireTool:
    """One LLM function connection; ``await connect()``, ``await close()``."""

    def __init__(
        self,
        name: str,
        zipper_addr: str,
        *,
        description: str = "",
        parameters: dict[str, Any] | None = None,
        answer: Answer = echo_arguments,
        credential: str = "",
    ) -> None:
        self.name = name
        self.zipper_addr = zipper_addr
        self.definition = FunctionDefinition(
            name=name,
            description=description or f"the {name} tool",
            parameters=parameters
            or {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "a city"}},
                "required": ["city"],
            },
        )
        self.answer = answer
        self.credential = credential
        self.calls: list[FunctionCall] = []
        self.metadata: list[dict[str, str]] = []
        self.rejected: str | None = None
        self._conn: FrameConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        """Dial and handshake; a RejectedFrame is kept in ``rejected`` (no exception)."""
        host, _, port = self.zipper_addr.rpartition(":")
        conn = await dial(host, int(port))
        auth_name, _, auth_payload = self.credential.partition(":")
        conn.send_nowait(
            HandshakeFrame(
                name=self.name,
                id=uuid.uuid4().hex,
                client_type=ClientType.STREAM_FUNCTION,
                observe_data_tags=(),
                auth_name=auth_name,
                auth_payload=auth_payload,
                version=SPEC_VERSION,
                function_definition=self.definition.to_bytes(),
            )
        )
        reply = await asyncio.wait_for(conn.read_frame(), 10)
        if isinstance(reply, RejectedFrame):
            self.rejected = reply.message
            conn.close("rejected")
            return
        assert isinstance(reply, HandshakeAckFrame), reply
        self._conn = conn
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        conn = self._conn
        assert conn is not None
        while True:
            try:
                frame = await conn.read_frame()
            except (ConnectionClosedError, Exception):
                return
            if not isinstance(frame, DataFrame) or frame.tag != FUNCTION_CALL_TAG:
                continue
            task = asyncio.get_running_loop().create_task(self._answer(frame))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _answer(self, frame: DataFrame) -> None:
        call = FunctionCall.from_bytes(frame.payload)
        md = decode_metadata(frame.metadata)
        self.calls.append(call)
        self.metadata.append(dict(md))
        result = self.answer(call)
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result  # type: ignore[misc]
        if result is None or self._conn is None:
            return
        call.result = str(result)
        call.is_ok = True
        md.pop(md_keys.TARGET, None)
        encoded = build_frame(REDUCER_TAG, call.to_bytes(), md)
        assert encoded is not None
        with contextlib.suppress(ConnectionClosedError):
            self._conn.send_nowait(encoded)

    async def close(self) -> None:
        """Close the connection at once (pending answers are dropped)."""
        for task in list(self._pending):
            task.cancel()
        if self._conn is not None:
            self._conn.close("tool closed")
            self._conn = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def __aenter__(self) -> WireTool:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def arguments_of(call: FunctionCall) -> Any:
    """The call's arguments parsed from their JSON string."""
    return json.loads(call.arguments or "{}")
