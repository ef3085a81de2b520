"""``yomo.transport._common.within``: a dial's bound, without waiting out the library's cleanup.

qh3's and aioquic's ``connect`` wait out the closing period of a connection that
was cancelled mid-handshake; ``asyncio.wait_for`` waited for that too, so a
client's quick redial to a restarting zipper (0.5 s per attempt) took ~2 s per
attempt. These check the order of events, never a duration.
"""

from __future__ import annotations

import asyncio

import pytest

from yomo.transport._common import within


def _slow_cleanup(release: asyncio.Event, cleaned: list[str]) -> asyncio.Task[str]:
    async def connect() -> str:
        try:
            await asyncio.Event().wait()  # the handshake never completes
        finally:
            await release.wait()  # the library's closing period
            cleaned.append("done")
        return "unreachable"

    return asyncio.ensure_future(connect())


async def test_timeout_does_not_wait_for_the_cancelled_tasks_cleanup() -> None:
    release, cleaned = asyncio.Event(), []
    task = _slow_cleanup(release, cleaned)
    with pytest.raises(asyncio.TimeoutError):
        await within(task, 0.05)
    assert not task.done() and cleaned == []  # still cleaning up, in the background
    release.set()
    await asyncio.wait({task}, timeout=5.0)
    assert task.cancelled() and cleaned == ["done"]


async def test_cancelled_waiter_leaves_the_cleanup_running() -> None:
    release, cleaned = asyncio.Event(), []
    task = _slow_cleanup(release, cleaned)
    waiter = asyncio.ensure_future(within(task, 60.0))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not task.done()
    release.set()
    await asyncio.wait({task}, timeout=5.0)
    assert task.cancelled() and cleaned == ["done"]


async def test_an_answering_peer_gets_the_grace() -> None:
    done = asyncio.Event()

    async def connect() -> str:
        await done.wait()
        return "connected"

    task = asyncio.ensure_future(connect())
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, done.set)  # after the short bound, well within the grace
    assert await within(task, 0.01, answered=lambda: True, grace=30.0) == "connected"


async def test_a_silent_peer_gets_no_grace() -> None:
    task = asyncio.ensure_future(asyncio.Event().wait())
    with pytest.raises(asyncio.TimeoutError):
        await within(task, 0.01, answered=lambda: False, grace=30.0)
    await asyncio.wait({task}, timeout=5.0)
    assert task.cancelled()


async def test_result_and_errors_pass_through() -> None:
    async def ok() -> int:
        return 7

    async def broken() -> int:
        raise ConnectionRefusedError("no")

    assert await within(asyncio.ensure_future(ok()), 5.0) == 7
    with pytest.raises(ConnectionRefusedError):
        await within(asyncio.ensure_future(broken()), 5.0)
