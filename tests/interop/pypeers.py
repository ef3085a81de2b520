"""Python YoMo peers for the interop tests: the counterparts of the Go source, sfn and sink.

They run in the test's event loop and write/record exactly what the Go peers
do (`goharness.expected_payload`, `transform`), so a test can swap either side
between languages and check the same things.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from goharness import expected_payload, transform, zipper_addr

from support.zippers import PLAIN_TLS
from yomo.aio import AsyncContext, ReconnectPolicy, Source, StreamFunction, TlsConfig
from yomo.transport import QuicSettings

__all__ = [
    "FAST_RECONNECT",
    "PLAIN_TLS",
    "PyFrame",
    "PySink",
    "expected_sizes",
    "py_sfn",
    "run_py_source",
]

#: Python clients in tests redial quickly.
FAST_RECONNECT = ReconnectPolicy(initial_delay=0.2, max_delay=1.0, connect_timeout=10.0)


@dataclass(frozen=True)
class PyFrame:
    """What a Python sink saw of one frame (the fields the Go sink prints)."""

    tag: int
    len: int
    sha256: str
    seq: int | None
    md: dict[str, str]
    head: bytes = b""
    """The first 16 bytes of the payload."""

    @property
    def tid(self) -> str | None:
        return self.md.get("yomo-tid")

    @property
    def source_id(self) -> str | None:
        return self.md.get("yomo-source-id")

    @property
    def trace_id(self) -> str | None:
        return self.md.get("yomo-trace-id")

    @property
    def span_id(self) -> str | None:
        return self.md.get("yomo-span-id")

    @property
    def target(self) -> str | None:
        return self.md.get("yomo-target")


@dataclass(eq=False)
class PySink:
    """A Python stream function that records every frame in arrival order (concurrency 1)."""

    sfn: StreamFunction
    frames: list[PyFrame] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handler(self, ctx: AsyncContext) -> None:
        data = ctx.data
        seq = int.from_bytes(data[:8], "big") if len(data) >= 8 else None
        self.frames.append(
            PyFrame(
                ctx.tag,
                len(data),
                hashlib.sha256(data).hexdigest(),
                seq,
                dict(ctx.metadata),
                bytes(data[:16]),
            )
        )
        self._changed.set()

    def by_tag(self, tag: int) -> list[PyFrame]:
        return [f for f in self.frames if f.tag == tag]

    async def wait_count(self, want: dict[int, int], timeout: float) -> None:
        """Wait until at least want[tag] frames of each tag arrived, then half a second longer.

        The extra half second lets duplicates show up, so a test can assert exact counts.
        """
        await self.wait_for(
            lambda: all(len(self.by_tag(t)) >= n for t, n in want.items()),
            timeout,
            f"frames {want} (have { {t: len(self.by_tag(t)) for t in want} })",
        )
        await asyncio.sleep(0.5)

    async def wait_total(self, n: int, timeout: float) -> None:
        """Wait until at least n frames arrived, then half a second longer (see wait_count)."""
        await self.wait_for(lambda: len(self.frames) >= n, timeout, f"{n} frames")
        await asyncio.sleep(0.5)

    async def wait_for(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait (bounded) until cond() is true; AssertionError with what when time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(
                    f"python sink: no {what} within {timeout:g} s (have {len(self.frames)})"
                )
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    async def close(self) -> None:
        await self.sfn.close()


def py_sfn(
    zipper: Any,
    *,
    name: str = "py-sfn",
    observe: Sequence[int] = (0x33,),
    out_tag: int | None = 0x34,
    spec: str = "upper",
    wanted_target: str = "",
    out_target: str | None = None,
    credential: str | None = None,
    tls: TlsConfig = PLAIN_TLS,
    tracer_provider: Any | None = None,
    reconnect: ReconnectPolicy = FAST_RECONNECT,
    quic: QuicSettings | None = None,
) -> PySink:
    """A Python stream function that records each frame and, with out_tag, replies transform(data).

    Not connected yet: ``await sink.sfn.connect()``.
    """
    sfn = StreamFunction(
        name,
        zipper_addr(zipper),
        observe_data_tags=tuple(observe),
        wanted_target=wanted_target,
        credential=credential,
        tls=tls,
        tracer_provider=tracer_provider,
        reconnect=reconnect,
        quic=quic,
    )
    sink = PySink(sfn)

    async def handler(ctx: AsyncContext) -> None:
        await sink._handler(ctx)
        if out_tag is not None:
            out = transform(ctx.data, spec)
            if out_target:
                await ctx.write_with_target(out_tag, out, out_target)
            else:
                await ctx.write(out_tag, out)

    sfn.set_handler(handler)
    return sink


def expected_sizes(n: int, sizes: Sequence[int]) -> list[int]:
    return [sizes[i % len(sizes)] for i in range(n)]


async def run_py_source(
    zipper: Any,
    *,
    n: int,
    sizes: Sequence[int] = (16,),
    tags: Sequence[int] = (0x33,),
    name: str = "py-source",
    target: str | None = None,
    credential: str | None = None,
    tls: TlsConfig = PLAIN_TLS,
    tracer_provider: Any | None = None,
    linger: float = 1.0,
    reconnect: ReconnectPolicy = FAST_RECONNECT,
) -> str:
    """Write expected_payload(i, sizes[i % len]) to tags in turn, like the Go source; returns its id.

    Like the Go source's -linger, it stays connected linger seconds after the
    last write: a Go zipper drops what it has received but not yet read when
    the connection closes (see docs/interop.md).
    """
    source = Source(
        name,
        zipper_addr(zipper),
        credential=credential,
        tls=tls,
        tracer_provider=tracer_provider,
        reconnect=reconnect,
    )
    await source.connect()
    try:
        for i in range(n):
            data = expected_payload(i, sizes[i % len(sizes)])
            tag = tags[i % len(tags)]
            if target:
                await source.write_with_target(tag, data, target)
            else:
                await source.write(tag, data)
        await asyncio.sleep(linger)
    finally:
        await source.close()
    return source.client_id
