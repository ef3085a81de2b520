"""The serverless Context handed to stream-function handlers.

Go: core/serverless/context.go. ``ctx.write`` sends a DataFrame carrying the
metadata of the frame being handled (same tid, source id and trace), so a
chain of functions keeps one transaction. Writing ``None`` is a no-op.

The LLM methods (Go: core/serverless/context_llm.go) read the tool call a frame
on tag 0xE002 carries and answer it once on tag 0xE001, with the frame's metadata
(never a target: the bridge's reducer wants none).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from yomo.ai.arguments import decode_arguments
from yomo.ai.function_call import REDUCER_TAG, FunctionCall
from yomo.errors import FunctionCallError
from yomo.wire import TARGET, check_tag, decode_metadata, encode_data_frame, encode_metadata
from yomo.wire.resent import RESENT

__all__ = [
    "AsyncContext",
    "Context",
    "CronContext",
    "Payload",
    "build_frame",
    "json_payload",
    "llm_result_text",
]

Payload = bytes | bytearray | memoryview
"""What ``write`` accepts as data: any bytes-like object (copied when it is not ``bytes``)."""

Sender = Callable[[bytes], Awaitable[None]]
T = TypeVar("T")


def json_payload(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON, the payload of every ``write_json``."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def build_frame(tag: int, data: Any, metadata: Mapping[str, str] | bytes) -> bytes | None:
    """Check ``tag`` and ``data`` and encode the frame; None when ``data`` is None.

    ``metadata`` is a map, or its encoding already made.

    Raises:
        ValueError: the tag is out of range or reserved.
        TypeError: ``data`` is not bytes-like.
    """
    check_tag(tag)
    if data is None:
        return None
    if isinstance(data, str):
        raise TypeError("yomo: data must be bytes-like, got str (encode it first, e.g. .encode())")
    try:
        # memoryview accepts only the buffer protocol: bytes(42) would be 42 zero bytes
        payload = data if isinstance(data, bytes) else memoryview(data).tobytes()
    except TypeError:
        raise TypeError(f"yomo: data must be bytes-like, got {type(data).__name__}") from None
    raw = metadata if type(metadata) is bytes else encode_metadata(metadata)  # type: ignore[arg-type]
    return encode_data_frame(tag, raw, payload)


def llm_result_text(result: Any) -> str:
    """A result for the LLM as text: a str as it is, anything else as JSON.

    Raises:
        TypeError: ``result`` is neither a str nor JSON-serializable.
    """
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"yomo: an LLM result must be a str or JSON-serializable, got "
            f"{type(result).__name__} ({exc})"
        ) from None


class _BaseContext:
    # One constructor for every kind (a Python call per frame is what a context costs).
    # The metadata comes as the received bytes (the native path: checked there, decoded
    # only when the handler reads it) or as a map already decoded.
    __slots__ = ("_answered", "_call", "_data", "_md", "_raw", "_send", "_tag")

    def __init__(
        self, tag: int, data: bytes, metadata: dict[str, str] | bytes, send: Callable[..., Any]
    ) -> None:
        self._tag = tag
        self._data = data
        if type(metadata) is bytes:
            self._raw: bytes | None = metadata
            self._md: dict[str, str] | None = None
        else:
            self._raw = None
            self._md = metadata  # type: ignore[assignment]
        self._send = send
        self._call: FunctionCall | None = None
        self._answered = False

    @property
    def _metadata(self) -> dict[str, str]:
        """The metadata as a map, without ``yomo-target`` (Go clears it before handling)
        and ``yomo-resent`` (the producer's re-send mark, never this function's writes')."""
        md = self._md
        if md is None:
            md = decode_metadata(self._raw or b"")
            md.pop(TARGET, None)
            md.pop(RESENT, None)
            self._md = md
        return md

    @property
    def tag(self) -> int:
        """The tag of the frame being handled."""
        return self._tag

    @property
    def data(self) -> bytes:
        """The payload of the frame being handled."""
        return self._data

    @property
    def metadata(self) -> Mapping[str, str]:
        """The frame's metadata (read-only): ``yomo-tid``, ``yomo-source-id``, ..."""
        return MappingProxyType(self._metadata)

    @property
    def tid(self) -> str:
        """The transaction id shared by every frame of one original write."""
        return self._metadata.get("yomo-tid", "")

    @property
    def source_id(self) -> str:
        """The id of the source that first wrote the data."""
        return self._metadata.get("yomo-source-id", "")

    def json(self) -> Any:
        """The payload decoded as JSON."""
        return json.loads(self._data)

    # -- LLM function calling ------------------------------------------------

    def _llm_call(self) -> FunctionCall:
        if self._call is None:
            self._call = FunctionCall.from_bytes(self._data)
        return self._call

    @property
    def llm_function_call(self) -> FunctionCall:
        """The tool call this frame carries (a copy; Go: ``LLMFunctionCall``).

        Raises:
            FunctionCallError: the payload is not a tool call.
        """
        return dataclasses.replace(self._llm_call())

    @property
    def llm_answered(self) -> bool:
        """True once the call has been answered (``write_llm_result``)."""
        return self._answered

    @typing.overload
    def read_llm_arguments(self, model: type[T]) -> T: ...
    @typing.overload
    def read_llm_arguments(self, model: None = None) -> Any: ...
    def read_llm_arguments(self, model: type[Any] | None = None) -> Any:
        """The arguments the LLM chose, as an instance of ``model`` (Go: ``ReadLLMArguments``).

        ``model`` is a dataclass, TypedDict or pydantic model; without it the decoded
        JSON object is returned. An uncaught error here makes the call fail with the
        error's message as the result the LLM reads.

        Raises:
            FunctionCallError: the payload is not a tool call.
            LLMArgumentsError: the arguments are not JSON or do not fit ``model``
                (missing required field, wrong type); the message names the field.
        """
        call = self._llm_call()
        return decode_arguments(call.function_name, call.arguments, model)

    @typing.overload
    def agent_context(self, model: type[T]) -> T | None: ...
    @typing.overload
    def agent_context(self, model: None = None) -> Any: ...
    def agent_context(self, model: type[Any] | None = None) -> Any:
        """The caller's ``agent_context``, decoded (as ``model`` when given; Go: ``AgentContext``).

        None when the caller sent none (Go returns an error there).

        Raises:
            FunctionCallError: the payload is not a tool call.
            LLMArgumentsError: the context is not JSON or does not fit ``model``.
        """
        call = self._llm_call()
        if call.agent_context.strip() in ("", "null"):
            return None
        return decode_arguments(call.function_name, call.agent_context, model, "agent context")

    def _llm_answer(self, result: str, ok: bool) -> bytes | None:
        """The 0xE001 frame answering the call, once; it keeps tid, req_id and the metadata."""
        if self._answered:
            raise FunctionCallError(
                "an LLM function call can only be answered once: write_llm_result was "
                "already called for this call"
            )
        answer = dataclasses.replace(self._llm_call(), result=result, is_ok=ok)
        self._answered = True
        md = {k: v for k, v in self._metadata.items() if k != TARGET}
        return build_frame(REDUCER_TAG, answer.to_bytes(), md)

    def _frame(self, tag: int, data: Any, target: str | None) -> bytes | None:
        raw = self._raw
        if (
            not target
            and raw is not None
            and b"yomo-target" not in raw
            and b"yomo-resent" not in raw
        ):
            return build_frame(tag, data, raw)  # the received map: nothing in it to clear
        md = self._metadata
        if target:
            md = dict(md)
            md[TARGET] = target
        return build_frame(tag, data, md)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} tag=0x{self._tag:x} {len(self._data)} bytes>"


