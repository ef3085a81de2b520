"""The asyncio StreamFunction: observes tags, handles frames, writes results.

Go: sfn.go. Handlers come in three forms:

* ``set_handler(fn)``: ``fn(ctx)`` per frame. ``async def`` handlers run on the
  event loop, plain functions on a bounded pool of worker threads so a slow
  model never stalls the network. ``concurrency`` frames are handled at once
  (1, the default, keeps strict order; Go runs every frame in its own
  goroutine). Returning ``(tag, data)`` writes it, like Go's AsyncHandler.
* ``set_pipe_handler(fn)``: an ordered stream in, an ordered stream out. A
  pipe that raises (or returns while input still comes) ends the function:
  its state is gone with it, so the error goes to the error handler with the
  tag of the frame it was on, and the function closes, so producers are not
  held by a queue nobody reads and ``wait()`` returns (Go's process would die).
* ``set_cron_handler(spec, fn)``: runs on a cron schedule and may write.

With a ``description`` (and an ``input_schema``) the function is also an LLM
tool: the AI bridge calls it on tag 0xE002 and the handler answers with
``ctx.write_llm_result`` (see ``yomo.client.llm``).

When handlers fall behind, reading from the zipper pauses (bounded queues), so
backpressure reaches the producers instead of memory growing.

Why this module is over ~400 lines: the three handler forms share one piece of state,
the function's flow control (the bounded input queue, the worker pool, frames in
flight, the pause of reading from the zipper), and ``close`` must drain all three the
same way; what a client has in common with a source is ``ClientBase``, the session is
``ClientCore``, the context is ``context.py``, cron is ``cron.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from yomo._signals import wait_on_signals
from yomo.ai.function_call import FunctionDefinition
from yomo.errors import ConfigError, HandlerError, YomoError
from yomo.session import ClientCore, ClientState, new_id
from yomo.session.options import ClientKeywords, ClientOptions
from yomo.wire import (
    SOURCE_ID,
    TARGET,
    TID,
    ClientType,
    DataFrame,
    check_tag,
    decode_metadata,
    make_data_frame,
)
from yomo.wire.resent import RESENT

from .base import ClientBase
from .context import AsyncContext, Context, CronContext, Payload, _BaseContext, build_frame
from .cron import CronRunner
from .llm import LLMFunction
from .schedule import Schedule, parse_schedule
from .tracing import ASYNC_HANDLER, PIPE_HANDLER, Tracing, span_attributes

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["AsyncStreamFunction", "HandlerError"]

_END = object()
#: Frames queued for a plain handler with concurrency 1 before reading pauses.
_SERIAL_QUEUE = 32
#: Seconds between checks that a pipe still reads while its input queue is full.
_PIPE_POLL = 0.25


class AsyncStreamFunction(ClientBase):
    """A YoMo stream function on asyncio (``yomo.aio.StreamFunction``).

    Args:
        name: the function's name, shown in the zipper's logs.
        zipper_addr: ``host:port`` of the zipper.
        observe_data_tags: tags to receive (also ``set_observe_data_tags``).
        wanted_target: receive targeted frames only for this target.
        options, credential, tls, quic, reconnect, write_timeout, logger,
            tracer_provider: as for Source (``yomo.ClientOptions``).
        concurrency: frames handled at once (1 keeps strict order).
        queue_size: frames buffered for a pipe handler before reading pauses.
        description: what the function does, for an LLM: makes it an LLM tool
            (Go: ``WithSfnAIFunctionDefinition``).
        input_schema: its argument type (a dataclass, TypedDict or pydantic model) or
            a JSON schema object of its arguments.
        function_definition: a whole ``{name, description, parameters}`` definition
            instead (Go: ``WithAIFunctionJsonDefinition``; wins over the two above).
    """

    def __init__(
        self,
        name: str,
        zipper_addr: str = "localhost:9000",
        *,
        observe_data_tags: Sequence[int] = (),
        wanted_target: str = "",
        concurrency: int = 1,
        queue_size: int = 1024,
        description: str | None = None,
        input_schema: type | Mapping[str, Any] | None = None,
        function_definition: Any = None,
        options: ClientOptions | None = None,
        **keywords: Unpack[ClientKeywords],
    ) -> None:
        if concurrency < 1:
            raise ConfigError("yomo: concurrency must be at least 1")
        options = ClientOptions.build(options, keywords)
        self._llm = LLMFunction(
            name,
            description=description,
            input_schema=input_schema,
            function_definition=function_definition,
            log=options.logger or logging.getLogger("yomo"),
        )
        self._core = ClientCore(
            name,
            zipper_addr,
            ClientType.STREAM_FUNCTION,
            wanted_target=wanted_target,
            on_frame=self._on_frame,
            on_items=self._on_items,
            options=options,
        )
        self.set_observe_data_tags(*observe_data_tags)
        self.log = self._core.log
        self.concurrency = concurrency
        self.queue_size = queue_size
        self._tracing = Tracing(options.tracer_provider, name)
        self._handler: Callable[..., Any] | None = None
        self._handler_is_async = False
        self._pipe: Callable[..., Any] | None = None
        self._init: Callable[[], Any] | None = None
        self._initialized = False
        self._cron: tuple[Schedule, Callable[..., Any]] | None = None
        self._cron_task: asyncio.Task[None] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._inflight: set[asyncio.Future[Any]] = set()
        self._pipe_in: Any = None
        self._pipe_task: asyncio.Future[Any] | None = None
        self._pipe_tag = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._serial_in: queue.Queue[Any] | None = None
        self._serial_thread: threading.Thread | None = None
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- configuration -----------------------------------------------------

    @property
    def connection_id(self) -> str:
        """The id of the current connection, ``<client_id>-<n>``."""
        return self._core.connection_id

    @property
    def final_error(self) -> BaseException | None:
        """Why the function ended by itself (a rejection, a goaway, its init failing), or None."""
        return self._core.final_error

    @property
    def function_definition(self) -> FunctionDefinition | None:
        """The LLM function definition announced to the zipper, or None (not a tool)."""
        return self._llm.definition

    def set_observe_data_tags(self, *tags: int) -> None:
        """Set the tags to receive (before ``connect``)."""
        flat: list[int] = []
        for tag in tags:
            if isinstance(tag, (list, tuple)):
                flat.extend(tag)
            else:
                flat.append(tag)
        for tag in flat:
            check_tag(tag)
        self._core.observe_data_tags = tuple(flat)

    def set_wanted_target(self, target: str) -> None:
        """Receive frames written with this target (before ``connect``)."""
        self._core.wanted_target = target

    def init(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` once, before the first frame, when the function first connects.

        If it raises, ``connect()`` raises that error and nothing is handled.
        """
        self._check_callable(fn, "init")
        self._init = fn

    def set_handler(self, fn: Callable[..., Any]) -> None:
        """Handle each frame with ``fn(ctx)``; it may return ``(tag, data)`` to write."""
        self._check_callable(fn, "handler")
        if self._pipe is not None:
            raise YomoError("a pipe handler is already set; use one or the other")
        self._handler = fn
        self._handler_is_async = inspect.iscoroutinefunction(fn)

    def set_pipe_handler(self, fn: Callable[..., Any]) -> None:
        """Handle an ordered stream: ``fn(frames) -> (tag, data) items``, order kept both ways.

        Sync: ``fn(Iterator[bytes]) -> Iterator[tuple[int, bytes]]`` (runs on a thread).
        Async: ``fn(AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]``.
        """
        self._check_callable(fn, "pipe handler")
        if self._handler is not None:
            raise YomoError("a handler is already set; use one or the other")
        self._pipe = fn

    def set_cron_handler(self, spec: str, fn: Callable[[CronContext], Any]) -> None:
        """Run ``fn(ctx)`` on the cron schedule ``spec`` (Go's robfig/cron syntax).

        ``spec`` is five fields (``"*/5 * * * *"``), a descriptor (``"@hourly"``,
        ``"@every 1h30m"``), optionally after ``TZ=<zone> ``; see ``yomo.client.schedule``.

        Raises:
            ValueError: the spec is not one Go accepts, or it would never run.
        """
        self._check_callable(fn, "cron handler")
        self._cron = (parse_schedule(spec), fn)

    @staticmethod
    def _check_callable(fn: object, what: str) -> None:
        if not callable(fn):
            raise TypeError(f"yomo: {what} must be callable, got {type(fn).__name__}")

    # -- life --------------------------------------------------------------

    async def connect(self) -> None:
        """Run ``init`` (first time only), connect and start handling frames.

        Raises:
            RejectedError: the zipper rejected the function (final).
            ConnectError: the zipper stayed unreachable for the connect timeout.
            Exception: whatever ``init`` raised.
        """
        if self._core.state in (
            ClientState.CONNECTING,
            ClientState.CONNECTED,
            ClientState.RECONNECTING,
        ):
            return  # already connected: a second pipe or cron task would run everything twice
        if self._handler is None and self._pipe is None and self._cron is None:
            raise YomoError(f"stream function {self.name!r} has no handler: call set_handler")
        if self._llm.enabled and self._handler is None:
            raise YomoError(
                f"stream function {self.name!r} is an LLM tool: set a handler (set_handler) "
                "that answers with ctx.write_llm_result"
            )
        core = self._core
        core.function_definition, core.observe_data_tags, core.wanted_target = (
            self._llm.handshake_fields(core.observe_data_tags, core.wanted_target)
        )
        if (self._handler or self._pipe) and not core.observe_data_tags:
            raise YomoError(f"stream function {self.name!r} observes no tags")
        self._loop = asyncio.get_running_loop()
        if not self._initialized and self._init is not None:
            if inspect.iscoroutinefunction(self._init):
                await self._init()
            else:
                await asyncio.to_thread(self._init)
        self._initialized = True
        if self._handler is not None and not self._handler_is_async and self.concurrency > 1:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix=f"yomo-sfn-{self.name}"
            )
        if self.concurrency > 1:
            self._slots = asyncio.Semaphore(self.concurrency)
        if self._pipe is not None:
            self._start_pipe()
        await self._core.connect()
        if self._cron is not None:
            runner = CronRunner(
                self.name,
                *self._cron,
                tracing=self._tracing,
                client_id=self._core.client_id,
                new_id=new_id,
                send=self._core.send,
                send_blocking=self._blocking_send,
                report=lambda exc: self._report(0, exc),
                log=self.log,
            )
            self._cron_task = asyncio.get_running_loop().create_task(runner.run())

    async def write(self, tag: int, data: Payload | None) -> None:
        """Write outside a handler: fresh tid, this function as the source."""
        frame = build_frame(tag, data, {SOURCE_ID: self._core.client_id, TID: new_id()})
        if frame is not None:
            await self._core.send(frame)

    async def close(self, timeout: float = 5.0) -> None:
        """Let running handlers finish (bounded by ``timeout``), send their writes, close."""
        self._closing = True  # frames read from now on are not handled
        if self._cron_task is not None:
            self._cron_task.cancel()
        if not self._idle.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        if self._serial_thread is not None and self._serial_in is not None:
            # the worker drops what is queued and ends after the frame it is handling
            await self._put_blocking(self._serial_in, _END)
            await asyncio.to_thread(self._serial_thread.join, timeout)
        if self._pipe_task is not None and self._pipe_in is not None:
            if not self._pipe_task.done():
                await self._put_pipe(_END, timeout)
            # the pipe's own failure was reported when it ended (_pipe_ended); here we only wait
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._pipe_task), timeout)
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=timeout)
        await self._core.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def wait(self) -> None:
        """Wait until the function is closed (``close``, a rejection or a goaway).

        SIGINT or SIGTERM closes it and ``wait`` returns, as Go's ``Wait``; signals are
        taken on the main thread where the program has no handlers of its own (see
        ``yomo._signals``).
        """
        await wait_on_signals(
            self._core.wait(), self.close, self.log, f"stream function {self.name!r}"
        )

    async def __aenter__(self) -> AsyncStreamFunction:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- handling ----------------------------------------------------------

    def _report(self, tag: int, exc: BaseException) -> None:
        self._core._report(HandlerError(self.name, tag, exc))

    async def _on_items(self, items: Sequence[Any], i: int) -> int:
        """Handle the received DataFrames ``(tag, metadata, payload)`` from ``items[i]`` on;
        returns the index of the first other frame (the session handles those).

        The common case (an ``async def`` handler, one frame at a time, no tracing) runs
        here in one loop: a context and the handler's own call per frame, nothing else
        (metadata checked by the native side, decoded only when the handler asks).
        Anything else goes through ``_on_frame``.
        """
        n = len(items)
        handler = self._handler
        if not (
            self._handler_is_async
            and self._slots is None
            and self._pipe is None
            and not self._tracing.enabled
        ):
            while i < n and type(item := items[i]) is tuple:
                await self._on_frame(make_data_frame(*item))
                i += 1
            return i
        assert handler is not None
        send = self._core.send
        llm = self._llm.enabled
        self._busy += 1
        self._idle.clear()
        try:
            for k in range(i, n):
                item = items[k]
                if type(item) is not tuple:
                    return k
                tag, md, data = item
                if self._closing:
                    continue
                if llm and self._llm.is_call(tag):
                    await self._on_frame(make_data_frame(tag, md, data))
                    continue
                ctx = AsyncContext(tag, data, md, send)
                # Handler isolation: a failing handler goes to the error handler; on we go.
                try:
                    result = await handler(ctx)
                    if result is not None:
                        frame = self._result_frame(result, ctx)
                        if frame is not None:
                            await send(frame)
                except Exception as exc:
                    self._report(tag, exc)
            return n
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def _on_frame(self, frame: DataFrame) -> None:
        if self._closing:
            return
        if self._pipe is not None:
            await self._put_pipe((frame.tag, bytes(frame.payload)))
            return
        if self._handler is None:
            return
        try:
            md = decode_metadata(frame.metadata)
        except YomoError as exc:
            self._report(frame.tag, exc)
            return
        md.pop(TARGET, None)  # Go clears the target before handling
        # a re-send mark is the producer's, never this function's writes' (our zipper
        # strips it; Go's passes it on): ctx.write copies the handled frame's metadata
        md.pop(RESENT, None)
        if self._slots is None:
            if self._handler_is_async:
                await self._handle(frame.tag, bytes(frame.payload), md)
            else:
                await self._feed_serial((frame.tag, bytes(frame.payload), md))
            return
        await self._slots.acquire()
        if self._closing:
            self._slots.release()
            return
        task = asyncio.ensure_future(self._handle(frame.tag, bytes(frame.payload), md))
        self._inflight.add(task)
        task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Future[Any]) -> None:
        self._inflight.discard(task)
        if self._slots is not None:
            self._slots.release()

    async def _handle(self, tag: int, data: bytes, md: dict[str, str]) -> None:
        handler = self._handler
        assert handler is not None
        send = self._core.send
        self._busy += 1
        self._idle.clear()
        llm_call = self._llm.is_call(tag)
        ctx: _BaseContext | None = None
        error: BaseException | None = None
        try:
            with self._tracing.span(self.name, md, **self._span_attributes(tag, data)) as span:
                try:
                    if self._handler_is_async:
                        ctx = AsyncContext(tag, data, md, send)
                        result = await handler(ctx)
                    else:
                        ctx = Context(tag, data, md, self._blocking_send)
                        loop = asyncio.get_running_loop()
                        result = await loop.run_in_executor(self._executor, handler, ctx)
                    if result is not None:
                        frame = self._result_frame(result, ctx)
                        if frame is not None:
                            await send(frame)
                # an LLM call's failure becomes its answer; others go to the isolation below
                except Exception as exc:
                    if not llm_call or ctx is None:
                        raise
                    error = exc
                if llm_call and ctx is not None:
                    answer, error = self._finish_llm_call(ctx, error, span)
                    if answer is not None:
                        await send(answer)
            if error is not None:
                self._report(tag, error)
        # Handler isolation: a failing handler goes to the error handler; the function runs on.
        except Exception as exc:
            self._report(tag, exc)
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    def _result_frame(self, result: Any, ctx: _BaseContext) -> bytes | None:
        """The frame for what a handler returned: ``(tag, data)`` or ``None``."""
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            shown = f"{type(result).__name__} {result!r:.60}"
            raise TypeError(
                f"yomo: the handler of {self.name!r} returned {shown}; return (tag, data) or None"
            )
        return ctx._frame(result[0], result[1], None)

    def _span_attributes(self, tag: int, data: bytes) -> dict[str, Any]:
        """Go's handler span attributes (sfn.go), and a tool call's ids for LLM calls."""
        if not self._tracing.enabled:
            return {}
        attributes = span_attributes(ASYNC_HANDLER, tag, data)
        if self._llm.is_call(tag):
            attributes.update(self._llm.span_attributes(data))
        return attributes

    def _finish_llm_call(
        self, ctx: _BaseContext, error: BaseException | None, span: Any
    ) -> tuple[bytes | None, BaseException | None]:
        answer, error = self._llm.finish(ctx, error)
        if span is not None:
            span.set_attribute("is_ok", error is None)
            if error is not None:
                span.record_exception(error)
        return answer, error

    # A plain handler with concurrency 1 runs on one worker thread fed by a small
    # queue: the loop keeps reading while the handler works, and neither waits for
    # the other per frame (a round trip per frame costs a GIL switch interval).

    async def _feed_serial(self, item: tuple[int, bytes, dict[str, str]]) -> None:
        q = self._serial_in
        if q is None:
            q = self._serial_in = queue.Queue(maxsize=_SERIAL_QUEUE)
            self._serial_thread = threading.Thread(
                target=self._run_serial, args=(q,), name=f"yomo-sfn-{self.name}", daemon=True
            )
            self._serial_thread.start()
        await self._put_blocking(q, item)

    @staticmethod
    async def _put_blocking(q: queue.Queue[Any], item: Any) -> None:
        try:
            q.put_nowait(item)
        except queue.Full:
            await asyncio.to_thread(q.put, item)

    def _run_serial(self, q: queue.Queue[Any]) -> None:
        handler = self._handler
        loop = self._loop
        assert handler is not None and loop is not None
        while True:
            item = q.get()
            if item is _END:
                return
            if self._closing:
                continue  # close() stops handling; only the running frame finishes
            tag, data, md = item
            llm_call = self._llm.is_call(tag)
            try:
                with self._tracing.span(self.name, md, **self._span_attributes(tag, data)) as span:
                    ctx = Context(tag, data, md, self._blocking_send)
                    error: BaseException | None = None
                    try:
                        result = handler(ctx)
                        if result is not None:
                            frame = self._result_frame(result, ctx)
                            if frame is not None:
                                self._core.send_from_thread(frame, loop)
                    # an LLM call's failure becomes its answer; others go to the isolation below
                    except Exception as exc:
                        if not llm_call:
                            raise
                        error = exc
                    if llm_call:
                        answer, error = self._finish_llm_call(ctx, error, span)
                        if answer is not None:
                            self._core.send_from_thread(answer, loop)
                if error is not None:
                    loop.call_soon_threadsafe(self._report, tag, error)
            # Handler isolation (worker thread): reported, the function runs on.
            except Exception as exc:
                loop.call_soon_threadsafe(self._report, tag, exc)

    def _blocking_send(self, frame: bytes) -> None:
        loop = self._loop
        assert loop is not None
        if threading.get_ident() == getattr(loop, "_thread_id", None):
            raise YomoError(
                "a blocking write was called on the event loop: use an async def handler "
                "and 'await ctx.write(...)' there"
            )
        self._core.send_from_thread(frame, loop)

    # -- pipe --------------------------------------------------------------

    def _start_pipe(self) -> None:
        fn = self._pipe
        assert fn is not None
        loop = asyncio.get_running_loop()
        if inspect.isasyncgenfunction(fn) or inspect.iscoroutinefunction(fn):
            self._pipe_in = asyncio.Queue(maxsize=self.queue_size)
            self._pipe_task = loop.create_task(self._run_async_pipe(fn))
        else:
            # A daemon thread of its own, not the loop's executor: a pipe stuck in user
            # code must not hold up the interpreter's exit (Ctrl-C, a script's end).
            self._pipe_in = queue.Queue(maxsize=self.queue_size)
            done: asyncio.Future[None] = loop.create_future()
            self._pipe_task = done

            def run() -> None:
                try:
                    self._run_sync_pipe(fn)
                finally:
                    with contextlib.suppress(RuntimeError):  # the loop is already closed
                        loop.call_soon_threadsafe(_resolve, done)

            threading.Thread(target=run, name=f"yomo-pipe-{self.name}", daemon=True).start()

    async def _put_pipe(self, item: Any, timeout: float | None = None) -> None:
        """Queue ``item`` for the pipe, waiting while it is full, unless the pipe has ended.

        Frames for a pipe that ended are dropped: the function is closing (see
        ``_pipe_ended``). With ``timeout`` the wait is bounded too.
        """
        q = self._pipe_in
        task = self._pipe_task
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while task is not None and not task.done():
            if deadline is not None and loop.time() >= deadline:
                return
            try:
                if isinstance(q, asyncio.Queue):
                    await asyncio.wait_for(q.put(item), _PIPE_POLL)
                else:
                    try:
                        q.put_nowait(item)
                    except queue.Full:
                        await asyncio.to_thread(q.put, item, True, _PIPE_POLL)
                return
            except (asyncio.TimeoutError, queue.Full):
                continue

    def _pipe_ended(self, error: BaseException | None) -> None:
        """The pipe handler raised or returned: report it and close the function (on the loop)."""
        if self._closing:
            if error is not None:
                self._report(self._pipe_tag, error)
            return
        if error is not None:
            failure: BaseException = HandlerError(self.name, self._pipe_tag, error)
            message = f"pipe handler failed: {type(error).__name__}: {error}"
        else:
            failure = YomoError(f"the pipe handler of {self.name!r} returned; the function ends")
            message = "pipe handler returned"
        if self._core.final_error is None:
            self._core.final_error = failure
        self._core._report(failure)
        self.log.warning("stream function %r: %s; closing", self.name, message)
        task = asyncio.ensure_future(self.close())
        self._core._callback_tasks.add(task)
        task.add_done_callback(self._core._callback_tasks.discard)

    def _pipe_frame(self, item: Any) -> bytes | None:
        try:
            tag, data = item
        except (TypeError, ValueError):
            raise TypeError(
                f"yomo: a pipe handler must yield (tag, data) pairs, got {item!r:.80}"
            ) from None
        md = {SOURCE_ID: self._core.client_id, TID: new_id()}
        if not self._tracing.enabled or data is None:
            return build_frame(tag, data, md)
        # Go: sfn.go, a span per frame the pipe writes, tagged with that frame's tag and length
        with self._tracing.span(self.name, md, **span_attributes(PIPE_HANDLER, tag, data)):
            return build_frame(tag, data, md)

    async def _run_async_pipe(self, fn: Callable[..., Any]) -> None:
        q: asyncio.Queue[Any] = self._pipe_in

        async def frames() -> AsyncIterator[bytes]:
            while True:
                item = await q.get()
                if item is _END:
                    return
                self._pipe_tag, data = item
                yield data

        error: BaseException | None = None
        try:
            out = fn(frames())
            if inspect.isawaitable(out):
                out = await out
            if out is not None:
                async for item in out:
                    frame = self._pipe_frame(item)
                    if frame is not None:
                        await self._core.send(frame)
        # Handler isolation: the pipe's failure ends the pipe and is reported (_pipe_ended).
        except Exception as exc:
            error = exc
        self._pipe_ended(error)

    def _run_sync_pipe(self, fn: Callable[..., Any]) -> None:
        q: queue.Queue[Any] = self._pipe_in

        def frames() -> Iterator[bytes]:
            while True:
                item = q.get()
                if item is _END:
                    return
                self._pipe_tag, data = item
                yield data

        loop = self._loop
        assert loop is not None
        error: BaseException | None = None
        try:
            out = fn(frames())
            if out is not None:
                for item in out:
                    frame = self._pipe_frame(item)
                    if frame is not None:
                        self._core.send_from_thread(frame, loop)
        # Handler isolation: the pipe's failure ends the pipe and is reported (_pipe_ended).
        except Exception as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(self._pipe_ended, error)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
