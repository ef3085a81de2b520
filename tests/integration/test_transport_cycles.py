"""A closed qh3 connection is freed by reference counting alone (issue 17, mass close).

The zipper's pure-Python data path freezes its long-lived heap (``gc.freeze``) so
full collections stop pausing it, and a frozen object that later becomes cyclic
garbage is never collected. So a terminated connection's objects must form no
reference cycle: ours (protocol and ``FrameConnection``) and qh3's (the server's
handler partials, ``QuicConnection`` and its TLS bridge, a dialled connection's
transport). With the cycle collector off, real clients connect over QUIC, send,
close, and every QUIC object of both sides must die once the close is processed.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from support.zippers import PLAIN_TLS
from yomo.session.core import ClientCore
from yomo.transport import DEFAULT_ZIPPER_SETTINGS, QuicSettings
from yomo.wire import ClientType, DataFrame
from yomo.zipper.heap import frozen_heap
from yomo.zipper.server import Zipper

from .helpers import FAST_RECONNECT, Inbox, eventually

__all__: list[str] = []

#: The classes of one connection's QUIC objects, by their names: qh3's
#: ``QuicConnection``, its ``QuicTlsBridge`` and TLS ``Context``, our protocol and
#: ``FrameConnection``. (qh3's batched transport of a dialled connection takes no
#: weak reference; its cycle with the protocol keeps the protocol alive.)
WATCHED = ("QuicConnection", "QuicTlsBridge", "Context", "FrameConnection", "YomoProtocol_qh3")


@contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def watched() -> list[weakref.ref[Any]]:
    """Weak references to every live object of the watched classes."""
    return [
        weakref.ref(o)
        for o in gc.get_objects()
        if type(o).__name__ in WATCHED and type(o).__module__.split(".")[0] in ("qh3", "yomo")
    ]


async def test_closed_qh3_connections_need_no_cycle_collector(
    zipper: Callable[..., Awaitable[Zipper]],
) -> None:
    z = await zipper(quic=replace(DEFAULT_ZIPPER_SETTINGS, backend="qh3"))
    quic = QuicSettings(backend="qh3")
    with collector_off():
        before = {id(r()) for r in watched()}
        inbox = Inbox()
        sfn = ClientCore(
            "sfn",
            z.addr,
            ClientType.STREAM_FUNCTION,
            observe_data_tags=[0x33],
            on_frame=inbox,
            tls=PLAIN_TLS,
            quic=quic,
            reconnect=FAST_RECONNECT,
        )
        source = ClientCore("source", z.addr, ClientType.SOURCE, tls=PLAIN_TLS, quic=quic)
        await sfn.connect()
        await source.connect()
        for i in range(20):
            await source.send(DataFrame(tag=0x33, payload=b"%d" % i).encode())
        await inbox.wait_count(20)
        refs = [r for r in watched() if id(r()) not in before]
        names = sorted({type(r()).__name__ for r in refs})
        # both sides of both connections: the test watches what it means to
        assert names == sorted(WATCHED), names
        await source.close(drain_timeout=0.5)
        await sfn.close(drain_timeout=0.5)
        del source, sfn
        await eventually(lambda: not z.connections(), "the zipper to drop both clients", 15.0)

        def alive() -> list[str]:
            return sorted(type(o).__name__ for o in (r() for r in refs) if o is not None)

        try:
            await eventually(
                lambda: not alive(), "every closed connection's objects to be freed", 15.0
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still alive (in a cycle?): {alive()}") from None


async def test_a_qh3_zipper_freezes_the_heap_while_it_serves(
    zipper: Callable[..., Awaitable[Zipper]],
) -> None:
    heap = frozen_heap()
    before = heap.holders
    z = await zipper(quic=replace(DEFAULT_ZIPPER_SETTINGS, backend="qh3"))
    assert heap.holders == before + 1
    assert gc.get_freeze_count() > 0
    await z.stop()
    assert heap.holders == before
    if before == 0:
        assert gc.get_freeze_count() == 0  # the last zipper to stop thaws it


async def test_a_native_zipper_does_not_freeze(zipper: Callable[..., Awaitable[Zipper]]) -> None:
    heap = frozen_heap()
    before = heap.holders
    z = await zipper()
    if not z.backend.startswith("native"):
        pytest.skip(f"the native module is not built here ({z.backend})")
    assert heap.holders == before
