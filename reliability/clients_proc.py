"""The suite's normal traffic, in processes of their own: ``python clients_proc.py ROLE JSON``.

Roles:

* ``source``: ``producers`` sources (one connection each) write numbered frames
  (``ledger.pack``) on ``tag`` at ``rate`` frames/s in all, for ``duration`` s.
* ``sink``: a stream function observing ``tag`` that books every frame in a
  ``Ledger``; with ``stall`` its handler blocks (a consumer that stops reading).

Each writes a JSON report to ``out`` when it ends (the sink on SIGTERM/SIGINT or
after ``duration``): counts, the delivery timeline, and the time of every error
the client's error handler got, so detection and recovery can be measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from typing import Any

try:
    from reliability.ledger import TRAIL, Ledger, pack, unpack
except ImportError:  # run as a script from reliability/
    from ledger import TRAIL, Ledger, pack, unpack  # type: ignore[no-redef]

__all__ = ["main"]


def _errors_into(events: list[dict[str, Any]]) -> Any:
    def on_error(exc: BaseException) -> None:
        events.append(
            {
                "t": time.time(),
                "type": type(exc).__name__,
                "message": str(exc)[:300],
                "frames": getattr(exc, "frames", None),
            }
        )

    return on_error


async def _source(opts: dict[str, Any]) -> dict[str, Any]:
    import yomo.aio

    tag, rate, size = opts["tag"], float(opts["rate"]), int(opts.get("size", 64))
    producers, duration = int(opts.get("producers", 1)), float(opts["duration"])
    events: list[dict[str, Any]] = []
    sources = []
    for p in range(producers):
        src = yomo.aio.Source(
            f"{opts.get('name', 'rel-src')}-{p}",
            opts["zipper"],
            write_timeout=float(opts.get("write_timeout", 10.0)),
            credential=opts.get("credential"),
        )
        src.set_error_handler(_errors_into(events))
        core = src._core

        def reconnected(p: int = p) -> None:
            events.append({"t": time.time(), "type": "reconnected", "producer": p})

        core.add_reconnected_handler(reconnected)
        sources.append(src)
    t_connect = time.time()
    await asyncio.gather(*(s.connect() for s in sources))
    connect_s = time.time() - t_connect
    print("CONNECTED", flush=True)
    stalls: list[list[float]] = []
    attempted = [0] * producers
    failed: list[list[int]] = [[] for _ in range(producers)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    start = time.time()
    per = rate / producers

    async def produce(p: int) -> None:
        seq = 0
        t0 = loop.time()
        while not stop.is_set() and loop.time() - t0 < duration:
            due = t0 + seq / per
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            t_write = time.time()
            try:
                await sources[p].write(tag, pack(p, seq, t_write, size))
                took = time.time() - t_write
                if took > 0.2:
                    stalls.append([round(t_write, 3), round(took, 3)])
            except Exception as exc:  # counted: the writer knows this frame did not go
                failed[p].append(seq)
                _errors_into(events)(exc)
            seq += 1
            attempted[p] = seq

    await asyncio.gather(*(produce(p) for p in range(producers)))
    end = time.time()
    await asyncio.gather(
        *(asyncio.wait_for(s.close(), 10.0) for s in sources), return_exceptions=True
    )
    return {
        "role": "source",
        "connect_s": connect_s,
        "stalls": stalls,
        "start": start,
        "end": end,
        "attempted": {str(p): n for p, n in enumerate(attempted)},
        "failed": {str(p): f for p, f in enumerate(failed)},
        "events": events,
    }


async def _sink(opts: dict[str, Any]) -> dict[str, Any]:
    import yomo.aio

    ledger = Ledger()
    stall = bool(opts.get("stall"))
    events: list[dict[str, Any]] = []
    sfn = yomo.aio.StreamFunction(
        opts.get("name", "rel-sink"),
        opts["zipper"],
        observe_data_tags=[opts["tag"]],
        credential=opts.get("credential"),
    )
    forever = asyncio.Event()
    # Every delivery also goes straight to a trail file (one write each, no buffer),
    # so a sink killed with SIGKILL still tells what it got.
    trail = os.open(opts["out"] + ".trail", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    conns: dict[str, int] = {}

    async def handler(ctx: Any) -> None:
        now = time.time()
        conn = sfn.connection_id
        ledger.add(ctx.data, now, conn)
        producer, seq, _ = unpack(ctx.data)
        os.write(trail, TRAIL.pack(producer, seq, now, conns.setdefault(conn, len(conns))))
        if stall:
            await forever.wait()

    sfn.set_handler(handler)
    sfn.set_error_handler(_errors_into(events))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    t_connect = time.time()
    await sfn.connect()
    connected = time.time()
    print("CONNECTED", flush=True)
    duration = opts.get("duration")
    if duration is None:
        await stop.wait()
    else:
        try:
            await asyncio.wait_for(stop.wait(), float(duration))
        except asyncio.TimeoutError:
            pass
    report = {
        "role": "sink",
        "connected": connected,
        "connect_s": connected - t_connect,
        "events": events,
        **ledger.to_json(),
    }
    forever.set()
    await asyncio.gather(asyncio.wait_for(sfn.close(timeout=1.0), 5.0), return_exceptions=True)
    return report


async def _churn(opts: dict[str, Any]) -> dict[str, Any]:
    """Connect a source, write a few frames, close; again and again (leak hunting)."""
    import yomo.aio

    loop = asyncio.get_running_loop()
    end = loop.time() + float(opts["duration"])
    cycles = errors = 0
    while loop.time() < end:
        src = yomo.aio.Source("rel-churn", opts["zipper"], credential=opts.get("credential"))
        try:
            await src.connect()
            for i in range(10):
                await src.write(opts["tag"], b"churn %d" % i)
            cycles += 1
        except Exception:
            errors += 1
        finally:
            await src.close()
        await asyncio.sleep(float(opts.get("pause", 0.5)))
    return {"role": "churn", "cycles": cycles, "errors": errors}


def main(argv: list[str]) -> int:
    role, opts = argv[1], json.loads(argv[2])
    runner = {"source": _source, "sink": _sink, "churn": _churn}[role]
    report = asyncio.run(runner(opts))
    with open(opts["out"], "w") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
