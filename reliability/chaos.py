"""Chaos: kill or pause the zipper, kill a function, kill a mesh peer (the WAN mesh: wan.py).

Each scenario runs the pair at a known rate, injects its fault at a known time and
measures from the pair's ledgers: frames lost/duplicated/reordered, when the
source noticed, and when traffic came back.
"""

from __future__ import annotations

import bisect
import signal
import time
from typing import Any

from .common import Ctx, check, log_errors, row, stats_opt, zipper_stats
from .harness import Traffic, first_after, free_port, rss_kib

__all__ = [
    "function_sigkill",
    "mesh_peer_sigkill",
    "zipper_sigkill",
    "zipper_sigstop",
]


# -- chaos -------------------------------------------------------------------------


def _detected(events: list[dict[str, Any]], after: float) -> float | None:
    ts = sorted(e["t"] for e in events if e.get("type") != "reconnected" and e["t"] >= after)
    return ts[0] - after if ts else None


def _crash_checks(counts: dict[str, Any], rate: float) -> list[dict[str, Any]]:
    return [
        check("no duplicates to the same connection", counts["duplicated_same_connection"] == 0),
        check("order kept", counts["reordered"] == 0),
        check("<= 100 lost per kill at 2,000/s (goal)", counts["lost"] <= 100, gate=False),
        check(
            "every possibly lost frame reported (goal)",
            counts["reported_lost"] >= counts["lost"],
            gate=False,
        ),
    ]


def _zipper_notes(stats: dict[str, Any]) -> str:
    """What the zipper counted: frames routed to nobody, re-sent copies not sent again."""
    resent = stats.get("resent", {})
    return (
        f"zipper (after the fault): {stats.get('unobserved')} unobserved, "
        f"{resent.get('duplicates')} re-sent copies not sent again (yomo.zipper.resend)"
    )


