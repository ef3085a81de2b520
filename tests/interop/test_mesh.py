"""A Go zipper and ours in one mesh: data crosses both ways, once, and never comes back."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from goharness import GoPeers, GoZippers, free_udp_port
from pypeers import py_sfn, run_py_source

from yomo.aio import ReconnectPolicy, Zipper
from yomo.zipper.config import MeshPeer

__all__: list[str] = []

TAG = 0x33
N = 20


async def test_go_and_python_zippers_in_one_mesh(
    py_zipper: Callable[..., Awaitable[Zipper]], go_zipper: GoZippers, go_peer: GoPeers
) -> None:
    py_port = free_udp_port()
    go = go_zipper(
        "zipper-go", mesh={"zipper-py": {"host": "127.0.0.1", "port": py_port, "credential": ""}}
    )
    ours = await py_zipper(
        "zipper-py",
        port=py_port,
        mesh=[MeshPeer(name="zipper-go", host="127.0.0.1", port=go.port)],
        mesh_options={"reconnect": ReconnectPolicy(initial_delay=0.2, max_delay=1.0)},
    )
    # Both links up: ours to Go (a Source-like UpstreamZipper client), Go's to ours.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while loop.time() < deadline and not (
        ours.stats()["mesh"]["zipper-go"]["state"] == "up"
        and any(c.client_type == "UpstreamZipper" for c in ours.connections())
    ):
        await asyncio.sleep(0.05)
    assert ours.stats()["mesh"]["zipper-go"]["state"] == "up", ours.stats()["mesh"]
    upstream = [c for c in ours.connections() if c.client_type == "UpstreamZipper"]
    assert [c.name for c in upstream] == ["zipper-go"]

    go_sink = await asyncio.to_thread(go_peer.sink, go, observe=(TAG,), name="go-sink")
    py_sink = py_sfn(ours, name="py-sink", observe=(TAG,), out_tag=None)
    await py_sink.sfn.connect()

    go_source = go_peer.source(go, n=N, sizes=(16,), name="go-source")
    py_source_id = await run_py_source(ours, n=N, sizes=(16,), linger=0.2)
    assert await go_source.async_wait_exit(15) == 0, go_source.tail()
    await py_sink.wait_count({TAG: 2 * N}, 20)
    await go_sink.async_wait_for(lambda p: len(p.frames()) >= 2 * N, 20, f"{2 * N} frames")
    await asyncio.sleep(1.0)  # a looping frame would come round now

    go_seen = Counter(f["source_id"] for f in go_sink.frames())
    py_seen = Counter(f.source_id for f in py_sink.frames)
    assert go_seen == py_seen, (go_seen, py_seen)
    assert sorted(go_seen.values()) == [N, N], go_seen
    assert go_seen[py_source_id] == N
    for sink_tids in ([f["tid"] for f in go_sink.frames()], [f.tid for f in py_sink.frames]):
        assert len(set(sink_tids)) == 2 * N, "every frame exactly once"
    link = ours.stats()["mesh"]["zipper-go"]
    assert link["forwarded"] == N and link["dropped"] == 0, link
    await py_sink.close()
