"""The synchronous front door: the asyncio core driven from one background loop thread.

Every sync call hands a coroutine to a single daemon event loop and waits for
its result, so no logic is written twice (httpx-style ``Client`` over the
core, but with one async implementation). Waits wake up regularly so Ctrl-C
works in the calling thread.

Why this module is a little over ~400 lines: it is the whole synchronous front door,
one thin class per asyncio class (``Source``, ``StreamFunction``, ``Zipper``) over one
``LoopThread``; each member is a one-line hand-over, and what Source and StreamFunction
share is written once (``_SyncClient``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from yomo._signals import stop_signals, wait_or_close
from yomo.ai.function_call import FunctionDefinition
from yomo.client.context import Payload, json_payload
from yomo.client.sfn import AsyncStreamFunction
from yomo.client.source import AsyncSource
from yomo.errors import StateError, TimeoutError
from yomo.session import ClientOptions, ClientState, ErrorHandler
from yomo.zipper.config import ZipperConfig
from yomo.zipper.options import ZipperKeywords, ZipperOptions
from yomo.zipper.server import Zipper as AsyncZipper

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

__all__ = ["LoopThread", "Source", "StreamFunction", "Zipper"]

T = TypeVar("T")
P = ParamSpec("P")
F = TypeVar("F", bound=Callable[..., Any])


def _same_arguments_as(
    async_class: Callable[P, object],
) -> Callable[[Callable[..., None]], Callable[Concatenate[Any, P], None]]:
    """Give a sync front door's ``__init__`` the typed signature of its asyncio class.

    The parameters are written once, on the asyncio class; mypy checks calls of the
    sync class against them and ``help()``/``inspect.signature`` show them.
    """

    def adopt(init: Callable[..., None]) -> Callable[Concatenate[Any, P], None]:
        init.__signature__ = inspect.signature(async_class.__init__)  # type: ignore[attr-defined]
        return init

    return adopt


class LoopThread:
    """One daemon thread running the event loop that every sync client shares."""

    _instance: LoopThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="yomo-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @classmethod
    def get(cls) -> LoopThread:
        """The shared loop thread, started on first use."""
        with cls._lock:
            if cls._instance is None:
                cls._instance = LoopThread()
            return cls._instance

    def check_thread(self) -> None:
        """Refuse a blocking call made on the loop thread itself: it would deadlock."""
        if threading.current_thread() is self._thread:
            raise StateError(
                "yomo: a blocking call was made on yomo's event loop thread; "
                "use yomo.aio inside async handlers"
            )

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (``timeout`` seconds at most)."""
        try:
            self.check_thread()
        except RuntimeError:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = None if timeout is None else self.loop.time() + timeout
        try:
            while True:
                try:
                    return future.result(timeout=0.25)
                except concurrent.futures.TimeoutError as exc:
                    if deadline is not None and self.loop.time() >= deadline:
                        future.cancel()
                        raise TimeoutError(f"yomo: no result within {timeout:g} s") from exc
        except KeyboardInterrupt:
            future.cancel()
            raise


def _wait_or_close_on_interrupt(loop: LoopThread, client: Any, who: str) -> None:
    """``client.wait()``; SIGINT or SIGTERM (Ctrl-C) closes the client and returns, like Go.

    The signals are taken here, on the calling (main) thread, and passed to the loop;
    a KeyboardInterrupt from a handler of the program's own closes the client too.
    """
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(name: str) -> None:
        received.append(name)
        loop.loop.call_soon_threadsafe(stop.set)

    closed = client._core.wait
    try:
        with stop_signals(on_signal):
            loop.run(wait_or_close(closed(), client.close, stop, received, client.log, who))
    except KeyboardInterrupt:
        client.log.info("%s: interrupted (Ctrl-C), closing", who)
        loop.run(client.close())


A = TypeVar("A", AsyncSource, AsyncStreamFunction)