class AsyncContext(_BaseContext):
    """The Context of an ``async def`` handler: ``await ctx.write(tag, data)``.

    Built as ``AsyncContext(tag, data, metadata, send)``, ``send`` an async callable.
    """

    __slots__ = ()
    _send: Sender

    async def write(self, tag: int, data: Payload | None) -> None:
        """Write ``data`` under ``tag``, keeping this frame's tid, source id and trace."""
        frame = self._frame(tag, data, None)
        if frame is not None:
            await self._send(frame)

    async def write_with_target(self, tag: int, data: Payload | None, target: str) -> None:
        """Write to the stream functions whose wanted target is ``target`` only."""
        frame = self._frame(tag, data, target)
        if frame is not None:
            await self._send(frame)

    async def write_json(self, tag: int, obj: Any) -> None:
        """Write ``obj`` encoded as JSON."""
        await self.write(tag, json_payload(obj))

    async def write_llm_result(self, result: Any) -> None:
        """Answer the LLM's tool call with ``result`` (a str, or a value sent as JSON), once.

        Go: ``WriteLLMResult``. The answer keeps the call's tid and req_id and this
        frame's metadata.

        Raises:
            FunctionCallError: the frame is not a tool call, or it was already answered.
            TypeError: ``result`` is neither a str nor JSON-serializable.
        """
        frame = self._llm_answer(llm_result_text(result), True)
        if frame is not None:
            await self._send(frame)


class Context(_BaseContext):
    """The Context of a synchronous handler (runs on a worker thread); ``write`` blocks.

    Built as ``Context(tag, data, metadata, send_blocking)``.
    """

    __slots__ = ()
    _send: Callable[[bytes], None]

    def write(self, tag: int, data: Payload | None) -> None:
        """Write ``data`` under ``tag``, keeping this frame's tid, source id and trace."""
        frame = self._frame(tag, data, None)
        if frame is not None:
            self._send(frame)

    def write_with_target(self, tag: int, data: Payload | None, target: str) -> None:
        """Write to the stream functions whose wanted target is ``target`` only."""
        frame = self._frame(tag, data, target)
        if frame is not None:
            self._send(frame)

    def write_json(self, tag: int, obj: Any) -> None:
        """Write ``obj`` encoded as JSON."""
        self.write(tag, json_payload(obj))

    def write_llm_result(self, result: Any) -> None:
        """Answer the LLM's tool call with ``result`` (a str, or a value sent as JSON), once.

        Go: ``WriteLLMResult``. Blocks like ``write``; see ``AsyncContext.write_llm_result``.
        """
        frame = self._llm_answer(llm_result_text(result), True)
        if frame is not None:
            self._send(frame)


class CronContext:
    """Given to a cron handler: it may write (a fresh tid per run, like Go)."""

    def __init__(self, metadata: dict[str, str], write: Callable[[int, Any, dict[str, str]], Any]):
        self._metadata = metadata
        self._write = write

    @property
    def metadata(self) -> Mapping[str, str]:
        """This run's metadata (source id and a fresh tid)."""
        return MappingProxyType(self._metadata)

    def write(self, tag: int, data: Payload | None) -> Any:
        """Write ``data`` under ``tag`` (a coroutine for async cron handlers)."""
        return self._write(tag, data, self._metadata)

    def write_with_target(self, tag: int, data: Payload | None, target: str) -> Any:
        """Write only to functions whose wanted target is ``target`` (Go: ``WriteWithTarget``).

        An empty ``target`` writes to every observer, like ``write``. A coroutine for
        async cron handlers.
        """
        if not target:
            return self.write(tag, data)
        return self._write(tag, data, {**self._metadata, TARGET: target})
