"""Runs tool calls through the zipper, as any other client would.

Go: pkg/bridge/ai/caller (caller.go, call_syncer.go) and pkg/bridge/ai/reducer.go.
A Source named ``fc-source`` writes each call as ``FunctionCall`` JSON on 0xE002,
targeted at the function's name; a StreamFunction named ``fc-reducer`` observes
0xE001 and hands each result to the call waiting for its ``(req_id, tool_call_id)``.
Both connect to the zipper over loopback QUIC, so the calls take the zipper's own
routing path (native or Python) and reach functions on mesh peers too.

Beyond Go: a call to a function that leaves before answering gets its result at
once (``function `x` left before answering``) instead of waiting for the timeout,
and the number of calls waiting is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from yomo.ai import FUNCTION_CALL_TAG, REDUCER_TAG, FunctionCall, FunctionCallError
from yomo.client.context import AsyncContext
from yomo.client.sfn import AsyncStreamFunction
from yomo.client.source import AsyncSource
from yomo.errors import YomoError
from yomo.transport import TlsConfig
from yomo.zipper.functions import MESH_FUNCTIONS_TAG, FunctionRegistry, decode_announcement

__all__ = [
    "DEFAULT_MAX_PENDING",
    "TIMEOUT_RESULT",
    "Caller",
    "CallerStats",
    "ToolCall",
    "ToolCallResult",
    "new_id",
]

#: What the LLM reads for a call unanswered in time (Go: call_syncer.go Call).
TIMEOUT_RESULT = "timeout in this function calling, you should ignore this."
#: Tool calls waiting for results at once; past it a call fails at once (beyond Go).
DEFAULT_MAX_PENDING = 10_000

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Random bytes below this map evenly onto the alphabet (4 x 62); the rest are skipped.
_EVEN = 4 * len(_ALPHABET)


def new_id(length: int = 16) -> str:
    """A random id of ``length`` letters and digits (Go: pkg/id New).

    One ``os.urandom`` call per id (``secrets.choice`` per letter cost ~80 µs for the
    32 letters of a request's transaction id); uniform over the alphabet.
    """
    letters: list[str] = []
    while len(letters) < length:
        letters += [_ALPHABET[b % 62] for b in os.urandom(length + 8) if b < _EVEN]
    return "".join(letters[:length])


@dataclass(frozen=True)
class ToolCall:
    """One call the LLM asked for: its id, the function's name, the arguments (JSON text)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCallResult:
    """A function's answer (or Go's timeout text) for one tool call."""

    tool_call_id: str
    function_name: str
    content: str
    ok: bool = True
    """False when the function did not answer (timeout, left, not written) or answered
    with ``is_ok`` false."""


@dataclass
class CallerStats:
    """Counters of tool calls since start."""

    calls: int = 0
    answered: int = 0
    timeouts: int = 0
    failed: int = 0
    """Calls not answered for another reason: the function left, the write failed."""
    late_results: int = 0
    """Results that came after their call gave up, or for another bridge's calls."""
    seconds: float = 0.0
    """Total time rounds of calls took, from sending to the last result (or timeout)."""


class Caller:
    """The bridge's two zipper clients and the table of calls waiting for results.

    Args:
        zipper_addr: ``host:port`` of the zipper to call through (usually its own).
        functions: the zipper's registry; used to fail calls whose function left.
        credential: what the two clients present (``token:<token>``).
        tls: client TLS settings; default from ``YOMO_TLS_*``.
        max_pending: bound of calls waiting for results.
        zipper_name: the zipper's own name; ``fc-reducer`` also reads the LLM-function
            announcements of mesh peers (``MESH_FUNCTIONS_TAG``) into ``functions``.
        reachable: whether calls can reach a peer zipper now (its mesh link is up); a
            peer's announcements are applied only then, so no call is offered that the
            link would drop.
    """

    def __init__(
        self,
        zipper_addr: str,
        functions: FunctionRegistry | None = None,
        *,
        credential: str = "",
        tls: TlsConfig | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        zipper_name: str = "",
        reachable: Callable[[str], bool] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.log = logger or logging.getLogger("yomo.bridge")
        self.functions = functions
        self.max_pending = max_pending
        self.zipper_name = zipper_name
        self.reachable = reachable
        self.stats = CallerStats()
        self._source = AsyncSource(
            "fc-source", zipper_addr, credential=credential, tls=tls, logger=self.log
        )
        self._reducer = AsyncStreamFunction(
            "fc-reducer",
            zipper_addr,
            observe_data_tags=[REDUCER_TAG, MESH_FUNCTIONS_TAG],
            credential=credential,
            tls=tls,
            logger=self.log,
        )
        self._reducer.set_handler(self._on_result)
        self._pending: dict[tuple[str, str], tuple[str, asyncio.Future[FunctionCall]]] = {}
        self._unsubscribe: Any = None

    async def start(self) -> None:
        """Connect both clients (raises what their ``connect`` raises)."""
        await self._reducer.connect()
        await self._source.connect()
        if self.functions is not None:
            self._unsubscribe = self.functions.subscribe(self._on_registry_change)

    async def stop(self) -> None:
        """Fail waiting calls and close both clients."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        for name, future in self._pending.values():
            if not future.done():
                future.set_exception(YomoError(f"the AI bridge stopped before `{name}` answered"))
        self._pending.clear()
        await self._source.close()
        await self._reducer.close(timeout=1.0)

    @property
    def pending(self) -> int:
        """Calls waiting for a result now."""
        return len(self._pending)

    async def call(
        self,
        calls: Sequence[ToolCall],
        *,
        tid: str,
        req_id: str,
        agent_context: str = "",
        timeout: float = 60.0,
        tracer: trace.Tracer | None = None,
    ) -> list[ToolCallResult]:
        """Send every call at once and wait for all results, each bounded by ``timeout``.

        Results come in the order of ``calls``. A call unanswered in time gets Go's
        timeout text. A call whose ``id`` is empty or equals the function name (Gemini,
        Vertex AI) travels with a generated id and is reported under the function name.

        Raises:
            YomoError: too many calls are waiting, or the zipper cannot be written to.
        """
        if not calls:
            return []
        if len(self._pending) + len(calls) > self.max_pending:
            raise YomoError(
                f"too many tool calls waiting ({len(self._pending)}, bound {self.max_pending})"
            )
        loop = asyncio.get_running_loop()
        waits: list[tuple[ToolCall, str, asyncio.Future[FunctionCall]]] = []
        spans = []
        started = time.monotonic()
        try:
            for call in calls:
                wire_id = call.id if call.id and call.id != call.name else new_id(8)
                future: asyncio.Future[FunctionCall] = loop.create_future()
                self._pending[(req_id, wire_id)] = (call.name, future)
                waits.append((call, wire_id, future))
                if tracer is not None:
                    spans.append(tracer.start_span(call.name))
                self.stats.calls += 1
                if self.functions is not None and call.name not in self.functions:
                    future.set_exception(YomoError(f"function `{call.name}` is not registered"))
                    continue
                payload = FunctionCall(
                    tid=tid,
                    req_id=req_id,
                    tool_call_id=wire_id,
                    function_name=call.name,
                    arguments=call.arguments,
                    agent_context=agent_context,
                ).to_bytes()
                await self._source.write_with_target(FUNCTION_CALL_TAG, payload, call.name)
            done, _ = await asyncio.wait([f for _, _, f in waits], timeout=timeout)
            results = []
            for call, _, future in waits:
                report_id = call.id or call.name
                if future in done and future.exception() is None:
                    answer = future.result()
                    self.stats.answered += 1
                    # A function that answers with is_ok false (e.g. a Python function whose
                    # handler raised) failed; its result says why.
                    results.append(
                        ToolCallResult(report_id, call.name, answer.result, ok=answer.is_ok)
                    )
                elif future in done:
                    self.stats.failed += 1
                    error = future.exception()
                    text = error.message if isinstance(error, YomoError) else str(error)
                    self.log.warning("tool call %s (%s) failed: %s", report_id, call.name, text)
                    results.append(ToolCallResult(report_id, call.name, text, ok=False))
                else:
                    self.stats.timeouts += 1
                    self.log.warning(
                        "tool call %s (%s) unanswered in %g s", report_id, call.name, timeout
                    )
                    results.append(ToolCallResult(report_id, call.name, TIMEOUT_RESULT, ok=False))
            self.stats.seconds += time.monotonic() - started
            return results
        finally:
            for _, wire_id, future in waits:
                self._pending.pop((req_id, wire_id), None)
                if not future.done():
                    future.cancel()
            for span in spans:
                span.end()

    async def _on_result(self, ctx: AsyncContext) -> None:
        if ctx.tag == MESH_FUNCTIONS_TAG:
            self._on_announcement(ctx.data)
            return
        try:
            answer = FunctionCall.from_bytes(ctx.data)
        except FunctionCallError as exc:
            self.log.warning("fc-reducer: ignored a result that is not a tool call: %s", exc)
            return
        entry = self._pending.get((answer.req_id, answer.tool_call_id))
        if entry is None or entry[1].done():
            self.stats.late_results += 1
            self.log.debug(
                "fc-reducer: no call waits for req_id %s tool_call_id %s",
                answer.req_id,
                answer.tool_call_id,
            )
            return
        entry[1].set_result(answer)

    def _on_announcement(self, payload: bytes) -> None:
        try:
            zipper, definitions = decode_announcement(payload)
        except FunctionCallError as exc:
            self.log.warning("fc-reducer: ignored a bad function announcement: %s", exc)
            return
        if self.functions is None or zipper == self.zipper_name:
            return
        if self.reachable is not None and not self.reachable(zipper):
            return  # its functions could not be called yet; the next announcement counts
        self.functions.apply_announcement(zipper, definitions)

    def _on_registry_change(self) -> None:
        functions = self.functions
        assert functions is not None
        for name, future in self._pending.values():
            if not future.done() and name not in functions:
                future.set_exception(YomoError(f"function `{name}` left before answering"))
