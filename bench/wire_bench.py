"""Micro-benchmark of the wire codec: DataFrames/s encoded and decoded on one core.

Not a test. Prints a table and writes bench/out/wire.json.

    .venv-test/bin/python bench/wire_bench.py            # about a minute
    .venv-test/bin/python bench/wire_bench.py --quick    # a few seconds

Each figure is the best of several timed rounds (the least disturbed by other load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from yomo.wire import (
    SOURCE_ID,
    SPAN_ID,
    TID,
    TRACE_ID,
    TRACED,
    DataFrame,
    FrameDecoder,
    decode_frame,
    encode_data_frame,
    encode_metadata,
)

SIZES = (64, 1024, 65536)
CHUNK = 16 * 1024  # bytes per FrameDecoder.feed in the stream case
OUT = Path(__file__).resolve().parent / "out" / "wire.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rate(
    fn: Callable[[], object], frames_per_call: int, seconds: float, rounds: int
) -> dict[str, float]:
    """Frames per second of ``fn`` over ``rounds`` rounds of about ``seconds`` each.

    ``best``/``median`` are by wall clock; ``cpu`` is the best by this process's CPU time,
    which other load on the machine disturbs less (the time we were not scheduled is
    not counted).
    """
    calls = 1  # calibrate the number of calls for one round
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        took = time.perf_counter() - t0
        if took > seconds / 4 or calls > 10_000_000:
            break
        calls *= 2
    calls = max(1, int(calls * seconds / max(took, 1e-9)))
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        took = time.perf_counter() - t0
        used = time.process_time() - c0
        wall.append(calls * frames_per_call / took)
        cpu.append(calls * frames_per_call / max(used, 1e-9))
    return {"best": max(wall), "median": statistics.median(wall), "cpu": max(cpu)}


def feed_stream(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for c in chunks:
        decoder.feed(c)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (noisier)")
    args = parser.parse_args()
    seconds, rounds = (0.2, 3) if args.quick else (0.5, 9)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    metadata = encode_metadata(
        {
            SOURCE_ID: "V1StGXR8_Z5jdHi6B-myT",
            TID: "Uakgb_J5m9g-0JDMbcJqL",
            TRACE_ID: "4bf92f3577b34da6a3ce929d0e0e4736",
            SPAN_ID: "00f067aa0ba902b7",
            TRACED: "false",
        }
    )
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    results = []
    for size in SIZES:
        payload = os.urandom(size)
        frame = DataFrame(tag=0x33, metadata=metadata, payload=payload)
        wire = frame.encode()
        assert decode_frame(wire) == frame
        per_chunk = max(1, CHUNK // len(wire))
        stream = wire * max(64, 4 * per_chunk + 1)  # several chunks, frames cut across them
        chunks = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]
        n_stream = len(stream) // len(wire)

        cases: dict[str, tuple[Callable[[], object], int]] = {
            "encode_data_frame": (partial(encode_data_frame, 0x33, metadata, payload), 1),
            "DataFrame.encode": (frame.encode, 1),
            "decode_frame": (partial(decode_frame, wire), 1),
            "FrameDecoder.feed": (partial(feed_stream, chunks), n_stream),
        }
        for name, (fn, per_call) in cases.items():
            r = rate(fn, per_call, seconds, rounds)
            row = {
                "op": name,
                "payload": size,
                "frame_bytes": len(wire),
                "frames_per_s": round(r["best"]),
                "frames_per_s_median": round(r["median"]),
                "frames_per_cpu_s": round(r["cpu"]),
                "mib_per_s": round(r["best"] * len(wire) / 2**20, 1),
            }
            results.append(row)
            print(
                f"{name:18s} {size:6d} B  {r['best']:11,.0f}/s  median {r['median']:11,.0f}/s"
                f"  per CPU-s {r['cpu']:11,.0f}  {row['mib_per_s']:8,.1f} MiB/s",
                flush=True,
            )

    report = {
        "bench": "wire",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": f"{cpu_model()}, {os.cpu_count()} cpus, {platform.system()} {platform.release()}",
        "metadata_bytes": len(metadata),
        "feed_chunk_bytes": CHUNK,
        "rounds": rounds,
        "round_seconds": seconds,
        "loadavg_1min_start_end": [
            load_start,
            os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        ],
        "results": results,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
