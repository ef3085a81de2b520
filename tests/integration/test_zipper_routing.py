"""Routing on a real zipper: by tag, by target, own writes, metadata, stats, registration.

Negative checks ("X did not get frame F") use a fence: frames from one source reach
each function in order, so once a function has the fence frame sent after F, it has
everything it will ever get from before the fence.
"""

from __future__ import annotations

import asyncio
import os

from yomo.wire import DataFrame, decode_metadata
from yomo.wire import metadata as mk

from .helpers import Inbox, eventually, frame_bytes, md_of

FENCE = 0x99


async def _fence(src, *inboxes: Inbox) -> None:
    await src.send(frame_bytes(FENCE, b"fence"))
    for inbox in inboxes:
        await inbox.wait_count(1, FENCE)


async def test_routing_by_tag_to_several_functions(zipper, clients):
    z = await zipper()
    _, a = await clients.sfn(z, "sfn-a", [1, 2, FENCE])
    _, b = await clients.sfn(z, "sfn-b", [2, FENCE])
    _, c = await clients.sfn(z, "sfn-c", [3, FENCE])
    src = await clients.source(z)
    for tag, payload in [(1, b"one"), (2, b"two"), (3, b"three"), (4, b"four"), (2, b"two-2")]:
        await src.send(frame_bytes(tag, payload))
    await _fence(src, a, b, c)
    assert [(f.tag, f.payload) for f in a.frames] == [
        (1, b"one"),
        (2, b"two"),
        (2, b"two-2"),
        (FENCE, b"fence"),
    ]
    assert [(f.tag, f.payload) for f in b.frames] == [
        (2, b"two"),
        (2, b"two-2"),
        (FENCE, b"fence"),
    ]
    assert [(f.tag, f.payload) for f in c.frames] == [(3, b"three"), (FENCE, b"fence")]


async def test_target_routing(zipper, clients):
    z = await zipper()
    _, ta = await clients.sfn(z, "sfn-ta", [5, FENCE], wanted_target="alice")
    _, tb = await clients.sfn(z, "sfn-tb", [5, FENCE], wanted_target="bob")
    _, plain = await clients.sfn(z, "sfn-plain", [5, FENCE])
    src = await clients.source(z)
    await src.send(frame_bytes(5, b"for-alice", {mk.TARGET: "alice"}))
    await src.send(frame_bytes(5, b"for-bob", {mk.TARGET: "bob"}))
    await src.send(frame_bytes(5, b"for-nobody", {mk.TARGET: "carol"}))
    await src.send(frame_bytes(5, b"for-all"))
    await _fence(src, ta, tb, plain)
    assert ta.payloads(5) == [b"for-alice", b"for-all"]
    assert tb.payloads(5) == [b"for-bob", b"for-all"]
    assert plain.payloads(5) == [b"for-all"]
    assert md_of(ta.frames[0])[mk.TARGET] == "alice"
    # a targeted frame nobody wants is unobserved
    assert z.stats()["tags"][5]["unobserved"] == 1


async def test_function_receives_its_own_writes(zipper, clients):
    z = await zipper()
    holder: dict[str, object] = {}

    async def echo(frame: DataFrame) -> None:
        if frame.tag == 6:  # write once, to a tag this same function observes
            await holder["core"].send(frame_bytes(7, b"own:" + frame.payload))  # type: ignore[attr-defined]

    inbox = Inbox(handler=echo)
    core, _ = await clients.sfn(z, "sfn-self", [6, 7], inbox=inbox)
    holder["core"] = core
    src = await clients.source(z)
    await src.send(frame_bytes(6, b"x"))
    await inbox.wait_count(1, 7)
    assert [(f.tag, f.payload) for f in inbox.frames] == [(6, b"x"), (7, b"own:x")]
    info = next(c for c in z.connections() if c.name == "sfn-self")
    assert (info.frames_in, info.frames_out) == (1, 2)


