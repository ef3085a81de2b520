"""Go v1.22.3 clients against our zipper's handshake hooks: a version negotiator that
answers ConnectTo sends a Go source or stream function to another zipper (ours or Go's),
and one that rejects gives the Go client our reason, as Go's own zipper would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from goharness import GoPeers, GoZippers, expected_payload, sha256hex
from pypeers import py_sfn, run_py_source

import yomo
from yomo.aio import Zipper

N = 50


def _redirect_to(endpoint: str) -> Callable[[str, str], None]:
    def negotiate(client_version: str, zipper_version: str) -> None:
        raise yomo.ConnectToError(endpoint)

    return negotiate


async def test_a_go_source_follows_connect_to_to_our_other_zipper(
    py_zipper: Callable[..., Awaitable[Zipper]], go_peer: GoPeers
) -> None:
    target = await py_zipper("zipper-b")
    front = await py_zipper("zipper-a", version_negotiator=_redirect_to(target.addr))
    sink = py_sfn(target, name="py-sink", observe=(0x33,), out_tag=None)
    await sink.sfn.connect()
    go = await asyncio.to_thread(go_peer.source, front, n=N, sizes=(32,), linger="1s")
    await sink.wait_count({0x33: N}, 30)
    assert [f.sha256 for f in sink.frames] == [sha256hex(expected_payload(i, 32)) for i in range(N)]
    assert await asyncio.to_thread(go.wait_exit, 30) == 0, go.tail()
    assert front.stats()["rejections_by_reason"]["redirect"] == 1
    assert not front.connections()
    await sink.close()


async def test_a_go_function_follows_connect_to_to_a_go_zipper(
    py_zipper: Callable[..., Awaitable[Zipper]], go_zipper: GoZippers, go_peer: GoPeers
) -> None:
    target = await asyncio.to_thread(go_zipper, name="zipper-go")
    front = await py_zipper("zipper-a", version_negotiator=_redirect_to(target.addr))
    fn = await asyncio.to_thread(
        go_peer.sfn, front, observe=(0x33,), out_tag=0x34, transform="upper", mode="ordered"
    )
    sink = py_sfn(target, name="py-sink", observe=(0x34,), out_tag=None)
    await sink.sfn.connect()
    await run_py_source(target, n=N, sizes=(24,), tags=(0x33,))
    await sink.wait_count({0x34: N}, 30)
    assert len(sink.frames) == N
    assert fn.returncode is None  # serving on the Go zipper
    await sink.close()


async def test_a_go_client_rejected_by_our_negotiator_gets_our_reason(
    py_zipper: Callable[..., Awaitable[Zipper]], go_peer: GoPeers
) -> None:
    def negotiate(client_version: str, zipper_version: str) -> None:
        raise yomo.RejectedError(f"upgrade first: you run {client_version}")

    front = await py_zipper("zipper-a", version_negotiator=negotiate)
    go = await asyncio.to_thread(go_peer.start, "source", front, n=1)
    event = await asyncio.to_thread(go.wait_event, "connect_error", 30)
    assert event["error"] == f"upgrade first: you run {yomo.SPEC_VERSION}"
    assert front.stats()["rejections_by_reason"]["version"] == 1
