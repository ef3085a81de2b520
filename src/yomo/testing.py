"""Helpers for testing stream functions: a pytest plugin with an in-process zipper.

Installed with yomo and loaded by pytest automatically (entry point ``yomo``):

- fixture ``yomo_zipper``: a started ``yomo.Zipper`` on a free loopback port;
- ``call_handler(handler, tag, data)``: call a handler in memory, no network;
- ``run_handler(handler, tag, data, zipper=...)``: run it as a real stream
  function behind a real zipper, fed by a real source;
- ``acall_handler`` / ``arun_handler``: the same for ``async def`` tests;
- ``call_llm_handler`` / ``run_llm_handler`` (and ``acall_llm_handler`` /
  ``arun_llm_handler``): call an LLM function with arguments, in memory or as the
  AI bridge does through a real zipper, and return its result.

Each returns what the handler wrote, as ``[(tag, bytes), ...]`` in order::

    def test_upper(yomo_zipper):
        assert run_handler(handler, 0x33, b"hi", zipper=yomo_zipper) == [(0x34, b"HI")]
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import pytest

from ._testing_llm import (
    acall_llm_handler,
    aio_zipper,
    arun_llm_handler,
    call_llm_handler,
    default_metadata,
    run_llm_handler,
)
from .errors import StateError, TimeoutError

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "MARKER_TAG",
    "acall_handler",
    "acall_llm_handler",
    "arun_handler",
    "arun_llm_handler",
    "call_handler",
    "call_llm_handler",
    "run_handler",
    "run_llm_handler",
    "yomo_zipper",
]

Written = list[tuple[int, bytes]]

#: The tag ``run_handler`` uses to know that every frame before it was handled.
#: It is never given to the handler under test and never returned.
MARKER_TAG = 0xFFFF_FFF0
#: The tag the function answers the marker under (not observed, so it does not loop).
_ANSWER_TAG = 0xFFFF_FFF1
#: Seconds ``run_handler`` waits for the function to handle everything.
DEFAULT_RUN_TIMEOUT = 10.0


def _inputs(data: bytes | Iterable[bytes]) -> list[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return [bytes(data)]
    if isinstance(data, str):
        raise TypeError("yomo: data must be bytes (encode it first, e.g. .encode())")
    return [bytes(item) for item in data]


def _decode(frame: bytes) -> tuple[int, bytes]:
    from yomo.wire import DataFrame, decode_frame

    decoded = decode_frame(frame)
    assert isinstance(decoded, DataFrame)
    return decoded.tag, bytes(decoded.payload)


def _returned(result: Any, md: Mapping[str, str]) -> tuple[int, bytes] | None:
    """A handler's ``(tag, data)`` return value, encoded and decoded as the function would."""
    if result is None:
        return None
    from yomo.client.context import build_frame

    out_tag, out_data = result
    frame = build_frame(out_tag, out_data, md)
    return None if frame is None else _decode(frame)


def call_handler(
    handler: Callable[..., Any],
    tag: int,
    data: bytes,
    metadata: Mapping[str, str] | None = None,
) -> Written:
    """Call ``handler`` once with a Context for ``(tag, data)``, in memory; return its writes.

    A plain handler gets a ``yomo.Context``; an ``async def`` handler an
    ``AsyncContext`` (run with ``asyncio.run``; inside a running event loop use
    :func:`acall_handler`). A returned ``(tag, data)`` counts as a write, as in a
    running stream function. Exceptions of the handler propagate.

    Args:
        handler: the function under test.
        tag: the tag of the frame it handles.
        data: the payload.
        metadata: extra metadata (``yomo-tid`` and ``yomo-source-id`` are set for you).
    """
    if inspect.iscoroutinefunction(handler):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(acall_handler(handler, tag, data, metadata))
        raise StateError(
            "yomo: call_handler was called inside a running event loop with an async "
            "handler; use 'await acall_handler(...)'"
        )
    from yomo.client.context import Context

    md = default_metadata(metadata)
    written: Written = []
    ctx = Context(tag, bytes(data), dict(md), lambda frame: written.append(_decode(frame)))
    extra = _returned(handler(ctx), md)
    if extra is not None:
        written.append(extra)
    return written


async def acall_handler(
    handler: Callable[..., Any],
    tag: int,
    data: bytes,
    metadata: Mapping[str, str] | None = None,
) -> Written:
    """:func:`call_handler` for ``async def`` tests; plain handlers run in a thread."""
    if not inspect.iscoroutinefunction(handler):
        return await asyncio.to_thread(call_handler, handler, tag, data, metadata)
    from yomo.client.context import AsyncContext

    md = default_metadata(metadata)
    written: Written = []

    async def send(frame: bytes) -> None:
        written.append(_decode(frame))

    extra = _returned(await handler(AsyncContext(tag, bytes(data), dict(md), send)), md)
    if extra is not None:
        written.append(extra)
    return written


def _marked(handler: Callable[..., Any], nonce: bytes) -> Callable[..., Any]:
    """``handler`` that answers the marker frame itself (same sync/async kind)."""
    if inspect.iscoroutinefunction(handler):

        async def async_wrapper(ctx: Any) -> Any:
            if ctx.tag == MARKER_TAG:
                await ctx.write(_ANSWER_TAG, nonce)
                return None
            return await handler(ctx)

        return async_wrapper

    def wrapper(ctx: Any) -> Any:
        if ctx.tag == MARKER_TAG:
            ctx.write(_ANSWER_TAG, nonce)
            return None
        return handler(ctx)

    return wrapper


