"""Reconnects: the zipper is stopped and a new one started on the same port.

A function comes back with the next connection id ``<client_id>-<n>``, gets frames
again and does not run ``init`` again. A write during the outage waits (bounded)
and goes through once a zipper is back, or raises TimeoutError after write_timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import yomo
import yomo.aio
from yomo.client.core import ReconnectPolicy

from .clients_helpers import Collector, wait_until, wait_until_async

IN = 0x33
SLOW_RECONNECT = ReconnectPolicy(initial_delay=0.6, jitter=0.0, connect_timeout=3.0)


async def _restart_aio(aio_zipper, port: int):
    """A new zipper on ``port``; the old one's socket may close a loop turn after stop()."""
    for _ in range(40):
        try:
            return await aio_zipper(port=port)
        except yomo.YomoError as exc:
            if "in use" not in str(exc):
                raise
            await asyncio.sleep(0.05)
    raise AssertionError(f"port {port} stayed in use")


def _restart_sync(sync_zipper, port: int):
    for _ in range(40):
        try:
            return sync_zipper(port=port)
        except yomo.YomoError as exc:
            if "in use" not in str(exc):
                raise
            time.sleep(0.05)
    raise AssertionError(f"port {port} stayed in use")


def _frames_in(z, name: str) -> int:
    (info,) = [c for c in z.connections() if c.name == name]
    return info.frames_in


async def test_function_reconnects_aio(aio_zipper, aio_clients):
    z1 = await aio_zipper()
    port = z1.address[1]
    got = Collector()
    inits: list[int] = []

    async def handler(ctx: yomo.AsyncContext) -> None:
        got.add(ctx)

    fn = aio_clients.sfn(z1.addr, "fn", [IN])
    fn.init(lambda: inits.append(1))
    fn.set_handler(handler)
    await fn.connect()
    src = aio_clients.source(z1.addr, "src")
    await src.connect()
    assert fn.connection_id == f"{fn.client_id}-0"
    await src.write(IN, b"before")
    await got.wait_async(1)

    await z1.stop()
    await wait_until_async(lambda: fn.state is yomo.ClientState.RECONNECTING, "fn to notice")
    z2 = await _restart_aio(aio_zipper, port)
    await wait_until_async(lambda: fn.state is yomo.ClientState.CONNECTED, "fn back")
    await wait_until_async(lambda: src.state is yomo.ClientState.CONNECTED, "src back")
    assert fn.connection_id.startswith(f"{fn.client_id}-")
    assert fn.connection_id != f"{fn.client_id}-0"
    assert fn.connection_id in {c.client_id for c in z2.connections()}
    await src.write(IN, b"after")
    await got.wait_async(2)
    assert got.data() == [b"before", b"after"]
    assert inits == [1]


def test_function_reconnects_sync(sync_zipper, sync_clients):
    z1 = sync_zipper()
    port = z1.address[1]
    got = Collector()
    inits: list[int] = []
    fn = sync_clients.sfn(z1.addr, "fn", [IN])
    fn.init(lambda: inits.append(1))
    fn.set_handler(got.add)
    fn.connect()
    src = sync_clients.source(z1.addr, "src")
    src.connect()
    assert fn.connection_id == f"{fn.client_id}-0"
    src.write(IN, b"before")
    got.wait(1)

    z1.stop()
    wait_until(lambda: fn.state is yomo.ClientState.RECONNECTING, "fn to notice")
    z2 = _restart_sync(sync_zipper, port)
    wait_until(lambda: fn.state is yomo.ClientState.CONNECTED, "fn back")
    wait_until(lambda: src.state is yomo.ClientState.CONNECTED, "src back")
    assert fn.connection_id.startswith(f"{fn.client_id}-")
    assert fn.connection_id != f"{fn.client_id}-0"
    assert fn.connection_id in {c.client_id for c in z2.connections()}
    src.write(IN, b"after")
    got.wait(2)
    assert got.data() == [b"before", b"after"]
    assert inits == [1]


