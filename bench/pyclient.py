"""Python counterparts of ``ybench source`` and ``ybench sink`` (bench scenario 5), on ``yomo.aio``.

Same flags, payload layout and JSON lines as the Go program (bench/go/cmd/ybench),
so bench/run.py drives either the same way::

    python bench/pyclient.py source -zipper 127.0.0.1:9000 -tag 0x10 -size 1024 -duration 3
    python bench/pyclient.py sink -zipper 127.0.0.1:9000 -observe 0x10 -size 1024
    python bench/pyclient.py idle -zipper 127.0.0.1:9000 -n 300
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import struct
import sys
import time
from typing import Any

import yomo.aio

__all__ = ["main", "payload"]

_HEAD = struct.Struct(">QQ")


def emit(obj: dict[str, Any]) -> None:
    """Print one JSON line on stdout."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def payload(seq: int, size: int, filler: bytes) -> bytes:
    """Bytes 0-8 seq, 8-16 send time (Unix ns), big-endian; then filler."""
    return _HEAD.pack(seq, time.time_ns()) + filler[: max(size, 16) - 16]


async def run_source(args: argparse.Namespace) -> None:
    source = yomo.aio.Source("bench-py-source", args.zipper)
    await source.connect()
    emit({"event": "connected"})
    tag = int(args.tag, 0)
    filler = bytes(ord("a") + i % 26 for i in range(16, max(args.size, 16)))
    start = time.monotonic()
    deadline = start + args.duration
    written = 0
    try:
        while time.monotonic() < deadline:
            await source.write(tag, payload(written, args.size, filler))
            written += 1
    finally:
        elapsed = time.monotonic() - start
        emit(
            {
                "event": "summary",
                "written": written,
                "failed": 0,
                "size": args.size,
                "elapsed_s": elapsed,
                "fps": written / elapsed,
            }
        )
        # Stay connected until bench/run.py has seen everything arrive.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 120)
        await source.close()


async def run_sink(args: argparse.Namespace) -> None:
    state = {"frames": 0, "bytes": 0, "bad_len": 0, "ooo": 0, "last_seq": -1, "first": 0, "last": 0}

    async def handler(ctx: yomo.aio.Context) -> None:
        now = time.time_ns()
        data = ctx.data
        if state["frames"] == 0:
            state["first"] = now
        state["last"] = now
        state["frames"] += 1
        state["bytes"] += len(data)
        if args.size and len(data) != args.size:
            state["bad_len"] += 1
        if len(data) >= 8:
            seq = int.from_bytes(data[:8], "big")
            if seq <= state["last_seq"]:
                state["ooo"] += 1
            state["last_seq"] = seq

    sfn = yomo.aio.StreamFunction(
        "bench-py-sink", args.zipper, observe_data_tags=[int(args.observe, 0)]
    )
    sfn.set_handler(handler)
    await sfn.connect()
    emit({"event": "connected", "conns": 1})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 0.2)
        except asyncio.TimeoutError:
            emit({"event": "progress", "frames": state["frames"]})
    frames = state["frames"]
    elapsed = (state["last"] - state["first"]) / 1e9 if frames > 1 else 0.0
    fps = (frames - 1) / elapsed if elapsed > 0 else 0.0
    emit(
        {
            "event": "summary",
            "frames": frames,
            "bytes": state["bytes"],
            "bad_len": state["bad_len"],
            "out_of_order": state["ooo"],
            "elapsed_s": elapsed,
            "per_conn": [{"frames": frames, "bytes": state["bytes"], "fps": fps}],
        }
    )
    await sfn.close()


async def run_idle(args: argparse.Namespace) -> None:
    fns: list[yomo.aio.StreamFunction] = []
    slots = asyncio.Semaphore(args.parallel)
    failed = 0

    async def one(i: int) -> None:
        nonlocal failed
        async with slots:
            fn = yomo.aio.StreamFunction(
                f"bench-py-idle-{i}", args.zipper, observe_data_tags=[0x99]
            )
            fn.set_handler(lambda ctx: None)
            try:
                await asyncio.wait_for(fn.connect(), 5.0)
            except Exception:  # refused or timed out: counted, the run goes on
                failed += 1
                with contextlib.suppress(Exception):
                    await fn.close()
                return
            fns.append(fn)

    start = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(args.n)))
    secs = time.monotonic() - start
    emit(
        {
            "event": "connected",
            "n": args.n,
            "ok": len(fns),
            "failed": failed,
            "seconds": secs,
            "hps": len(fns) / secs,
        }
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), 300)
    await asyncio.gather(*(fn.close() for fn in fns), return_exceptions=True)


def _seconds(text: str) -> float:
    return float(text[:-1] if text.endswith("s") else text)


def main(argv: list[str] | None = None) -> None:
    """Parse ``source`` / ``sink`` and run it."""
    parser = argparse.ArgumentParser(prog="pyclient", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    src = sub.add_parser("source")
    src.add_argument("-zipper", default="127.0.0.1:9000")
    src.add_argument("-tag", default="0x10")
    src.add_argument("-size", type=int, default=1024)
    src.add_argument("-duration", type=_seconds, default=3.0)
    sink = sub.add_parser("sink")
    sink.add_argument("-zipper", default="127.0.0.1:9000")
    sink.add_argument("-observe", default="0x10")
    sink.add_argument("-size", type=int, default=0)
    idle = sub.add_parser("idle")
    idle.add_argument("-zipper", default="127.0.0.1:9000")
    idle.add_argument("-n", type=int, default=300)
    idle.add_argument("-parallel", type=int, default=16)
    args = parser.parse_args(argv)
    run = {"source": run_source, "sink": run_sink, "idle": run_idle}[args.cmd]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
