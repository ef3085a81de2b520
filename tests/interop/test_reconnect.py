"""Reconnect across languages: a zipper dies and comes back on the same port; functions return.

A killed zipper sends nothing: clients notice through the idle timeout, which
QUIC negotiates down to the zipper's 5 s (Go's and ours), then redial.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml
from goharness import GoPeers, GoProcess, GoZippers, free_udp_port
from pypeers import py_sfn, run_py_source

from yomo.aio import Zipper

__all__: list[str] = []

TAG = 0x33


def _logged(p: GoProcess, msg: str, name: str) -> bool:
    return any(r.get("msg") == msg and r.get("conn_name") == name for r in p.logs)


async def test_python_function_comes_back_after_the_go_zipper_is_killed(
    go_zipper: GoZippers, go_peer: GoPeers
) -> None:
    z1 = go_zipper()
    sink = py_sfn(z1, name="py-fn", observe=(TAG,), out_tag=None)
    await sink.sfn.connect()
    first = sink.sfn.connection_id
    before = go_peer.source(z1, n=5, sizes=(16,))
    assert await before.async_wait_exit(15) == 0, before.tail()
    await sink.wait_count({TAG: 5}, 10)

    z1.kill()
    z2 = await asyncio.to_thread(go_zipper, port=z1.port)
    await z2.async_wait_for(lambda p: _logged(p, "new client connected", "py-fn"), 30, "py-fn back")
    assert sink.sfn.connection_id != first
    assert sink.sfn.connection_id.startswith(sink.sfn.client_id + "-")

    after = go_peer.source(z2, n=5, sizes=(16,))
    assert await after.async_wait_exit(15) == 0, after.tail()
    await sink.wait_count({TAG: 10}, 10)
    assert len(sink.frames) == 10
    assert len({f.tid for f in sink.frames}) == 10
    await sink.close()


def _start_our_zipper(go_peer: GoPeers, tmp: Path, port: int) -> GoProcess:
    """`python -m yomo serve` in its own process, so the test can SIGKILL it."""
    config = tmp / f"zipper-{port}-{len(go_peer.started)}.yaml"
    config.write_text(yaml.safe_dump({"name": "zipper-py", "host": "127.0.0.1", "port": port}))
    p = GoProcess("py-zipper", [sys.executable, "-m", "yomo", "serve", "-c", str(config)])
    go_peer.started.append(p)  # stopped with the Go peers at teardown
    p.wait_for(lambda q: any("listening on" in line for line in q.stderr), 20, "listening")
    return p


async def test_go_function_comes_back_after_our_zipper_is_killed(
    tmp_path: Path, go_peer: GoPeers
) -> None:
    port = free_udp_port()
    addr = f"127.0.0.1:{port}"
    z1 = await asyncio.to_thread(_start_our_zipper, go_peer, tmp_path, port)
    sink = await asyncio.to_thread(go_peer.sink, addr, observe=(TAG,), name="go-fn")
    await run_py_source(addr, n=5, sizes=(16,), linger=0.2)
    await sink.async_wait_for(lambda p: len(p.frames()) >= 5, 10, "5 frames")

    z1.kill()
    z2 = await asyncio.to_thread(_start_our_zipper, go_peer, tmp_path, port)
    await z2.async_wait_for(
        lambda p: any("connected: StreamFunction 'go-fn'" in line for line in p.stderr),
        30,
        "go-fn back",
    )
    await run_py_source(addr, n=5, sizes=(16,), linger=0.2)
    await sink.async_wait_for(lambda p: len(p.frames()) >= 10, 10, "10 frames")
    assert len({f["tid"] for f in sink.frames()}) == 10
    assert sink.returncode is None
    # Stop the Go function while its zipper is up: once a zipper has closed its
    # connection, Go's Client.Close never returns and teardown would wait for SIGKILL.
    assert await asyncio.to_thread(sink.stop) == 0


async def test_after_a_clean_zipper_shutdown_python_returns_go_does_not(
    py_zipper: Callable[..., Awaitable[Zipper]], go_peer: GoPeers
) -> None:
    """Go v1.22.3 clients treat the zipper closing their connection (code 0x13) as final.

    Our clients redial after any close that is not a rejection or a goaway, so
    they come back when the zipper restarts; Go's stay disconnected.
    """
    z1 = await py_zipper()
    port = z1.address[1]
    go_fn = await asyncio.to_thread(go_peer.sink, z1, observe=(TAG,), name="go-fn")
    py_fn = py_sfn(z1, name="py-fn", observe=(TAG,), out_tag=None)
    await py_fn.sfn.connect()

    await z1.stop()
    await go_fn.async_wait_event("error", 10)
    z2 = await py_zipper(port=port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while not any(c.name == "py-fn" for c in z2.connections()) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.5)  # Go would have redialled within a second or two
    names = sorted(c.name for c in z2.connections())
    assert names == ["py-fn"], names
    errors = [e["error"] for e in go_fn.snapshot("error")]
    assert errors == ["remote conn closed: zipper is shutting down"], errors
    await py_fn.close()
    go_fn.kill()  # its Client.Close would never return now (see above)
