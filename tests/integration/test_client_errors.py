"""Errors the public clients raise, in both front doors.

A bad token ends in AuthenticationError carrying the zipper's message and is never
retried; an unreachable zipper ends in ConnectError after the connect timeout, naming
the address; misuse (no handler, no tags, write before connect, bad arguments) is
refused with a clear error before anything is sent.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import yomo
import yomo.aio
from yomo.client.core import ReconnectPolicy
from yomo.zipper.auth import TokenAuth

from .clients_helpers import PLAIN_TLS

IN = 0x33
QUICK_GIVE_UP = ReconnectPolicy(initial_delay=0.1, max_delay=0.3, connect_timeout=1.5)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check_rejection(exc: BaseException) -> None:
    assert isinstance(exc, yomo.AuthenticationError)
    assert isinstance(exc, yomo.RejectedError)
    assert exc.reason == "invalid token: wrong"
    assert str(exc).startswith("yomo: ")


@pytest.mark.parametrize("kind", ["source", "sfn"])
async def test_bad_token_aio(aio_zipper, aio_clients, kind):
    z = await aio_zipper(authenticators=[TokenAuth("s3cret")])
    if kind == "source":
        client = aio_clients.source(z.addr, credential="token:wrong")
    else:
        client = aio_clients.sfn(z.addr, "fn", [IN], credential="token:wrong")
        client.set_handler(lambda ctx: None)
    with pytest.raises(yomo.AuthenticationError) as info:
        await client.connect()
    _check_rejection(info.value)
    assert client.state is yomo.ClientState.CLOSED
    await asyncio.sleep(0.5)  # a retry would come within FAST_RECONNECT's delays
    assert z.stats()["rejections"] == 1
    with pytest.raises(yomo.YomoError, match="closed"):
        await client.connect()
    await asyncio.wait_for(client.wait(), 1.0)


@pytest.mark.parametrize("kind", ["source", "sfn"])
def test_bad_token_sync(sync_zipper, sync_clients, kind):
    z = sync_zipper(authenticators=[TokenAuth("s3cret")])
    if kind == "source":
        client = sync_clients.source(z.addr, credential="token:wrong")
    else:
        client = sync_clients.sfn(z.addr, "fn", [IN], credential="token:wrong")
        client.set_handler(lambda ctx: None)
    with pytest.raises(yomo.AuthenticationError) as info:
        client.connect()
    _check_rejection(info.value)
    assert client.state is yomo.ClientState.CLOSED
    time.sleep(0.5)
    assert z.stats()["rejections"] == 1
    with pytest.raises(yomo.YomoError, match="closed"):
        client.connect()
    client.wait()


async def test_good_token_is_accepted_aio(aio_zipper, aio_clients):
    z = await aio_zipper(authenticators=[TokenAuth("s3cret")])
    src = aio_clients.source(z.addr, credential="token:s3cret")
    await src.connect()
    assert src.state is yomo.ClientState.CONNECTED


async def test_unreachable_zipper_aio(aio_clients):
    port = _free_udp_port()
    errors: list[BaseException] = []
    src = aio_clients.source(f"127.0.0.1:{port}", reconnect=QUICK_GIVE_UP)
    src.set_error_handler(errors.append)
    with pytest.raises(yomo.ConnectError) as info:
        await src.connect()
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "1.5 s" in str(info.value)
    assert errors == [info.value]
    assert src.state is yomo.ClientState.CLOSED


def test_unreachable_zipper_sync(sync_clients):
    port = _free_udp_port()
    fn = sync_clients.sfn(f"127.0.0.1:{port}", "fn", [IN], reconnect=QUICK_GIVE_UP)
    fn.set_handler(lambda ctx: None)
    with pytest.raises(yomo.ConnectError) as info:
        fn.connect()
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "1.5 s" in str(info.value)
    assert fn.state is yomo.ClientState.CLOSED


@pytest.mark.parametrize("addr", ["localhost:0", "localhost:70000", "::1", "h:x", "a:b:c"])
def test_bad_address(addr):
    for make in (yomo.Source, yomo.aio.Source):
        with pytest.raises(ValueError, match="yomo: zipper"):
            make("src", addr)


async def test_misuse_is_refused_aio(aio_zipper, aio_clients):
    z = await aio_zipper()
    src = aio_clients.source(z.addr)
    with pytest.raises(yomo.YomoError, match="connect"):
        await src.write(IN, b"too early")
    no_handler = aio_clients.sfn(z.addr, "none", [IN])
    with pytest.raises(yomo.YomoError, match="no handler"):
        await no_handler.connect()
    no_tags = aio_clients.sfn(z.addr, "no-tags")
    no_tags.set_handler(lambda ctx: None)
    with pytest.raises(yomo.YomoError, match="observes no tags"):
        await no_tags.connect()
    fn = aio_clients.sfn(z.addr, "fn", [IN])
    with pytest.raises(TypeError):
        fn.set_handler("not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fn.init(None)  # type: ignore[arg-type]
    fn.set_handler(lambda ctx: None)
    with pytest.raises(yomo.YomoError, match="already set"):
        fn.set_pipe_handler(lambda frames: frames)
    with pytest.raises(ValueError, match="cron"):
        fn.set_cron_handler("@every never", lambda ctx: None)
    with pytest.raises(ValueError):
        yomo.aio.StreamFunction("fn", z.addr, concurrency=0)
    assert z.connections() == []


def test_misuse_is_refused_sync(sync_zipper, sync_clients):
    z = sync_zipper()
    src = sync_clients.source(z.addr)
    with pytest.raises(yomo.YomoError, match="connect"):
        src.write(IN, b"too early")
    no_handler = sync_clients.sfn(z.addr, "none", [IN])
    with pytest.raises(yomo.YomoError, match="no handler"):
        no_handler.connect()
    no_tags = sync_clients.sfn(z.addr, "no-tags")
    no_tags.set_handler(lambda ctx: None)
    with pytest.raises(yomo.YomoError, match="observes no tags"):
        no_tags.connect()
    fn = sync_clients.sfn(z.addr, "fn", [IN])
    with pytest.raises(TypeError):
        fn.set_handler("not callable")
    with pytest.raises(TypeError):
        fn.init(None)
    fn.set_handler(lambda ctx: None)
    with pytest.raises(yomo.YomoError, match="already set"):
        fn.set_pipe_handler(lambda frames: frames)
    with pytest.raises(ValueError, match="cron"):
        fn.set_cron_handler("@every never", lambda ctx: None)
    with pytest.raises(ValueError):
        yomo.StreamFunction("fn", z.addr, concurrency=0, tls=PLAIN_TLS)
    assert z.connections() == []


def test_blocking_write_on_the_loop_is_refused(sync_zipper, sync_clients):
    """A plain Context's blocking write from an async handler would deadlock the loop."""
    z = sync_zipper()
    errors: list[BaseException] = []
    src = sync_clients.source(z.addr)
    src.connect()

    async def wrong(ctx: yomo.AsyncContext) -> None:
        src.write(IN + 1, b"from the loop")  # blocking call on yomo's loop thread

    fn = sync_clients.sfn(z.addr, "fn", [IN])
    fn.set_handler(wrong)
    fn.set_error_handler(errors.append)
    fn.connect()
    src.write(IN, b"x")
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(errors) == 1
    assert isinstance(errors[0], yomo.HandlerError)
    assert isinstance(errors[0].error, RuntimeError)
    assert "event loop thread" in str(errors[0])