async def arun_handler(
    handler: Callable[..., Any],
    tag: int,
    data: bytes | Iterable[bytes],
    *,
    observe: Sequence[int] | None = None,
    zipper: Any = None,
    name: str = "function-under-test",
    timeout: float = DEFAULT_RUN_TIMEOUT,
) -> Written:
    """Run ``handler`` as a real stream function, write ``data`` to it, return what it wrote.

    A real source writes each payload of ``data`` under ``tag`` to ``zipper``
    (a ``yomo.Zipper`` or ``yomo.aio.Zipper``; a temporary one on a free
    loopback port when None); a real ``StreamFunction`` observing ``observe``
    (``[tag]`` by default) handles them; every frame the function writes is
    collected at the zipper, in order, until it has handled all of them.

    Raises:
        Exception: the first exception the handler raised.
        TimeoutError: the handler did not finish within ``timeout`` seconds.
    """
    from yomo.aio import Source, StreamFunction, TlsConfig, Zipper
    from yomo.client.sfn import HandlerError
    from yomo.session import ReconnectPolicy

    payloads = _inputs(data)
    own_zipper = None
    if zipper is None:
        own_zipper = Zipper("yomo-testing", "127.0.0.1", 0, tls=TlsConfig(), stats_interval=0)
        await own_zipper.start()
        zipper = own_zipper
    az = aio_zipper(zipper)
    loop = asyncio.get_running_loop()
    nonce = os.urandom(8).hex().encode()
    seen: Written = []
    done = asyncio.Event()
    lock = threading.Lock()

    def forward(frame_tag: int, _md: bytes, encoded: bytes) -> None:
        # Runs on the zipper's loop, for every frame it routes, in arrival order.
        out_tag, payload = _decode(encoded)
        if out_tag == _ANSWER_TAG and payload == nonce:
            loop.call_soon_threadsafe(done.set)
            return
        if out_tag in (MARKER_TAG, _ANSWER_TAG):
            return
        with lock:
            seen.append((out_tag, payload))

    errors: list[BaseException] = []

    def on_error(error: BaseException) -> None:
        errors.append(error.error if isinstance(error, HandlerError) else error)

    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, connect_timeout=min(timeout, 5.0))
    tags = list(observe) if observe is not None else [tag]
    sfn = StreamFunction(
        name,
        az.addr,
        observe_data_tags=[*tags, MARKER_TAG],
        tls=TlsConfig(),
        reconnect=policy,
    )
    sfn.set_handler(_marked(handler, nonce))
    sfn.set_error_handler(on_error)
    source = Source(f"{name}-source", az.addr, tls=TlsConfig(), reconnect=policy)
    # The forwarder list is a plain list: appending from another thread is safe.
    remove = az.add_forwarder(forward)
    try:
        await sfn.connect()
        await source.connect()
        for payload in payloads:
            await source.write(tag, payload)
        await source.write(MARKER_TAG, nonce)
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except asyncio.TimeoutError as exc:
            raise TimeoutError(
                f"yomo: the handler did not handle {len(payloads)} frame(s) within {timeout:g} s"
            ) from exc
    finally:
        # cleanup after the outcome: the test's result (or its error) is what is reported
        with contextlib.suppress(Exception):
            await source.close()
        with contextlib.suppress(Exception):  # the same
            await sfn.close()
        with contextlib.suppress(ValueError):
            remove()
        if own_zipper is not None:
            await own_zipper.stop()
    if errors:
        raise errors[0]
    with lock:
        out = list(seen)
    # The source's own frames pass the zipper first; drop each one once.
    for payload in payloads:
        with contextlib.suppress(ValueError):
            out.remove((tag, payload))
    return out


class _RunHandlerOptions(TypedDict, total=False):
    """The keyword arguments of :func:`arun_handler`, for :func:`run_handler`."""

    observe: Sequence[int] | None
    zipper: Any
    name: str
    timeout: float


def run_handler(
    handler: Callable[..., Any],
    tag: int,
    data: bytes | Iterable[bytes],
    **options: Unpack[_RunHandlerOptions],
) -> Written:
    """Synchronous :func:`arun_handler`: a real zipper, source and stream function.

    ``zipper`` is typically the ``yomo_zipper`` fixture; without it a
    temporary zipper is started and stopped.
    """
    from yomo._sync import LoopThread

    timeout = options.get("timeout", DEFAULT_RUN_TIMEOUT)
    return LoopThread.get().run(arun_handler(handler, tag, data, **options), timeout + 15.0)


@pytest.fixture
def yomo_zipper() -> Iterator[Any]:
    """A started ``yomo.Zipper`` on a free 127.0.0.1 port, stopped after the test.

    Its ``addr`` (``"127.0.0.1:<port>"``) is what sources and functions connect to.
    """
    from yomo import TlsConfig, Zipper

    zipper = Zipper("yomo-testing", "127.0.0.1", 0, tls=TlsConfig(), stats_interval=0)
    zipper.start()
    try:
        yield zipper
    finally:
        zipper.stop()
