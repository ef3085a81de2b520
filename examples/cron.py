"""Cron handler: a stream function that writes on a schedule, without any input.

``set_cron_handler(spec, fn)`` runs ``fn(ctx)`` on a cron spec in Go's syntax
(five fields, ``@hourly``, ``@every 1h30m``, ...); ``ctx.write`` sends a frame
with a fresh transaction id each run. A sink prints the ticks. Runs on loopback for
about 3.5 s and exits by itself::

    python examples/cron.py
"""

from __future__ import annotations

import logging
import threading
import time

import yomo

TAG_TICK = 0x30
TICKS = 3


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("quic").setLevel(logging.ERROR)
    ticks: list[str] = []
    enough = threading.Event()
    with yomo.Zipper("zipper", "127.0.0.1", 0, stats_interval=0) as zipper:
        print(f"zipper  listening on {zipper.addr}")
        clock = yomo.StreamFunction("clock", zipper.addr)
        runs = 0

        def tick(ctx: yomo.CronContext) -> None:
            nonlocal runs
            runs += 1
            ctx.write(TAG_TICK, f"tick {runs} at {time.strftime('%H:%M:%S')}".encode())

        clock.set_cron_handler("@every 1s", tick)

        sink = yomo.StreamFunction("sink", zipper.addr, observe_data_tags=[TAG_TICK])

        @sink.set_handler
        def show(ctx: yomo.Context) -> None:
            ticks.append(ctx.data.decode())
            print(f"sink    <- {ctx.data.decode()!r} (tid {ctx.tid})", flush=True)
            if len(ticks) >= TICKS:
                enough.set()

        start = time.monotonic()
        with sink, clock:
            enough.wait(TICKS + 3)
        print(f"done: {len(ticks)} ticks in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
