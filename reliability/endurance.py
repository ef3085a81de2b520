"""Long and library-mix runs: aioquic clients, the soak, the decoder fuzzer."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any

from .common import Ctx, check, log_errors, row
from .harness import ROOT, Traffic, rss_kib

__all__ = ["aioquic_clients", "fuzz", "soak"]


# -- aioquic clients, soak, fuzz ------------------------------------------------------


def aioquic_clients(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    z = procs.zipper()
    t = Traffic(
        procs, z.addr, rate=500, size=256, duration=4.0, client_env={"YOMO_QUIC_BACKEND": "aioquic"}
    )
    t.start()
    counts = t.finish(settle=2.0)
    sink = t.sinks[0].report() or {}
    src = t.source.report() if t.source else {}
    z.stop()
    errs = log_errors(z.log_text())
    connect = max(sink.get("connect_s", 0.0), (src or {}).get("connect_s", 0.0))
    return [
        row(
            "aioquic clients",
            "pair 500/s with YOMO_QUIC_BACKEND=aioquic clients",
            "none (library mix)",
            counts=counts,
            times={"connect": round(connect, 3)},
            rss_kib=0,
            checks=[
                check("pair lost nothing", counts["lost"] == 0),
                check("no ERROR lines in the zipper log", errs["error_lines"] == 0, gate=False),
            ],
            notes=f"zipper log: {errs}",
        )
    ]


def soak(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    seconds = ctx.soak_s
    z = procs.zipper()
    t = Traffic(procs, z.addr, rate=1000, size=256, duration=seconds).start()
    churn = procs.client("churn", {"zipper": z.addr, "tag": 0x30, "duration": seconds})
    samples: list[tuple[float, int]] = []
    start = time.time()
    every = max(1.0, seconds / 120)
    while time.time() - start < seconds:
        samples.append((time.time() - start, rss_kib(z.pid)))
        time.sleep(every)
    counts = t.finish(settle=2.0, timeout=120.0)
    churn.wait(60.0)
    churned = churn.report() or {}
    warm = [r for s, r in samples if s >= seconds * 0.1] or [r for _, r in samples]
    growth = warm[-1] - warm[0] if warm else 0
    per_hour = growth * 3600 / max(1.0, seconds * 0.9)
    return [
        row(
            "soak",
            f"{seconds:g} s: pair 1,000/s + a source connecting/closing every 0.5 s",
            "none",
            counts=counts,
            times={"longest delivery gap": round(counts["max_gap"], 3)},
            rss_kib=max((r for _, r in samples), default=0),
            checks=[
                check("pair lost nothing", counts["lost"] == 0),
                check("no duplicates", counts["duplicated"] == 0),
                check("order kept", counts["reordered"] == 0),
                check("churn errors", churned.get("errors", 1) == 0),
            ],
            notes=(
                f"RSS after warm-up {warm[0] if warm else 0} -> {warm[-1] if warm else 0} KiB "
                f"({growth:+d} KiB, {per_hour:+.0f} KiB/h); {churned.get('cycles')} connect/close cycles"
            ),
        )
    ]


def _fuzz_run(script: str, runs: int) -> tuple[subprocess.CompletedProcess[str], float, int]:
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / script), f"-runs={runs}"],
        capture_output=True,
        text=True,
        timeout=4 * 3600,
        cwd=ROOT,
    )
    out = proc.stdout + proc.stderr
    m = re.search(r"(\d+) inputs", out) or re.search(r"Done (\d+) runs", out)
    return proc, time.time() - t0, int(m.group(1)) if m else 0


def fuzz(ctx: Ctx) -> list[dict[str, Any]]:
    """The Python decoder fuzzed, and the native (Rust) decoder against it (differential)."""
    runs = ctx.fuzz_runs
    rows = []
    for script, name, what in (
        (
            "fuzz_decoder.py",
            "decoder fuzzer",
            "random and mutated bytes into every decoder entry point",
        ),
        (
            "fuzz_native.py",
            "native decoder fuzzer (differential)",
            "random bytes and mutated frames/metadata into the Rust reader and the Python "
            "decoder: same accept/reject, fields and close reason",
        ),
    ):
        proc, took, done = _fuzz_run(script, runs)
        out = (proc.stdout + proc.stderr).strip()
        rows.append(
            row(
                name,
                f"{runs:,} inputs",
                what,
                times={"run": round(took, 1)},
                checks=[
                    check("no failure", proc.returncode == 0),
                    check(f"{runs:,} inputs run", done >= runs),
                ],
                notes=" | ".join(out.splitlines()[-2:])[:300] if out else "",
            )
        )
    return rows