class _SyncClient(Generic[A]):
    """What the synchronous Source and StreamFunction share, read from the asyncio
    client each drives on the loop thread."""

    _aio: A
    _loop: LoopThread

    @property
    def name(self) -> str:
        """The client's name, shown in the zipper's logs."""
        return self._aio.name

    @property
    def client_id(self) -> str:
        """The client id: a source writes it as ``yomo-source-id``; connection ids are
        ``<client_id>-<n>``."""
        return self._aio.client_id

    @property
    def options(self) -> ClientOptions:
        """What the client was configured with (``yomo.ClientOptions``)."""
        return self._aio.options

    @property
    def state(self) -> ClientState:
        """Where the client is in its life."""
        return self._aio.state

    def set_error_handler(self, fn: ErrorHandler) -> None:
        """Call ``fn(error)`` on connection failures and rejections (and, for a stream
        function, when a handler raises); the default logs them."""
        self._aio.set_error_handler(fn)

    def connect(self) -> None:
        """Connect and handshake (a stream function runs ``init`` first, once); raises
        ``RejectedError`` or ``ConnectError``."""
        self._loop.run(self._aio.connect())

    def close(self) -> None:
        """Send what was written and close (idempotent)."""
        self._loop.run(self._aio.close())

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Source(_SyncClient[AsyncSource]):
    """A YoMo source (synchronous). Same arguments as ``yomo.aio.Source``.

    ::

        with yomo.Source("my-source", "localhost:9000") as source:
            source.write(0x33, b"hello")
    """

    @_same_arguments_as(AsyncSource)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = LoopThread.get()
        self._aio = AsyncSource(*args, **kwargs)

    def write(self, tag: int, data: Payload | None) -> None:
        """Write ``data`` under ``tag``; waits (bounded) while the zipper is not reading."""
        self._write(tag, data, None)

    def write_with_target(self, tag: int, data: Payload | None, target: str) -> None:
        """Write only to the stream functions whose wanted target is ``target``."""
        self._write(tag, data, target)

    def write_json(self, tag: int, obj: Any) -> None:
        """Write ``obj`` encoded as compact JSON (UTF-8), like ``Context.write_json``."""
        self._write(tag, json_payload(obj), None)

    def _write(self, tag: int, data: Payload | None, target: str | None) -> None:
        # Build the frame here (bad tags and data raise in the caller's thread), then
        # hand it to the loop without a round trip while the connection has room.
        self._loop.check_thread()  # a write that has to wait would deadlock the loop
        frame = self._aio._frame(tag, data, target)
        if frame is not None:
            self._aio._core.send_from_thread(frame, self._loop.loop)

    def wait(self) -> None:
        """Block until the source is closed; SIGINT (Ctrl-C) or SIGTERM closes it and returns,
        without a traceback, as Go's ``Wait`` (see ``yomo._signals``)."""
        _wait_or_close_on_interrupt(self._loop, self._aio, f"source {self.name!r}")


class StreamFunction(_SyncClient[AsyncStreamFunction]):
    """A YoMo stream function (synchronous). Same arguments as ``yomo.aio.StreamFunction``.

    Plain handlers run on worker threads and get a ``Context`` whose ``write``
    blocks; ``async def`` handlers run on the loop with an ``AsyncContext``.
    With ``description`` (and ``input_schema``) it is an LLM tool::

        sfn = yomo.StreamFunction("get-weather", description="...", input_schema=Weather)

        @sfn.set_handler
        def handler(ctx):
            args = ctx.read_llm_arguments(Weather)
            ctx.write_llm_result(f"sunny in {args.city}")
    """

    @_same_arguments_as(AsyncStreamFunction)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = LoopThread.get()
        self._aio = AsyncStreamFunction(*args, **kwargs)

    @property
    def connection_id(self) -> str:
        """The id of the current connection."""
        return self._aio.connection_id

    @property
    def function_definition(self) -> FunctionDefinition | None:
        """The LLM function definition announced to the zipper, or None (not a tool)."""
        return self._aio.function_definition

    @property
    def final_error(self) -> BaseException | None:
        """Why the function ended by itself (a rejection, a goaway, its init failing), or None."""
        return self._aio.final_error

    def set_observe_data_tags(self, *tags: int) -> None:
        """Set the tags to receive (before ``connect``)."""
        self._aio.set_observe_data_tags(*tags)

    def set_wanted_target(self, target: str) -> None:
        """Receive frames written with this target (before ``connect``)."""
        self._aio.set_wanted_target(target)

    def init(self, fn: F) -> F:
        """Run ``fn()`` once before the first frame (usable as a decorator)."""
        self._aio.init(fn)
        return fn

    def set_handler(self, fn: F) -> F:
        """Handle each frame with ``fn(ctx)`` (usable as a decorator)."""
        self._aio.set_handler(fn)
        return fn

    def set_pipe_handler(self, fn: F) -> F:
        """Handle the ordered stream with ``fn(frames)`` (usable as a decorator)."""
        self._aio.set_pipe_handler(fn)
        return fn

    def set_cron_handler(self, spec: str, fn: F) -> F:
        """Run ``fn(ctx)`` on the cron schedule ``spec``."""
        self._aio.set_cron_handler(spec, fn)
        return fn

    def write(self, tag: int, data: Payload | None) -> None:
        """Write outside a handler (fresh tid, this function as the source)."""
        self._loop.run(self._aio.write(tag, data))

    def close(self, timeout: float = 5.0) -> None:
        """Let running handlers finish (bounded by ``timeout``), send their writes, close.

        Idempotent, like ``yomo.aio.StreamFunction.close``.
        """
        self._loop.run(self._aio.close(timeout))

    def wait(self) -> None:
        """Block until the function is closed.

        SIGINT (Ctrl-C) or SIGTERM closes it (running handlers finish, bounded) and
        returns, as Go's ``Wait``, so a program that ends with ``wait()`` exits cleanly
        without a traceback (see ``yomo._signals``).
        """
        _wait_or_close_on_interrupt(self._loop, self._aio, f"stream function {self.name!r}")


