"""Repeat one Go-client throughput case against our zipper and count the runs that lost
frames (docs/reliability.md, "What is left": the native held producer).

A diagnostic loop, not part of CI or of ``bench/run.py``'s published results: each run
is ``bench/run.py``'s own scenario (a Go source at full speed -> our zipper -> a Go
counting function), started afresh, and the zipper's log is searched for closes
("too many gaps", "disconnected"). Usage:

    python bench/held_loop.py --runs 40 --size 64 --duration 3 [--json out.json] [--ours-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench

__all__ = ["main"]


def _pin_zippers(r: bench.Runner, cpu: int, stop: threading.Event) -> None:
    """Pin every thread of each new zipper of ours to `cpu` as soon as it starts."""
    pinned: set[int] = set()
    while not stop.wait(0.02):
        for p in list(r.procs):
            if p.name.startswith("zipper-ours") and p.pid not in pinned:
                subprocess.run(
                    ["taskset", "-a", "-p", "-c", str(cpu), str(p.pid)],
                    capture_output=True,
                    check=False,
                )
                pinned.add(p.pid)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--size", type=int, default=64, help="frame payload bytes")
    ap.add_argument("--duration", type=float, default=1.5, help="seconds the source writes")
    ap.add_argument("--json", metavar="PATH", help="write every run's metrics here")
    ap.add_argument(
        "--ours-src",
        metavar="DIR",
        help="run our zipper from this source tree (PYTHONPATH=DIR, with its own native module)",
    )
    ap.add_argument(
        "--starve",
        type=int,
        metavar="CPU",
        help="pin our zipper (all its threads) to this CPU, beside a busy loop of its own, "
        "and everything else to the other CPUs: the zipper's threads then wait their turn",
    )
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    settings = bench.Settings.make(True, "default", 10**9)
    settings = bench.dataclasses.replace(settings, duration=args.duration)
    _toolchain, bins, ybench = bench.build(log)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="yomo-held-loop-") as tmp:
        r = bench.Runner(settings, bins, ybench, Path(tmp))
        if args.ours_src:
            r.base_env = {"PYTHONPATH": str(Path(args.ours_src).resolve())}
        stop = threading.Event()
        hog = None
        if args.starve is not None:
            others = sorted(os.sched_getaffinity(0) - {args.starve})
            os.sched_setaffinity(0, others)  # the harness and the Go clients
            hog = subprocess.Popen(
                ["taskset", "-c", str(args.starve), sys.executable, "-c", "while True: pass"]
            )
            threading.Thread(target=_pin_zippers, args=(r, args.starve, stop), daemon=True).start()
        try:
            for i in range(args.runs):
                load = os.getloadavg()[0]
                entry: dict[str, Any] = {"run": i + 1, "load_1m": round(load, 2)}
                try:
                    m = bench.run_throughput(r, "ours", args.size)
                    logs = [ln for lines in m.get("evidence", {}).values() for ln in lines]
                    entry.update(
                        fps=round(m["fps"]),
                        written=m["written"],
                        lost=m["lost"],
                        out_of_order=m["out_of_order"],
                        drain=m["drain"],
                        rss_mib=round(m["zipper_rss_mib"], 1),
                        gaps=sum("too many gaps" in ln for ln in logs),
                    )
                    if m["lost"] or m["out_of_order"]:
                        entry["evidence"] = m.get("evidence", {})
                except Exception as e:  # one broken run must not end the loop
                    entry["error"] = f"{type(e).__name__}: {e}"[:500]
                finally:
                    r.stop_all()
                results.append(entry)
                brief = {k: v for k, v in entry.items() if k != "evidence"}
                log(json.dumps(brief))
        finally:
            stop.set()
            if hog is not None:
                hog.kill()
            r.stop_all()
    bad = [e for e in results if e.get("lost") or e.get("out_of_order") or e.get("error")]
    lost = sum(e.get("lost", 0) for e in results)
    fps = sorted(e["fps"] for e in results if "fps" in e)
    median = fps[len(fps) // 2] if fps else 0
    rss = sorted(e["rss_mib"] for e in results if "rss_mib" in e)
    log(
        f"{len(results)} runs at {args.size} B: {len(bad)} bad, {lost} frames lost in all, "
        f"median {median:,} frames/s, zipper RSS at the end of a run: median "
        f"{rss[len(rss) // 2] if rss else 0} MiB, most {rss[-1] if rss else 0} MiB"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
