"""Source x zipper x stream function, each in Go or Python: frames arrive complete, in order, tagged right."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from goharness import GoPeers, GoProcess, GoZippers, expected_payload, sha256hex
from pypeers import PySink, expected_sizes, py_sfn, run_py_source

from yomo.aio import Zipper

__all__: list[str] = []

SIZES = (0, 1, 1024, 1048576)
#: Three tags against four sizes: every size travels under every tag.
TAGS = (0x33, 0x35, 0x37)
#: How many frames each combination writes. 1,000 frames cycling SIZES move 250 MiB:
#: they run where every QUIC leg is fast. A Go client on our zipper is served by
#: aioquic (qh3 cannot serve quic-go's empty connection ids, see docs/interop.md),
#: about 4-5 MB/s here, so those combinations write 100 frames (25 MiB). The all-Go
#: combination writes 200: test_go_reference already sends it 1,000.
FULL, SHORT, SLOW = 1000, 200, 100
COUNT = {
    ("py", "py", "py"): FULL,
    ("py", "go", "py"): FULL,
    ("go", "go", "py"): FULL,
    ("go", "go", "go"): SHORT,
    ("py", "go", "go"): SHORT,
    ("go", "py", "py"): SLOW,
    ("py", "py", "go"): SLOW,
    ("go", "py", "go"): SLOW,
}

COMBOS = list(itertools.product(("go", "py"), repeat=3))


@functools.cache
def _expected(n: int) -> tuple[list[int], list[int], list[str]]:
    sizes = expected_sizes(n, SIZES)
    shas = [sha256hex(expected_payload(i, sizes[i])) for i in range(n)]
    return [TAGS[i % len(TAGS)] for i in range(n)], sizes, shas


def _records(receiver: GoProcess | PySink) -> list[dict[str, Any]]:
    if isinstance(receiver, PySink):
        return [
            {"tag": f.tag, "len": f.len, "sha256": f.sha256, "tid": f.tid, "source_id": f.source_id}
            for f in receiver.frames
        ]
    return receiver.frames()


@pytest.mark.parametrize(
    ("source_lang", "zipper_lang", "sfn_lang"),
    COMBOS,
    ids=[f"source-{s}/zipper-{z}/sfn-{f}" for s, z, f in COMBOS],
)
async def test_frames_arrive_complete_in_order_with_their_tags(
    source_lang: str,
    zipper_lang: str,
    sfn_lang: str,
    py_zipper: Callable[..., Awaitable[Zipper]],
    go_zipper: GoZippers,
    go_peer: GoPeers,
) -> None:
    n = COUNT[(source_lang, zipper_lang, sfn_lang)]
    zipper: Any = await py_zipper() if zipper_lang == "py" else go_zipper()

    # Nothing is buffered for absent observers: the receiver connects first.
    receiver: GoProcess | PySink
    if sfn_lang == "go":
        # A blocking wait would stall our zipper in this same loop: wait on a thread.
        receiver = await asyncio.to_thread(go_peer.sink, zipper, observe=TAGS, name="go-fn")
    else:
        receiver = py_sfn(zipper, name="py-fn", observe=TAGS, out_tag=None)
        await receiver.sfn.connect()

    source_id: str | None = None
    if source_lang == "go":
        source = go_peer.source(zipper, n=n, sizes=SIZES, tags=TAGS, name="go-source")
        assert await source.async_wait_exit(90) == 0, source.tail()
        summary = source.snapshot("summary")[0]
        assert summary["written"] == n and summary["failed"] == 0
    else:
        source_id = await run_py_source(zipper, n=n, sizes=SIZES, tags=TAGS)

    if isinstance(receiver, PySink):
        await receiver.wait_total(n, 60)
    else:
        await receiver.async_wait_for(lambda p: len(p.frames()) >= n, 60, f"{n} frames")
        await asyncio.sleep(0.5)  # duplicates would show up now
    got = _records(receiver)
    if isinstance(receiver, PySink):
        await receiver.close()

    tags, sizes, shas = _expected(n)
    assert len(got) == n
    assert [f["tag"] for f in got] == tags
    assert [f["len"] for f in got] == sizes
    assert [f["sha256"] for f in got] == shas, "payloads complete and in write order"
    tids = [f["tid"] for f in got]
    assert all(isinstance(t, str) and len(t) == 21 for t in tids), tids[:3]
    assert len(set(tids)) == n, "one tid per write"
    source_ids = {f["source_id"] for f in got}
    assert len(source_ids) == 1 and None not in source_ids and "" not in source_ids
    if source_id is not None:
        assert source_ids == {source_id}
