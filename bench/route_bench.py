"""Micro-benchmark of the pure-Python zipper's routing: frames/s through ``Routing.route``.

Not a test. One frame from a registered source is routed to one stream function
whose connection takes it at once (a stub that only counts), so what is timed is
the zipper's per-frame work on the pure-Python path: counters, metadata, the
router, the frame middleware, delivery. Each case is the best of several rounds
by CPU time (the least disturbed by other load on a shared machine)::

    .venv-test/bin/python bench/route_bench.py            # about half a minute
    .venv-test/bin/python bench/route_bench.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wire_bench import rate

from yomo.wire import (
    SOURCE_ID,
    TARGET,
    TID,
    ClientType,
    DataFrame,
    HandshakeFrame,
    encode_metadata,
)
from yomo.zipper.hooks import ConnectionRegistry, FrameHandler
from yomo.zipper.options import ZipperOptions
from yomo.zipper.registered import RegisteredClient, ZipperParts
from yomo.zipper.routing import Routing
from yomo.zipper.stats import ZipperStats

TAG = 0x33


class _Sink:
    """A destination connection that takes every frame at once."""

    closed = False
    send_backlog = 0
    has_room = True
    remote_address = ("127.0.0.1", 1)

    def __init__(self) -> None:
        self.frames = 0

    def send_nowait(self, data: Any) -> None:
        self.frames += 1


def _pass_on(next_handler: FrameHandler) -> FrameHandler:
    return next_handler


def _case(
    merge: dict[str, str], metadata: dict[str, str], middleware: bool, size: int
) -> Callable[[], object]:
    """Route one frame with ``metadata`` from a source whose connection merges ``merge``
    to the one function (which wants the frame's target, if it has one)."""
    stats = ZipperStats()
    registry = ConnectionRegistry()
    routing = Routing(
        ZipperOptions(frame_middleware=[_pass_on] if middleware else []),
        ZipperParts(stats, logging.getLogger("bench"), registry),
    )
    fn = RegisteredClient(
        1,
        HandshakeFrame(
            name="fn",
            client_type=ClientType.STREAM_FUNCTION,
            observe_data_tags=(TAG,),
            wanted_target=metadata.get(TARGET, ""),
        ),
        {},
        _Sink(),
    )
    registry.store(fn)
    routing.add(fn)
    src = RegisteredClient(
        2, HandshakeFrame(name="src", client_type=ClientType.SOURCE), merge, _Sink()
    )
    frame = DataFrame(tag=TAG, metadata=encode_metadata(metadata), payload=b"x" * size)
    route = routing.route
    return lambda: route(src, frame)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (noisier)")
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    seconds, rounds = (0.2, 3) if args.quick else (0.5, 9)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    md = {SOURCE_ID: "V1StGXR8_Z5jdHi6B-myT", TID: "Uakgb_J5m9g-0JDMbcJqL"}
    cases = {
        "a source's frame (no merge)": ({}, md, False),
        "with a target": ({}, {**md, TARGET: "alice"}, False),
        "merge that changes nothing": ({SOURCE_ID: md[SOURCE_ID]}, md, False),
        "merge that adds a key": ({"user": "alice"}, md, False),
        "one frame middleware": ({}, md, True),
    }
    print(f"{args.size} B payload, one core, best of {rounds} rounds by CPU time")
    print(f"load average {os.getloadavg()[0]:.1f}\n")
    print("| case | frames/s (CPU) | µs per frame |")
    print("|---|---|---|")
    for name, (merge, metadata, middleware) in cases.items():
        result = rate(_case(merge, metadata, middleware, args.size), 1, seconds, rounds)
        print(f"| {name} | {result['cpu']:,.0f} | {1e6 / result['cpu']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