async def test_write_during_outage_waits_then_goes_through_aio(aio_zipper, aio_clients):
    z1 = await aio_zipper()
    port = z1.address[1]
    src = aio_clients.source(z1.addr, "src", reconnect=SLOW_RECONNECT, write_timeout=3.0)
    await src.connect()
    await z1.stop()
    await wait_until_async(lambda: src.state is yomo.ClientState.RECONNECTING, "src to notice")
    write = asyncio.ensure_future(src.write(IN, b"during outage"))
    for _ in range(20):  # loop turns, not time: with no connection the write cannot finish
        await asyncio.sleep(0)
    assert not write.done()
    z2 = await _restart_aio(aio_zipper, port)
    await asyncio.wait_for(write, 8.0)
    # which client is back first is up to QUIC retransmits, so check the zipper got it
    await wait_until_async(lambda: _frames_in(z2, "src") == 1, "the frame at the new zipper")
    assert z2.stats()["tags"][IN]["frames_in"] == 1


def test_write_during_outage_waits_then_goes_through_sync(sync_zipper, sync_clients):
    z1 = sync_zipper()
    port = z1.address[1]
    src = sync_clients.source(z1.addr, "src", reconnect=SLOW_RECONNECT, write_timeout=3.0)
    src.connect()
    z1.stop()
    wait_until(lambda: src.state is yomo.ClientState.RECONNECTING, "src to notice")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            src.write(IN, b"during outage")
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(0.2)
    assert writer.is_alive()
    z2 = _restart_sync(sync_zipper, port)
    writer.join(8.0)
    assert not writer.is_alive()
    assert errors == []
    wait_until(lambda: _frames_in(z2, "src") == 1, "the frame at the new zipper")
    assert z2.stats()["tags"][IN]["frames_in"] == 1


async def test_write_during_outage_times_out_aio(aio_zipper, aio_clients):
    z = await aio_zipper()
    src = aio_clients.source(z.addr, "src", write_timeout=0.5)
    await src.connect()
    await z.stop()
    await wait_until_async(lambda: src.state is yomo.ClientState.RECONNECTING, "src to notice")
    with pytest.raises(yomo.TimeoutError, match="unreachable") as info:
        await src.write(IN, b"lost")
    assert isinstance(info.value, TimeoutError)
    assert src.state is yomo.ClientState.RECONNECTING


def test_write_during_outage_times_out_sync(sync_zipper, sync_clients):
    z = sync_zipper()
    src = sync_clients.source(z.addr, "src", write_timeout=0.5)
    src.connect()
    z.stop()
    wait_until(lambda: src.state is yomo.ClientState.RECONNECTING, "src to notice")
    with pytest.raises(yomo.TimeoutError, match="unreachable") as info:
        src.write(IN, b"lost")
    assert isinstance(info.value, TimeoutError)
    assert src.state is yomo.ClientState.RECONNECTING


async def test_goaway_is_final_aio(aio_zipper, aio_clients):
    z = await aio_zipper()
    errors: list[BaseException] = []

    async def handler(ctx: yomo.AsyncContext) -> None:
        pass

    fn = aio_clients.sfn(z.addr, "fn", [IN])
    fn.set_handler(handler)
    fn.set_error_handler(errors.append)
    await fn.connect()
    assert z.goaway("fn", "maintenance") == 1
    await asyncio.wait_for(fn.wait(), 5.0)
    assert fn.state is yomo.ClientState.CLOSED
    assert len(errors) == 1
    assert isinstance(errors[0], yomo.ConnectionClosedError)
    assert "maintenance" in str(errors[0])
    await asyncio.sleep(0.3)  # FAST_RECONNECT would have redialled by now
    assert z.connections() == []


def test_goaway_is_final_sync(sync_zipper, sync_clients):
    z = sync_zipper()
    errors: list[BaseException] = []
    fn = sync_clients.sfn(z.addr, "fn", [IN])
    fn.set_handler(lambda ctx: None)
    fn.set_error_handler(errors.append)
    fn.connect()
    assert z.goaway("fn", "maintenance") == 1
    waiter = threading.Thread(target=fn.wait)
    waiter.start()
    waiter.join(5.0)
    assert not waiter.is_alive()
    assert fn.state is yomo.ClientState.CLOSED
    assert len(errors) == 1
    assert isinstance(errors[0], yomo.ConnectionClosedError)
    assert "maintenance" in str(errors[0])
    time.sleep(0.3)
    assert z.connections() == []
