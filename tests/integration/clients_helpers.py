"""Fixtures and helpers for the public-client tests (``yomo.*`` and ``yomo.aio.*``).

``sync_zipper`` starts ``yomo.Zipper`` objects (the synchronous front door) on
127.0.0.1 port 0; ``sync_clients`` and ``aio_clients`` build sources and stream
functions with quick reconnects and close them at teardown. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

import yomo
import yomo.aio
from support.zippers import PLAIN_TLS, AsyncZippers, SyncZippers
from yomo._sync import LoopThread
from yomo.client.core import ReconnectPolicy

__all__ = [
    "FAST_RECONNECT",
    "PLAIN_TLS",
    "AioClients",
    "Collector",
    "SyncClients",
    "aio_clients",
    "aio_zipper",
    "sync_clients",
    "sync_zipper",
    "unobserved",
    "wait_until",
    "wait_until_async",
]

#: Redial quickly, give up connecting after 3 s.
FAST_RECONNECT = ReconnectPolicy(initial_delay=0.05, max_delay=0.3, jitter=0.1, connect_timeout=3.0)


def unobserved(z: Any, tag: int) -> int:
    """Frames of ``tag`` zipper ``z`` had nobody to route to (sync or asyncio zipper)."""
    row = z.stats()["tags"].get(tag)
    return 0 if row is None else int(row["unobserved"])


def _timed_out(timeout: float, what: str, state: Callable[[], str] | None) -> AssertionError:
    detail = f" ({state()})" if state is not None else ""
    return AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail}")


def wait_until(
    condition: Callable[[], bool],
    what: str = "condition",
    timeout: float = 5.0,
    state: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` (from a plain thread) until true; fail after ``timeout`` s.

    ``state()`` describes the situation in the failure message.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, what, state)
        time.sleep(0.005)


async def wait_until_async(
    condition: Callable[[], bool],
    what: str = "condition",
    timeout: float = 5.0,
    state: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` on the running loop until true; fail after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            raise _timed_out(timeout, what, state)
        await asyncio.sleep(0.005)


class Collector:
    """Thread-safe record of what a sink handler saw: (tag, data, metadata) per frame."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[int, bytes, dict[str, str]]] = []

    def add(self, ctx: Any) -> None:
        with self._lock:
            self.items.append((ctx.tag, bytes(ctx.data), dict(ctx.metadata)))

    def __len__(self) -> int:
        with self._lock:
            return len(self.items)

    def data(self) -> list[bytes]:
        with self._lock:
            return [d for _, d, _ in self.items]

    def tids(self) -> list[str]:
        with self._lock:
            return [md.get("yomo-tid", "") for _, _, md in self.items]

    def wait(self, n: int, timeout: float = 5.0) -> None:
        wait_until(lambda: len(self) >= n, f"{n} frames (have {len(self)})", timeout)

    async def wait_async(self, n: int, timeout: float = 5.0) -> None:
        await wait_until_async(lambda: len(self) >= n, f"{n} frames (have {len(self)})", timeout)


def _client_defaults(options: dict[str, Any]) -> dict[str, Any]:
    options.setdefault("tls", PLAIN_TLS)
    options.setdefault("reconnect", FAST_RECONNECT)
    options.setdefault("write_timeout", 10.0)
    return options


class SyncClients:
    """Builds ``yomo.Source``/``yomo.StreamFunction`` objects and closes them at teardown."""

    def __init__(self) -> None:
        self.all: list[yomo.Source | yomo.StreamFunction] = []

    def source(self, addr: str, name: str = "source", **options: Any) -> yomo.Source:
        s = yomo.Source(name, addr, **_client_defaults(options))
        self.all.append(s)
        return s

    def sfn(self, addr: str, name: str, tags: list[int] | None = None, **options: Any) -> Any:
        f = yomo.StreamFunction(
            name, addr, observe_data_tags=tags or (), **_client_defaults(options)
        )
        self.all.append(f)
        return f

    def sink(self, addr: str, name: str, tags: list[int], *, threaded: bool = False) -> Collector:
        """A connected stream function that records every frame of ``tags``.

        Its handler runs on the loop unless ``threaded`` (a plain handler on a worker thread).
        """
        out = Collector()

        async def collect(ctx: Any) -> None:
            out.add(ctx)

        f = self.sfn(addr, name, tags)
        f.set_handler(out.add if threaded else collect)
        f.connect()
        return out

    def close_all(self) -> None:
        """Close every client at once (each close may wait for QUIC's closing handshake)."""

        async def close(c: yomo.Source | yomo.StreamFunction) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c._aio.close(), 6.0)

        async def close_all() -> None:
            await asyncio.gather(*(close(c) for c in self.all))

        LoopThread.get().run(close_all())


class AioClients:
    """Builds ``yomo.aio`` sources and stream functions and closes them at teardown."""

    def __init__(self) -> None:
        self.all: list[yomo.aio.Source | yomo.aio.StreamFunction] = []

    def source(self, addr: str, name: str = "source", **options: Any) -> yomo.aio.Source:
        s = yomo.aio.Source(name, addr, **_client_defaults(options))
        self.all.append(s)
        return s

    def sfn(
        self, addr: str, name: str, tags: list[int] | None = None, **options: Any
    ) -> yomo.aio.StreamFunction:
        f = yomo.aio.StreamFunction(
            name, addr, observe_data_tags=tags or (), **_client_defaults(options)
        )
        self.all.append(f)
        return f

    async def sink(self, addr: str, name: str, tags: list[int]) -> Collector:
        """A connected stream function that records every frame of ``tags``."""
        out = Collector()

        async def collect(ctx: Any) -> None:
            out.add(ctx)

        f = self.sfn(addr, name, tags)
        f.set_handler(collect)
        await f.connect()
        return out

    async def close_all(self) -> None:
        """Close every client at once (each close may wait for QUIC's closing handshake)."""

        async def close(c: yomo.aio.Source | yomo.aio.StreamFunction) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 6.0)

        await asyncio.gather(*(close(c) for c in self.all))


@pytest.fixture
def sync_zipper() -> Iterator[Callable[..., yomo.Zipper]]:
    """Factory: ``sync_zipper(**options)`` starts a ``yomo.Zipper`` on 127.0.0.1 (port 0)."""
    zippers = SyncZippers(yomo.Zipper)
    yield zippers.start
    zippers.stop_all()


@pytest.fixture
async def aio_zipper() -> AsyncIterator[Callable[..., Awaitable[yomo.aio.Zipper]]]:
    """Factory: ``await aio_zipper(**options)`` starts a ``yomo.aio.Zipper`` (port 0)."""
    zippers = AsyncZippers(yomo.aio.Zipper)
    yield zippers.start
    await zippers.stop_all()


@pytest.fixture
def sync_clients() -> Iterator[SyncClients]:
    """Sync sources and stream functions, closed at teardown."""
    c = SyncClients()
    yield c
    c.close_all()


@pytest.fixture
async def aio_clients() -> AsyncIterator[AioClients]:
    """Asyncio sources and stream functions, closed at teardown."""
    c = AioClients()
    yield c
    await c.close_all()
