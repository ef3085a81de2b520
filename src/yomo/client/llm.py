"""The LLM-tool side of a stream function: its definition, handshake fields and answers.

Go: core/client.go (the definition in the handshake), core/server.go
``tryUseFunctionNameAsTarget`` and sfn.go ``beforeHandleCheck``/``afterHandleCheck``.
A function with a definition is an LLM tool: it is called on tag 0xE002 with its
name as the target and answers on 0xE001. Unlike Go, a call is always answered: when
the handler raises (bad arguments included) or returns without answering, the LLM
gets a failed call (``is_ok`` false) whose result says why, instead of waiting for the
bridge's 60 s timeout; the error also goes to the error handler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from yomo.ai.function_call import FUNCTION_CALL_TAG, FunctionCall, FunctionDefinition
from yomo.ai.schema import build_function_definition
from yomo.errors import FunctionCallError, LLMArgumentsError, NoLLMResultError, YomoError

from .context import _BaseContext

__all__ = ["LLMFunction", "failure_text"]


class LLMFunction:
    """What makes a stream function an LLM tool, and how its calls are answered."""

    def __init__(
        self,
        name: str,
        *,
        description: str | None = None,
        input_schema: type | Mapping[str, Any] | None = None,
        function_definition: FunctionDefinition | str | bytes | Mapping[str, Any] | None = None,
        log: logging.Logger,
    ) -> None:
        self.name = name
        self.log = log
        self.definition = build_function_definition(
            name, description, input_schema, function_definition
        )
        self.input_schema = input_schema if isinstance(input_schema, type) else None

    @property
    def enabled(self) -> bool:
        """True when the function announces a definition (it is an LLM tool)."""
        return self.definition is not None

    def handshake_fields(
        self, tags: tuple[int, ...], wanted_target: str
    ) -> tuple[bytes, tuple[int, ...], str]:
        """(definition JSON, observed tags, wanted target) for the handshake.

        As Go's zipper does on receipt (``tryUseFunctionNameAsTarget``), the function
        wants its own name as target and observes 0xE002, so tool calls reach it through
        any zipper that routes targets; Go's zipper sets the same values again.
        """
        if self.definition is None:
            return b"", tags, wanted_target
        if FUNCTION_CALL_TAG not in tags:
            tags = (*tags, FUNCTION_CALL_TAG)
        return self.definition.to_bytes(), tags, self.name

    def is_call(self, tag: int) -> bool:
        """True when a frame of ``tag`` is a tool call for this function."""
        return self.definition is not None and tag == FUNCTION_CALL_TAG

    def span_attributes(self, data: bytes) -> dict[str, Any]:
        """The tool call's ids for the handler's span (empty when the payload is no call)."""
        try:
            call = FunctionCall.from_bytes(data)
        except FunctionCallError:
            return {}
        self.log.debug(
            "llm sfn request",
            extra={
                "tool_call_id": call.tool_call_id,
                "function_name": call.function_name,
                "arguments": call.arguments,
            },
        )
        return {
            "function_name": call.function_name,
            "tool_call_id": call.tool_call_id,
            "req_id": call.req_id,
        }

    def finish(
        self, ctx: _BaseContext, error: BaseException | None
    ) -> tuple[bytes | None, BaseException | None]:
        """After the handler: (a failed answer to send or None, the error to report or None)."""
        if ctx.llm_answered:
            self._log_answer(ctx, True)
            return None, error
        try:
            ctx._llm_call()
        except FunctionCallError as exc:  # nothing to answer: report why
            return None, error or exc
        if error is None:
            error = NoLLMResultError(self.name)
        frame = ctx._llm_answer(failure_text(self.name, error), False)
        self._log_answer(ctx, False)
        return frame, error

    def _log_answer(self, ctx: _BaseContext, ok: bool) -> None:
        call = ctx._llm_call()
        self.log.debug(
            "llm sfn response",
            extra={
                "tool_call_id": call.tool_call_id,
                "function_name": call.function_name,
                "is_ok": ok,
            },
        )


def failure_text(name: str, error: BaseException) -> str:
    """What the LLM reads when a call to ``name`` failed with ``error``."""
    if isinstance(error, (LLMArgumentsError, NoLLMResultError)):
        return f"error: {error.message}"
    if isinstance(error, YomoError):
        return f"error: function {name!r} failed: {error.message}"
    return f"error: function {name!r} failed: {type(error).__name__}: {error}"