def zipper_sigkill(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    rate = 2000
    z = procs.zipper(options=stats_opt(procs, "zipper"))  # the restart writes them too
    t = Traffic(procs, z.addr, rate=rate, size=256, duration=12.0).start()
    time.sleep(3.0)
    kill_t = time.time()
    z.signal(signal.SIGKILL)
    z.wait(5.0)
    time.sleep(max(0.0, 1.0 - (time.time() - kill_t)))
    z2 = procs.restart_zipper(z)
    restart_t = time.time()
    counts = t.finish(settle=3.0)
    back = first_after(counts["times"], restart_t)
    detect = _detected(counts["source_events"], kill_t)
    rss = rss_kib(z2.pid)
    notes = _zipper_notes(zipper_stats(z2))
    return [
        row(
            "zipper SIGKILL, restart after 1 s",
            f"{rate} frames/s, 256 B",
            "SIGKILL the zipper, same port again 1 s later",
            counts=counts,
            times={
                "source detects": round(detect, 3) if detect is not None else None,
                "back after restart": round(back - restart_t, 3) if back else None,
            },
            rss_kib=rss,
            notes=notes,
            checks=[
                *_crash_checks(counts, rate),
                check(
                    "detected within 1 s (goal)", detect is not None and detect <= 1.0, gate=False
                ),
                check(
                    "back within 2 s (goal)",
                    back is not None and back - restart_t <= 2.0,
                    gate=False,
                ),
            ],
        )
    ]


def _rate90(times: list[float], start: float, rate: float, window: float = 1.0) -> float | None:
    t = start
    while t < start + 40:
        n = bisect.bisect_left(times, t + window) - bisect.bisect_left(times, t)
        if n >= 0.9 * rate * window:
            return t + window - start
        t += 0.1
    return None


def zipper_sigstop(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    rate = 2000
    z = procs.zipper(options=stats_opt(procs, "zipper"))
    t = Traffic(procs, z.addr, rate=rate, size=256, duration=16.0).start()
    time.sleep(3.0)
    z.signal(signal.SIGSTOP)
    time.sleep(5.0)
    z.signal(signal.SIGCONT)
    cont_t = time.time()
    counts = t.finish(settle=4.0)
    back = first_after(counts["times"], cont_t)
    r90 = _rate90(counts["times"], cont_t, rate)
    rss = rss_kib(z.pid)
    notes = _zipper_notes(zipper_stats(z))
    return [
        row(
            "zipper SIGSTOP 5 s",
            f"{rate} frames/s, 256 B",
            "SIGSTOP the zipper, SIGCONT 5 s later",
            counts=counts,
            times={
                "back after SIGCONT": round(back - cont_t, 3) if back else None,
                "90% rate after SIGCONT": round(r90, 2) if r90 is not None else None,
            },
            rss_kib=rss,
            notes=notes,
            checks=[
                check(
                    "no duplicates to the same connection (goal)",
                    counts["duplicated_same_connection"] == 0,
                    gate=False,
                ),
                check("order kept (goal)", counts["reordered"] == 0, gate=False),
                check("<= 100 lost (goal)", counts["lost"] <= 100, gate=False),
            ],
        )
    ]


def function_sigkill(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    rate = 2000
    z = procs.zipper()
    t = Traffic(procs, z.addr, rate=rate, size=1024, duration=12.0)
    first = t.start_sink(name="sink-1")
    t.start()
    time.sleep(3.0)
    kill_t = time.time()
    first.signal(signal.SIGKILL)
    first.wait(5.0)
    time.sleep(1.0)
    second = t.start_sink(name="sink-2")
    counts = t.finish(settle=3.0)
    rep2 = second.report() or {}
    connected = rep2.get("connected") or time.time()
    back = first_after(sorted(rep2.get("times", [])), connected)
    src = t.source.report() if t.source else None
    held = max((s[1] for s in (src or {}).get("stalls", []) if s[0] >= kill_t - 0.5), default=0.0)
    return [
        row(
            "function SIGKILL, new one after 1 s",
            f"{rate} frames/s, 1 KiB",
            "SIGKILL the function's process; start another 1 s later",
            counts=counts,
            times={
                "new function's first frame": round(back - connected, 3) if back else None,
                "source held": round(held, 3),
            },
            rss_kib=rss_kib(z.pid),
            checks=[
                check(
                    "no duplicates to the same connection",
                    counts["duplicated_same_connection"] == 0,
                ),
                check("source not held > 1 s (goal)", held <= 1.0, gate=False),
            ],
            notes="lost = frames routed to the dead function (nobody observes them once it is gone)",
        )
    ]


def mesh_peer_sigkill(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    pa, pb = free_port(), free_port()
    mesh = {"a": ("127.0.0.1", pa), "b": ("127.0.0.1", pb)}
    a = procs.zipper("a", port=pa, mesh=mesh)
    b = procs.zipper("b", port=pb, mesh=mesh)
    t = Traffic(procs, a.addr, rate=500, size=256, duration=12.0)
    t.start_sink(name="sink-a")  # counted first by finish_each, then sink-b
    t.start_sink(name="sink-b", addr=b.addr)
    t.start()
    time.sleep(3.0)
    b.signal(signal.SIGKILL)
    b.wait(5.0)
    time.sleep(1.0)
    b2 = procs.restart_zipper(b)
    restart_t = time.time()
    counts, remote_counts = t.finish_each(settle=2.0, timeout=30.0)
    back = first_after(remote_counts["times"], restart_t)
    # the dead-peer shutdown: kill b again, then stop a and read its log
    b2.signal(signal.SIGKILL)
    b2.wait(5.0)
    time.sleep(1.5)
    a.stop()
    errs = log_errors(a.log_text())
    return [
        row(
            "mesh peer SIGKILL",
            "500 frames/s on zipper a; functions on a and (via mesh) on b",
            "SIGKILL zipper b, restart 1 s later; at the end kill b and stop a",
            counts=counts,
            times={"mesh back after b restarts": round(back - restart_t, 3) if back else None},
            rss_kib=rss_kib(a.pid),
            checks=[
                check("local pair lost nothing", counts["lost"] == 0),
                check(
                    "no duplicates to the same connection",
                    counts["duplicated_same_connection"]
                    + remote_counts["duplicated_same_connection"]
                    == 0,
                ),
                check("mesh function gets traffic again", back is not None),
                check("clean shutdown with a dead peer", errs["never_retrieved"] == 0),
                check("no traceback in a's log", errs["tracebacks"] == 0, gate=False),
            ],
            notes=(
                f"via mesh: delivered {remote_counts['delivered']} of {remote_counts['written']}"
                f" (lost {remote_counts['lost']}); a's log: {errs}"
            ),
        )
    ]
