"""Zipper throughput and CPU per QUIC backend: qh3 vs aiopquic, same run, repeated.

The zipper runs in its own process; a source and a stream function run together
in another. The source writes ``--frames`` frames of ``--size`` bytes as fast as
writes are accepted; the function counts them. Reported per run: frames/s from
the first write to the last frame received, and the zipper's CPU seconds (user +
system, all threads, from ``resource.getrusage`` between "listening" and exit)
per 10,000 frames routed. CPU time is the sturdier number on a shared machine.

    python bench/quic_backends.py --backends qh3,aiopquic --repeats 3 --frames 100000

aiopquic needs Python 3.12+ and ``pip install -e '.[fast]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

__all__ = ["main"]

TAG = 0x10


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _zipper(backend: str) -> None:
    from yomo.transport import DEFAULT_ZIPPER_SETTINGS, TlsConfig
    from yomo.zipper.server import Zipper

    z = Zipper(
        name="bench",
        host="127.0.0.1",
        port=0,
        tls=TlsConfig(),
        quic=replace(DEFAULT_ZIPPER_SETTINGS, backend=backend),
        stats_interval=0,
    )
    await z.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cpu0 = _cpu()
    _emit({"event": "ready", "port": z.address[1], "backend": z._listener.backend})  # type: ignore[union-attr]
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), 600)
    cpu = _cpu() - cpu0
    tag = z.stats()["tags"].get(TAG, {})
    await z.stop()
    _emit({"event": "exit", "cpu_s": cpu, "frames_out": tag.get("frames_out", 0)})


async def _clients(port: int, backend: str, frames: int, size: int) -> None:
    import yomo.aio
    from yomo.transport import QuicSettings, TlsConfig

    quic = QuicSettings(backend=backend)
    addr = f"127.0.0.1:{port}"
    state = {"n": 0, "last": 0.0}
    done = asyncio.Event()

    async def handler(ctx: yomo.aio.Context) -> None:
        state["n"] += 1
        if state["n"] >= frames:
            state["last"] = time.perf_counter()
            done.set()

    sfn = yomo.aio.StreamFunction(
        "bench-sfn", addr, observe_data_tags=[TAG], tls=TlsConfig(), quic=quic
    )
    sfn.set_handler(handler)
    await sfn.connect()
    source = yomo.aio.Source("bench-src", addr, tls=TlsConfig(), quic=quic)
    await source.connect()
    payload = b"x" * size
    cpu0 = _cpu()
    start = time.perf_counter()
    for _ in range(frames):
        await source.write(TAG, payload)
    try:
        await asyncio.wait_for(done.wait(), 120)
    except asyncio.TimeoutError:
        state["last"] = time.perf_counter()
    elapsed = state["last"] - start
    _emit(
        {
            "event": "result",
            "received": state["n"],
            "elapsed_s": elapsed,
            "fps": state["n"] / elapsed,
            "clients_cpu_s": _cpu() - cpu0,
        }
    )
    await source.close()
    await sfn.close()


def _run_once(backend: str, frames: int, size: int) -> dict[str, Any]:
    me = os.path.abspath(__file__)
    zipper = subprocess.Popen(
        [sys.executable, me, "zipper", "--backend", backend],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert zipper.stdout is not None
        ready = json.loads(zipper.stdout.readline())
        clients = subprocess.run(
            [
                sys.executable, me, "clients", "--backend", backend, "--port", str(ready["port"]),
                "--frames", str(frames), "--size", str(size),
            ],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        result = json.loads(clients.stdout.strip().splitlines()[-1])
        zipper.send_signal(signal.SIGTERM)
        out, _ = zipper.communicate(timeout=30)
        exit_info = json.loads(out.strip().splitlines()[-1])
    finally:
        if zipper.poll() is None:
            zipper.kill()
            zipper.wait()
    routed = max(exit_info["frames_out"], 1)
    return {
        "backend": ready["backend"],
        "fps": result["fps"],
        "received": result["received"],
        "zipper_cpu_s": exit_info["cpu_s"],
        "zipper_cpu_per_10k": exit_info["cpu_s"] / routed * 10_000,
        "clients_cpu_s": result["clients_cpu_s"],
    }


def main(argv: list[str] | None = None) -> None:
    """Run the comparison (or, internally, one zipper or clients process)."""
    parser = argparse.ArgumentParser(prog="quic_backends", description=__doc__)
    parser.add_argument(
        "role", nargs="?", default="compare", choices=["compare", "zipper", "clients"]
    )
    parser.add_argument("--backends", default="qh3,aiopquic")
    parser.add_argument("--backend", default="qh3")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.role == "zipper":
        asyncio.run(_zipper(args.backend))
        return
    if args.role == "clients":
        asyncio.run(_clients(args.port, args.backend, args.frames, args.size))
        return
    backends = args.backends.split(",")
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
    print(
        f"# {args.frames} frames of {args.size} B, {args.repeats} repeats, load {os.getloadavg()}"
    )
    for repeat in range(args.repeats):
        for backend in backends:
            r = _run_once(backend, args.frames, args.size)
            runs[backend].append(r)
            print(
                f"run {repeat + 1} {r['backend']:<28} {r['fps']:>9.0f} frames/s  "
                f"zipper CPU {r['zipper_cpu_s']:.2f} s = {r['zipper_cpu_per_10k']:.3f} s/10k frames  "
                f"clients CPU {r['clients_cpu_s']:.2f} s  (received {r['received']})",
                flush=True,
            )
    print(f"# medians, load {os.getloadavg()}")
    for backend, rs in runs.items():
        fps = statistics.median(r["fps"] for r in rs)
        cpu = statistics.median(r["zipper_cpu_per_10k"] for r in rs)
        print(
            f"{backend:<10} {fps:>9.0f} frames/s ({fps * args.size / 1e6:.1f} MB/s)  zipper {cpu:.3f} CPU s/10k frames"
        )


if __name__ == "__main__":
    main()