class Zipper:
    """A zipper (synchronous): ``start()`` in the background or ``serve()`` blocking.

    Same arguments as ``yomo.aio.Zipper``; ``port=0`` picks a free port and
    ``address`` tells which.
    """

    @_same_arguments_as(AsyncZipper)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._loop = LoopThread.get()
        self._aio = self._loop.run(_construct(AsyncZipper, *args, **kwargs))

    @classmethod
    def from_config(cls, config: ZipperConfig, **keywords: Unpack[ZipperKeywords]) -> Zipper:
        """A zipper from a parsed ``zipper.yaml`` (as ``yomo.aio.Zipper.from_config``)."""
        self = cls.__new__(cls)
        self._loop = LoopThread.get()
        self._aio = self._loop.run(_construct(AsyncZipper.from_config, config, **keywords))
        return self

    @property
    def aio(self) -> AsyncZipper:
        """The asyncio zipper this one drives (its methods must run on ``yomo``'s loop)."""
        return self._aio

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        return self._aio.address

    @property
    def addr(self) -> str:
        """``host:port`` for clients."""
        return self._aio.addr

    @property
    def monitor_address(self) -> tuple[str, int] | None:
        """Where the monitor endpoint listens (the bound address after ``start``), if any."""
        return self._aio.monitor_address

    @property
    def options(self) -> ZipperOptions:
        """What the zipper was configured with (``yomo.ZipperOptions``)."""
        return self._aio.options

    @property
    def state(self) -> str:
        """``"new"``, ``"starting"``, ``"serving"``, ``"stopping"`` or ``"stopped"``."""
        return self._aio.state

    @property
    def backend(self) -> str:
        """The data path serving connections (see ``yomo.aio.Zipper.backend``)."""
        return self._aio.backend

    def start(self) -> None:
        """Listen and serve in the background."""
        self._loop.run(self._aio.start())

    def serve(self) -> None:
        """Serve until ``stop`` (from another thread), SIGINT (Ctrl-C) or SIGTERM.

        A signal stops the zipper (every connection closed with a reason) and ``serve``
        returns, as Go's zipper shuts down on them; see ``yomo._signals``.
        """
        stop = asyncio.Event()
        received: list[str] = []

        def on_signal(name: str) -> None:
            received.append(name)
            self._loop.loop.call_soon_threadsafe(stop.set)

        def close() -> Any:
            return self._aio.stop(f"zipper stopped: received {received[0]}")

        try:
            with stop_signals(on_signal):
                self._loop.run(
                    wait_or_close(
                        self._aio.serve(),
                        close,
                        stop,
                        received,
                        self._aio.log,
                        f"zipper {self._aio.name!r}",
                    )
                )
        except KeyboardInterrupt:
            self.stop()

    def stop(self, reason: str = "zipper is shutting down") -> None:
        """Close every connection with ``reason`` and stop listening."""
        self._loop.run(self._aio.stop(reason))

    def stats(self) -> dict[str, Any]:
        """Counters: connections by type, frames and bytes per tag, drops, rejections."""
        return self._loop.run(_call(self._aio.stats))

    def connections(self) -> list[Any]:
        """The registered connections."""
        return self._loop.run(_call(self._aio.connections))

    def goaway(self, who: str | int, message: str = "goaway") -> int:
        """Send a GoawayFrame to the matching connections."""
        return self._loop.run(_call(self._aio.goaway, who, message))

    def __enter__(self) -> Zipper:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _construct(factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return factory(*args, **kwargs)


async def _call(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)
