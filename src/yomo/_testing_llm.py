"""Testing helpers for LLM functions (re-exported by ``yomo.testing``).

Go: serverless/mock (``NewArgumentsContext``, ``RecordsWritten()[i].LLMResult``).

- ``call_llm_handler(handler, arguments)``: call the handler in memory with a tool
  call carrying ``arguments``; returns the result it wrote.
- ``run_llm_handler(handler, arguments, description=..., zipper=...)``: run it as a
  real LLM function behind a real zipper, called the way Go's AI bridge calls it (a
  source writes the call on 0xE002 with the function's name as target, a reducer
  reads the answer on 0xE001); returns the result.
- ``acall_llm_handler`` / ``arun_llm_handler``: the same for ``async def`` tests.

Each raises what the handler raised (an ``LLMArgumentsError`` for arguments that do
not fit), and ``NoLLMResultError`` when the handler returned without answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ParamSpec

from yomo.errors import StateError, TimeoutError

__all__ = [
    "acall_llm_handler",
    "aio_zipper",
    "arun_llm_handler",
    "call_llm_handler",
    "default_metadata",
    "run_llm_handler",
]

Arguments = str | Mapping[str, Any]
P = ParamSpec("P")

#: The description ``run_llm_handler`` announces when none is given.
_DEFAULT_DESCRIPTION = "A function under test."


def default_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """What a test frame carries unless told otherwise: a source id and a fresh tid."""
    from yomo.session import new_id
    from yomo.wire import SOURCE_ID, TID

    md = {SOURCE_ID: "yomo-testing-source", TID: new_id()}
    if metadata:
        md.update(metadata)
    return md


def aio_zipper(zipper: Any) -> Any:
    """The asyncio zipper behind a ``yomo.Zipper`` (or ``zipper`` itself)."""
    from yomo._sync import Zipper as SyncZipper

    return zipper.aio if isinstance(zipper, SyncZipper) else zipper


def _call_payload(
    name: str, arguments: Arguments, agent_context: Any, tool_call_id: str = "call-under-test"
) -> Any:
    from yomo.ai import FunctionCall
    from yomo.session import new_id

    args = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
    return FunctionCall(
        tid=new_id(),
        req_id=new_id(),
        tool_call_id=tool_call_id,
        function_name=name,
        arguments=args,
        agent_context=json.dumps(agent_context),
    )


def _answer(written: list[bytes], name: str) -> str:
    from yomo.ai import REDUCER_TAG, FunctionCall
    from yomo.errors import NoLLMResultError
    from yomo.wire import DataFrame, decode_frame

    for frame in written:
        decoded = decode_frame(frame)
        if isinstance(decoded, DataFrame) and decoded.tag == REDUCER_TAG:
            return FunctionCall.from_bytes(decoded.payload).result
    raise NoLLMResultError(name)


def call_llm_handler(
    handler: Callable[..., Any],
    arguments: Arguments,
    *,
    agent_context: Any = None,
    name: str = "function-under-test",
) -> str:
    """Call ``handler`` in memory with a tool call of ``arguments``; return its result.

    ``arguments`` is a mapping (sent as JSON) or the JSON text an LLM would send.
    An ``async def`` handler runs with ``asyncio.run`` (use :func:`acall_llm_handler`
    inside a running loop).

    Raises:
        Exception: what the handler raised.
        NoLLMResultError: the handler returned without ``write_llm_result``.
    """
    if inspect.iscoroutinefunction(handler):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                acall_llm_handler(handler, arguments, agent_context=agent_context, name=name)
            )
        raise StateError(
            "yomo: call_llm_handler was called inside a running event loop with an async "
            "handler; use 'await acall_llm_handler(...)'"
        )
    from yomo.ai import FUNCTION_CALL_TAG
    from yomo.client.context import Context

    call = _call_payload(name, arguments, agent_context)
    written: list[bytes] = []
    ctx = Context(FUNCTION_CALL_TAG, call.to_bytes(), default_metadata(None), written.append)
    handler(ctx)
    return _answer(written, name)


async def acall_llm_handler(
    handler: Callable[..., Any],
    arguments: Arguments,
    *,
    agent_context: Any = None,
    name: str = "function-under-test",
) -> str:
    """:func:`call_llm_handler` for ``async def`` tests; plain handlers run in a thread."""
    if not inspect.iscoroutinefunction(handler):
        return await asyncio.to_thread(
            call_llm_handler, handler, arguments, agent_context=agent_context, name=name
        )
    from yomo.ai import FUNCTION_CALL_TAG
    from yomo.client.context import AsyncContext

    call = _call_payload(name, arguments, agent_context)
    written: list[bytes] = []

    async def send(frame: bytes) -> None:
        written.append(frame)

    await handler(AsyncContext(FUNCTION_CALL_TAG, call.to_bytes(), default_metadata(None), send))
    return _answer(written, name)


async def arun_llm_handler(
    handler: Callable[..., Any],
    arguments: Arguments,
    *,
    description: str = _DEFAULT_DESCRIPTION,
    input_schema: Any = None,
    agent_context: Any = None,
    zipper: Any = None,
    name: str = "function-under-test",
    timeout: float = 10.0,
) -> str:
    """Run ``handler`` as a real LLM function, call it once as the AI bridge does.

    A stream function named ``name`` with ``description`` and ``input_schema`` connects
    to ``zipper`` (a ``yomo.Zipper`` or ``yomo.aio.Zipper``; a temporary one when
    None); a source writes the tool call on 0xE002 targeted at ``name`` and a reducer
    observing 0xE001 reads the answer.

    Raises:
        Exception: what the handler raised (after the failed answer arrived).
        NoLLMResultError: the handler returned without ``write_llm_result``.
        TimeoutError: no answer within ``timeout`` seconds.
    """
    from yomo.ai import FUNCTION_CALL_TAG, REDUCER_TAG, FunctionCall
    from yomo.aio import Source, StreamFunction, TlsConfig, Zipper
    from yomo.client.sfn import HandlerError
    from yomo.session import ReconnectPolicy

    own_zipper = None
    if zipper is None:
        own_zipper = Zipper("yomo-testing", "127.0.0.1", 0, tls=TlsConfig(), stats_interval=0)
        await own_zipper.start()
        zipper = own_zipper
    addr = aio_zipper(zipper).addr
    call = _call_payload(name, arguments, agent_context)
    answered: asyncio.Future[FunctionCall] = asyncio.get_running_loop().create_future()
    errors: list[BaseException] = []

    def on_error(error: BaseException) -> None:
        errors.append(error.error if isinstance(error, HandlerError) else error)

    async def reduce(ctx: Any) -> None:
        answer = ctx.llm_function_call
        if answer.tool_call_id == call.tool_call_id and not answered.done():
            answered.set_result(answer)

    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, connect_timeout=min(timeout, 5.0))
    tls = TlsConfig()
    sfn = StreamFunction(
        name,
        addr,
        tls=tls,
        reconnect=policy,
        description=description,
        input_schema=input_schema,
    )
    sfn.set_handler(handler)
    sfn.set_error_handler(on_error)
    reducer = StreamFunction(
        f"{name}-reducer", addr, observe_data_tags=[REDUCER_TAG], tls=tls, reconnect=policy
    )
    reducer.set_handler(reduce)
    source = Source(f"{name}-caller", addr, tls=tls, reconnect=policy)
    try:
        await sfn.connect()
        await reducer.connect()
        await source.connect()
        await source.write_with_target(FUNCTION_CALL_TAG, call.to_bytes(), name)
        try:
            answer = await asyncio.wait_for(answered, timeout)
        except asyncio.TimeoutError as exc:
            raise TimeoutError(
                f"yomo: function {name!r} did not answer the call within {timeout:g} s"
            ) from exc
    finally:
        for client in (source, reducer, sfn):
            # cleanup after the outcome: the call's result (or its error) is what is reported
            with contextlib.suppress(Exception):
                await client.close()
        if own_zipper is not None:
            await own_zipper.stop()
    if not answer.is_ok and not errors:  # the error report may trail the answer a little
        for _ in range(40):
            await asyncio.sleep(0.05)
            if errors:
                break
    if errors:
        raise errors[0]
    if not answer.is_ok:
        from yomo.errors import FunctionCallError

        raise FunctionCallError(f"function {name!r} answered a failed call: {answer.result}")
    return answer.result


def _blocking(fn: Callable[P, Coroutine[Any, Any, str]]) -> Callable[P, str]:
    """``fn`` run on yomo's loop thread, waiting for its result (its ``timeout`` + 15 s)."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> str:
        from yomo._sync import LoopThread

        timeout = kwargs.get("timeout", 10.0)
        bound = float(timeout) if isinstance(timeout, (int, float)) else 10.0
        return LoopThread.get().run(fn(*args, **kwargs), bound + 15.0)

    return run


run_llm_handler = _blocking(arun_llm_handler)
run_llm_handler.__name__ = run_llm_handler.__qualname__ = "run_llm_handler"
run_llm_handler.__doc__ = """Synchronous :func:`arun_llm_handler` (typically with the ``yomo_zipper`` fixture).

Same arguments; returns the function's result, raises what its handler raised.
"""
