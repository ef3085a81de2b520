"""Mesh interop: a Python zipper and a Go YoMo zipper (v1.22.3) as mesh peers of each other.

Each dials the other as an UpstreamZipper; a Go source on the Go zipper reaches a
Python stream function on the Python zipper and a Python source reaches a Go sink,
each frame exactly once (neither side forwards what came from the other back).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from goharness import GoPeers, GoZippers, expected_payload

from yomo.aio import AsyncContext, Source, StreamFunction, Zipper
from yomo.client.core import ReconnectPolicy
from yomo.transport import TlsConfig
from yomo.zipper.config import MeshPeer

__all__: list[str] = []

TAG = 0x33
N = 10


def _two_ports() -> tuple[int, int]:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
    ):
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        return a.getsockname()[1], b.getsockname()[1]


async def _eventually(condition: Any, what: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_python_and_go_zippers_mesh_both_ways(go_zipper: GoZippers, go_peer: GoPeers) -> None:
    py_port, go_port = _two_ports()
    mesh = {
        "zipper-py": {"host": "127.0.0.1", "port": py_port},
        "zipper-go": {"host": "127.0.0.1", "port": go_port},
    }
    py = Zipper(
        "zipper-py",
        "127.0.0.1",
        py_port,
        tls=TlsConfig(),
        stats_interval=0,
        mesh=[MeshPeer(name=n, host=m["host"], port=m["port"]) for n, m in mesh.items()],
        mesh_options={"reconnect": ReconnectPolicy(initial_delay=0.2, max_delay=1.0)},
    )
    async with py:
        await _mesh_both_ways(py, go_zipper, go_peer, go_port, mesh)


async def _mesh_both_ways(
    py: Zipper, go_zipper: GoZippers, go_peer: GoPeers, go_port: int, mesh: dict[str, Any]
) -> None:
    go = await asyncio.to_thread(go_zipper, "zipper-go", port=go_port, mesh=mesh)
    await _eventually(
        lambda: py.stats()["mesh"]["zipper-go"]["state"] == "up", "python -> go link up", 20.0
    )
    await _eventually(
        lambda: any(
            i.client_type == "UpstreamZipper" and i.name == "zipper-go" for i in py.connections()
        ),
        "go -> python link up",
        20.0,
    )

    got: list[bytes] = []

    async def handler(ctx: AsyncContext) -> None:
        got.append(ctx.data)

    sfn = StreamFunction("py-sfn", py.addr, observe_data_tags=[TAG], tls=TlsConfig())
    sfn.set_handler(handler)
    await sfn.connect()
    sink = await asyncio.to_thread(go_peer.sink, go, observe=[TAG])
    try:
        # Go source on the Go zipper -> Python function on the Python zipper.
        await asyncio.to_thread(go_peer.source, go, n=N, sizes=(16,), tags=(TAG,))
        go_frames = [expected_payload(i, 16) for i in range(N)]
        await _eventually(lambda: len(got) >= N, f"{N} frames from Go (have {len(got)})", 20.0)
        # Python source on the Python zipper -> Go sink on the Go zipper.
        py_frames = [expected_payload(100 + i, 16) for i in range(N)]
        async with Source("py-source", py.addr, tls=TlsConfig()) as source:
            for payload in py_frames:
                await source.write(TAG, payload)
        await _eventually(
            lambda: len(got) >= 2 * N and len(sink.frames()) >= 2 * N,
            "every frame on both sides",
            20.0,
        )
        await asyncio.sleep(0.5)  # anything looped back would show up as a duplicate
        assert sorted(got) == sorted(go_frames + py_frames)
        seqs = sorted(f["seq"] for f in sink.frames())
        assert seqs == list(range(N)) + list(range(100, 100 + N))
        link = py.stats()["mesh"]["zipper-go"]
        assert link["forwarded"] == N
        assert link["dropped"] == 0
    finally:
        await sfn.close()
