"""A stand-in for Go's AI bridge in tests: its in-memory source and reducer, as real clients.

Go: pkg/bridge/ai/reducer.go and caller.go. ``Bridge.call`` writes a ``FunctionCall``
on 0xE002 with the function's name as target; the reducer (observing 0xE001)
collects the answers by ``tool_call_id``, with the metadata they came with.
"""

from __future__ import annotations

import json
from typing import Any

import yomo
import yomo.aio
from yomo._sync import LoopThread
from yomo.ai import FUNCTION_CALL_TAG, REDUCER_TAG, FunctionCall

from .helpers import FAST_RECONNECT, PLAIN_TLS, eventually

__all__ = ["Bridge", "call_llm_function"]


class Bridge:
    """Go's in-memory source and reducer, as real clients of the zipper."""

    def __init__(self, addr: str) -> None:
        self.source = yomo.aio.Source("fc-source", addr, tls=PLAIN_TLS, reconnect=FAST_RECONNECT)
        self.reducer = yomo.aio.StreamFunction(
            "fc-reducer",
            addr,
            observe_data_tags=[REDUCER_TAG],
            tls=PLAIN_TLS,
            reconnect=FAST_RECONNECT,
        )
        self.answers: dict[str, tuple[FunctionCall, dict[str, str]]] = {}
        self.reducer.set_handler(self._reduce)

    async def _reduce(self, ctx: yomo.AsyncContext) -> None:
        self.answers[ctx.llm_function_call.tool_call_id] = (
            ctx.llm_function_call,
            dict(ctx.metadata),
        )

    async def __aenter__(self) -> Bridge:
        await self.reducer.connect()
        await self.source.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.source.close()
        await self.reducer.close()

    async def call(self, function: str, arguments: Any, tool_call_id: str, **extra: Any) -> None:
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        call = FunctionCall(
            tid="trans-1",
            req_id="req-1",
            tool_call_id=tool_call_id,
            function_name=function,
            arguments=text,
            **extra,
        )
        await self.source.write_with_target(FUNCTION_CALL_TAG, call.to_bytes(), function)

    async def answer(self, tool_call_id: str, timeout: float = 10.0) -> FunctionCall:
        await eventually(lambda: tool_call_id in self.answers, f"answer {tool_call_id}", timeout)
        return self.answers[tool_call_id][0]


def call_llm_function(
    addr: str, function: str, arguments: Any, timeout: float = 15.0
) -> FunctionCall:
    """Call the LLM function ``function`` running behind the zipper at ``addr``; its answer."""

    async def call() -> FunctionCall:
        async with Bridge(addr) as bridge:
            await bridge.call(function, arguments, "cli-call")
            return await bridge.answer("cli-call", timeout)

    return LoopThread.get().run(call(), timeout + 10)
