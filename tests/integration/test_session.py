"""Issue 17: a zipper that dies is noticed fast and unacknowledged frames are written again;
a function that dies stops holding its producers; a merely slow peer is never taken for dead.

The zipper that is killed runs in its own process (``yomo serve``), SIGKILLed and started
again on the same port; clients run here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import yomo
import yomo.aio
from support.writers import PacedWriter
from yomo.transport import DEFAULT_ZIPPER_SETTINGS, QuicSettings, TlsConfig
from yomo.transport.native import available as native_available

from .cli_process import YomoProcess, free_udp_port, write_config
from .clients_helpers import wait_until_async


@pytest.fixture(autouse=True, params=["qh3", "native"])
def _data_path(request, monkeypatch):
    """Both data paths, zipper and clients (YOMO_QUIC_BACKEND); the whole picture, with
    numbers, is in docs/reliability.md."""
    if request.param == "native" and not native_available():
        pytest.skip("yomo._native is not built (no Rust toolchain at install)")
    monkeypatch.setenv("YOMO_QUIC_BACKEND", request.param)


TAG = 0x41


def _serve(tmp: Path, port: int) -> YomoProcess:
    p = YomoProcess(
        ["serve", "-c", str(write_config(tmp / "z.yaml", port))],
        tmp,
        {"YOMO_QUIC_BACKEND": os.environ.get("YOMO_QUIC_BACKEND", "")},
    )
    p.wait_line("listening on", timeout=20.0)
    return p


async def test_killed_zipper_is_detected_and_unacknowledged_frames_are_written_again(tmp_path):
    port = free_udp_port()
    addr = f"127.0.0.1:{port}"
    zipper = _serve(tmp_path, port)
    got: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    fn = yomo.aio.StreamFunction("fn", addr, observe_data_tags=[TAG], tls=TlsConfig())

    async def handler(ctx: yomo.AsyncContext) -> None:
        got.append((fn.connection_id, int(ctx.data)))

    fn.set_handler(handler)
    src = yomo.aio.Source("src", addr, tls=TlsConfig(), write_timeout=20.0)
    src.set_error_handler(errors.append)
    try:
        await fn.connect()
        await src.connect()
        write = PacedWriter(src, TAG).write
        await write(100)
        await wait_until_async(lambda: len(got) == 100, "the first 100 frames")
        fn_first = fn.connection_id
        zipper.signal(signal.SIGKILL)
        zipper.proc.wait(10)
        await write(200, pause=0)  # into a dead zipper: never acknowledged
        await wait_until_async(
            lambda: any("not answering" in str(e) for e in errors), "the source to notice", 10.0
        )
        zipper = _serve(tmp_path, port)
        await wait_until_async(
            lambda: (
                fn.state is yomo.ClientState.CONNECTED
                and fn.connection_id != fn_first  # not still on the old one, unaware
                and src.state is yomo.ClientState.CONNECTED
            ),
            "both back",
            30.0,
        )
        await write(100)
        await wait_until_async(lambda: set(range(300, 400)) <= {s for _, s in got}, "new", 30.0)
    except BaseException:
        print("ZIPPER OUTPUT", zipper.output[-3000:])
        raise
    finally:
        await src.close()
        await fn.close()
        zipper.stop()
    assert any("not answering" in str(e) for e in errors)
    resent = sum(getattr(e, "resent", 0) for e in errors)
    assert resent >= 150, errors  # the frames written into the dead zipper, written again
    # (a re-sent frame reaches the function only if it re-registered first: the zipper
    # has nobody to route it to otherwise and counts it as unobserved)
    by_conn: dict[str, list[int]] = {}
    for conn, s in got:
        by_conn.setdefault(conn, []).append(s)
    for conn, ss in by_conn.items():
        assert len(ss) == len(set(ss)), f"duplicates on {conn}"
        assert ss == sorted(ss), f"order on {conn}"


SMALL = replace(
    DEFAULT_ZIPPER_SETTINGS,
    send_high_water=64 * 1024,
    recv_high_water=128 * 1024,
    max_data=128 * 1024,
    max_stream_data=128 * 1024,
)


async def test_a_dead_function_no_longer_holds_its_producer(aio_zipper, tmp_path):
    z = await aio_zipper(quic=SMALL)
    script = tmp_path / "fn.py"
    script.write_text(
        "import sys, yomo\n"
        "fn = yomo.StreamFunction('doomed', sys.argv[1], observe_data_tags=[0x41])\n"
        "fn.set_handler(lambda ctx: None)\n"
        "fn.connect()\n"
        "print('ready', flush=True)\n"
        "fn.wait()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script), z.addr], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ready = await asyncio.to_thread(proc.stdout.readline)  # the zipper runs on this loop
        assert ready.strip() == "ready"
        await wait_until_async(lambda: any(c.name == "doomed" for c in z.connections()), "fn")
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
    src = yomo.aio.Source("src", z.addr, tls=TlsConfig(), write_timeout=30.0)
    await src.connect()
    try:
        for i in range(4000):  # 4 MB: far past what the dead function's windows hold
            await src.write(TAG, b"%04d" % i + b"." * 1020)
    finally:
        await src.close()
    stats = z.stats()
    assert stats["dead_connections"] == 1
    assert stats["tags"][TAG]["unobserved"] > 0  # routed to nobody once it was closed
    assert all(c.name != "doomed" for c in z.connections())


async def test_a_slow_function_holding_its_producer_is_not_taken_for_dead(aio_zipper):
    z = await aio_zipper(quic=SMALL)
    gate = asyncio.Event()
    fn = yomo.aio.StreamFunction(
        "slow",
        z.addr,
        observe_data_tags=[TAG],
        tls=TlsConfig(),
        quic=QuicSettings(
            recv_high_water=64 * 1024, max_data=128 * 1024, max_stream_data=128 * 1024
        ),
    )
    handled = 0

    async def handler(ctx: yomo.AsyncContext) -> None:
        nonlocal handled
        handled += 1
        await gate.wait()

    fn.set_handler(handler)
    await fn.connect()
    errors: list[BaseException] = []
    src = yomo.aio.Source("src", z.addr, tls=TlsConfig(), write_timeout=30.0)
    src.set_error_handler(errors.append)
    await src.connect()
    first = src._core.connection_id
    writing = asyncio.ensure_future(_write_many(src, 4000))
    try:
        await asyncio.sleep(3.0)  # the producer is held far longer than dead_after
        assert not writing.done()
        assert z.stats()["dead_connections"] == 0
        gate.set()
        await asyncio.wait_for(writing, 30.0)
        await wait_until_async(lambda: handled == 4000, "every frame handled", 30.0)
    finally:
        gate.set()
        writing.cancel()
        await src.close()
        await fn.close()
    assert src._core.connection_id == first and not errors, errors


async def _write_many(src: yomo.aio.Source, n: int) -> None:
    for i in range(n):
        await src.write(TAG, b"%04d" % i + b"." * 1020)


async def test_a_restarted_native_zipper_resets_its_old_connections(tmp_path):
    """The native zipper keeps its stateless-reset key across a restart (``reset_key.py``):
    the first packet an old client sends to the new process gets a reset, so the client
    redials at once, without the dead-zipper watchdog (off here) or the idle timeout."""
    if os.environ["YOMO_QUIC_BACKEND"] != "native":
        pytest.skip("stateless resets come from quinn (the native path); qh3 sends none")
    port = free_udp_port()
    addr = f"127.0.0.1:{port}"
    zipper = _serve(tmp_path, port)
    errors: list[BaseException] = []
    src = yomo.aio.Source(
        "src", addr, tls=TlsConfig(), reconnect=yomo.ReconnectPolicy(dead_after=0)
    )
    src.set_error_handler(errors.append)
    try:
        await src.connect()
        await src.write(TAG, b"before")
        zipper.signal(signal.SIGKILL)
        zipper.proc.wait(10)
        zipper = _serve(tmp_path, port)
        await src.write(TAG, b"into the old connection")  # answered by a reset
        await wait_until_async(
            lambda: any("reset" in str(e) for e in errors), "the reset", 4.0
        )  # well within the 5 s idle timeout that would end it otherwise
        await wait_until_async(lambda: src.state is yomo.ClientState.CONNECTED, "back", 10.0)
    except BaseException:
        print("ZIPPER OUTPUT", zipper.output[-3000:], errors)
        raise
    finally:
        await src.close()
        zipper.stop()