async def test_frames_never_go_to_sources(zipper, clients):
    z = await zipper()
    watcher = Inbox()
    # a source that (wrongly) announces observed tags still gets nothing
    await clients.source(z, "src-watch", tags=[1, FENCE], inbox=watcher)
    _, sfn = await clients.sfn(z, "sfn", [1, FENCE])
    src = await clients.source(z, "src-write")
    for i in range(5):
        await src.send(frame_bytes(1, b"%d" % i))
    await _fence(src, sfn)
    assert sfn.payloads(1) == [b"0", b"1", b"2", b"3", b"4"]
    assert watcher.frames == []
    info = next(c for c in z.connections() if c.name == "src-watch")
    assert info.frames_out == 0


async def test_unobserved_frames_are_counted_and_dropped(zipper, clients):
    z = await zipper()
    _, sfn = await clients.sfn(z, "sfn", [FENCE])
    src = await clients.source(z)
    for i in range(7):
        await src.send(frame_bytes(42, b"lost-%d" % i))
    await _fence(src, sfn)
    stats = z.stats()
    assert stats["unobserved"] == 7
    t = stats["tags"][42]
    assert (t["frames_in"], t["bytes_in"], t["frames_out"], t["unobserved"]) == (7, 7 * 6, 0, 7)
    assert stats["drops"] == 0  # unobserved is not a slow-consumer drop
    # nothing is buffered for a late observer
    _, late = await clients.sfn(z, "late", [42, FENCE])
    await _fence(src, late)
    assert late.count(42) == 0


async def test_metadata_arrives_intact(zipper, clients):
    z = await zipper()
    _, sfn = await clients.sfn(z, "sfn", [8])
    src = await clients.source(z, "src-md")
    sent = {
        mk.SOURCE_ID: src.client_id,
        mk.TID: "V1StGXR8_Z5jdHi6B-myT",
        mk.TRACE_ID: "4bf92f3577b34da6a3ce929d0e0e4736",
        mk.SPAN_ID: "00f067aa0ba902b7",
        mk.TRACED: "true",
        "x-custom": "välue ✓",
    }
    await src.send(frame_bytes(8, b"payload", sent))
    await sfn.wait_count(1)
    assert md_of(sfn.frames[0]) == sent
    assert sfn.frames[0].payload == b"payload"


async def test_zipper_merges_senders_wanted_target(zipper, clients):
    z = await zipper()
    holder: dict[str, object] = {}

    async def forward(frame: DataFrame) -> None:
        md = decode_metadata(frame.metadata)
        md[mk.WANTED_TARGET] = "forged"  # the connection's own value must win
        await holder["core"].send(frame_bytes(11, b"fwd:" + frame.payload, md))  # type: ignore[attr-defined]

    core, _ = await clients.sfn(
        z, "sfn-w", [10], wanted_target="w-target", inbox=Inbox(handler=forward)
    )
    holder["core"] = core
    _, sink = await clients.sfn(z, "sink", [10, 11])
    src = await clients.source(z)
    sent = {mk.SOURCE_ID: src.client_id, mk.TID: "tid-000000000000000001", "k": "v"}
    await src.send(frame_bytes(10, b"p", sent))
    await sink.wait_count(1, 11)
    first, second = sink.frames
    # from the source (no wanted target): untouched
    assert (first.tag, md_of(first)) == (10, sent)
    # from sfn-w: same transaction, plus its handshake's wanted target
    assert second.tag == 11 and second.payload == b"fwd:p"
    assert md_of(second) == {**sent, mk.WANTED_TARGET: "w-target"}


