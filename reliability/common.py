"""What every scenario shares: its context, result rows and checks, zipper stats and logs.

A row is ``{"scenario", "load", "faults", "counts", "times", "rss_kib", "checks", "notes"}``.
``counts`` are the pair's exact frame counts (``harness.account``); ``times`` are the
recovery times the scenario measures (seconds, one value per repeat); a check is
``{name, ok, gate}``: a gating check failing makes the run fail, a goal check only
shows in the report (an issue goal not met yet).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .harness import Proc, Processes

__all__ = ["TOKEN", "WRONG", "Ctx", "check", "log_errors", "row", "stats_opt", "zipper_stats"]

TOKEN = "rel-secret-token-7c1e"
WRONG = "WRONG-guess-9d2a"


@dataclass
class Ctx:
    """What a scenario gets: its processes, the run's size, the transport path."""

    procs: Processes
    short: bool
    path: str
    soak_s: float
    fuzz_runs: int


def check(name: str, ok: bool, gate: bool = True) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "gate": gate}


def row(scenario: str, load: str, faults: str, **kw: Any) -> dict[str, Any]:
    counts = kw.get("counts")
    if counts is not None:
        counts = {
            k: v for k, v in counts.items() if k not in ("times", "source_events", "sink_events")
        }
    return {
        "scenario": scenario,
        "load": load,
        "faults": faults,
        "counts": counts,
        "times": kw.get("times", {}),
        "rss_kib": kw.get("rss_kib", 0),
        "checks": kw.get("checks", []),
        "notes": kw.get("notes", ""),
    }


def zipper_stats(z: Proc) -> dict[str, Any]:
    """Stop ``z`` gracefully and read the stats it wrote (``stats_out``)."""
    z.stop()
    path = z.log.parent / f"{z.name}-stats.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def stats_opt(procs: Processes, name: str) -> dict[str, Any]:
    return {"stats_out": str(procs.workdir / f"{name}-stats.json")}


def log_errors(text: str) -> dict[str, int]:
    return {
        "error_lines": len(re.findall(r" ERROR ", text)),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "never_retrieved": text.count("exception was never retrieved"),
    }