async def test_stats_frames_and_bytes_per_tag(zipper, clients):
    z = await zipper()
    _, a = await clients.sfn(z, "sfn-a", [20, 21])
    _, b = await clients.sfn(z, "sfn-b", [20])
    src = await clients.source(z, "src-stats")
    for i in range(10):
        await src.send(frame_bytes(20, b"x" * (100 + i)))
    for _ in range(3):
        await src.send(frame_bytes(21, b"y" * 1000))
    await a.wait_count(13)
    await b.wait_count(10)
    tags = z.stats()["tags"]
    size20 = sum(100 + i for i in range(10))
    assert tags[20] == {
        "frames_in": 10,
        "bytes_in": size20,
        "frames_out": 20,
        "bytes_out": 2 * size20,
        "unobserved": 0,
        "dropped": 0,
    }
    assert tags[21]["frames_in"] == 3 and tags[21]["bytes_in"] == 3000
    assert tags[21]["frames_out"] == 3 and tags[21]["bytes_out"] == 3000
    info = {c.name: c for c in z.connections()}
    assert info["src-stats"].frames_in == 13
    assert (info["sfn-a"].frames_out, info["sfn-b"].frames_out) == (13, 10)


async def test_same_client_id_both_registered(zipper, clients):
    """Registration is by server-assigned number: equal client ids never evict each other."""
    z = await zipper()
    old = clients.make(z, "sfn-dup", 0x5D, tags=[30], inbox=(old_inbox := Inbox()))
    new = clients.make(z, "sfn-dup", 0x5D, tags=[30], inbox=(new_inbox := Inbox()))
    new.client_id = old.client_id
    await old.connect()
    await new.connect()
    assert old.connection_id == new.connection_id
    infos = [c for c in z.connections() if c.name == "sfn-dup"]
    assert len(infos) == 2
    assert infos[0].client_id == infos[1].client_id
    assert infos[0].number != infos[1].number

    src = await clients.source(z)
    await src.send(frame_bytes(30, b"both"))
    await old_inbox.wait_count(1)
    await new_inbox.wait_count(1)

    # the older connection goes away late: the newer one keeps its routes
    await old.close()
    await eventually(lambda: len(z.connections()) == 2, "the old connection to go")
    assert {c.number for c in z.connections() if c.name == "sfn-dup"} == {
        max(i.number for i in infos)
    }
    for i in range(5):
        await src.send(frame_bytes(30, b"after-%d" % i))
    await new_inbox.wait_count(6)
    assert new_inbox.payloads() == [b"both"] + [b"after-%d" % i for i in range(5)]
    assert old_inbox.payloads() == [b"both"]
    assert z.stats()["tags"][30]["unobserved"] == 0


async def test_payload_sizes_arrive_intact(zipper, clients):
    z = await zipper()
    _, sfn = await clients.sfn(z, "sfn", [12])
    src = await clients.source(z)
    # around the Y3 length encodings (1, 2 and 3 bytes) and across many datagrams
    sizes = [0, 1, 63, 64, 8191, 8192, 65536, 1024 * 1024, 4 * 1024 * 1024 + 3]
    payloads = [os.urandom(size) for size in sizes]
    for p in payloads:
        await src.send(frame_bytes(12, p, {mk.TID: f"t{len(p)}"}))
    await sfn.wait_count(len(sizes), timeout=10.0)
    assert [len(f.payload) for f in sfn.frames] == sizes
    assert sfn.payloads() == payloads
    assert [md_of(f)[mk.TID] for f in sfn.frames] == [f"t{s}" for s in sizes]


async def test_many_sources_keep_per_source_order(zipper, clients):
    z = await zipper()
    _, sfn = await clients.sfn(z, "sfn", [13])
    sources = [await clients.source(z, f"src-{i}") for i in range(4)]
    per_source = 300

    async def run(k: int) -> None:
        for n in range(per_source):
            await sources[k].send(frame_bytes(13, b"%d:%d" % (k, n)))

    await asyncio.gather(*(run(k) for k in range(len(sources))))
    await sfn.wait_count(per_source * len(sources), timeout=10.0)
    seen: dict[int, list[int]] = {}
    for p in sfn.payloads():
        k, n = p.split(b":")
        seen.setdefault(int(k), []).append(int(n))
    assert seen == {k: list(range(per_source)) for k in range(len(sources))}
    assert z.stats()["tags"][13]["frames_out"] == per_source * len(sources)
