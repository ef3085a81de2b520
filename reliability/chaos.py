"""Chaos: kill or pause the zipper, kill a function, kill a mesh peer, impair a WAN mesh.

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
from .harness import Proc, Traffic, account, first_after, free_port, rss_kib

__all__ = [
    "function_sigkill",
    "mesh_peer_sigkill",
    "wan_mesh",
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
    local = t.start_sink(name="sink-a")
    remote = t.start_sink(name="sink-b", addr=b.addr)
    t.start()
    time.sleep(3.0)
    b.signal(signal.SIGKILL)
    b.wait(5.0)
    time.sleep(1.0)
    b2 = procs.restart_zipper(b)
    restart_t = time.time()
    assert t.source is not None
    t.source.wait(30.0)
    time.sleep(2.0)
    local.stop()
    remote.stop()
    src = t.source.report()
    counts = account(src, [local.report()])
    remote_counts = account(src, [remote.report()])
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


# -- WAN mesh ---------------------------------------------------------------------


def wan_mesh(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    names = ("a", "b", "c")
    ports = {n: free_port() for n in names}
    relays: dict[tuple[str, str], Proc] = {}
    for src in names:
        for dst in names:
            if src != dst:
                relays[(src, dst)] = procs.relay(f"relay-{src}{dst}", ports[dst])
    impair = {"delay_ms": 47.5, "jitter_ms": 5.0, "loss": 0.01}  # ~100 ms RTT, 1% loss each way
    for relay in relays.values():
        relay.send(impair)
    zippers = {}
    for n in names:
        mesh = {n: ("127.0.0.1", ports[n])}
        for m in names:
            if m != n:
                mesh[m] = ("127.0.0.1", int(relays[(n, m)].addr.rsplit(":", 1)[1]))
        zippers[n] = procs.zipper(n, port=ports[n], mesh=mesh, options=stats_opt(procs, n))
    steady, cut = (5.0, 10.0) if ctx.short else (10.0, 10.0)
    rate = 200
    t = Traffic(procs, zippers["a"].addr, rate=rate, size=256, duration=steady + cut + 10.0)
    sb = t.start_sink(name="sink-b", addr=zippers["b"].addr)
    sc = t.start_sink(name="sink-c", addr=zippers["c"].addr)
    time.sleep(3.0)  # the links come up through the relays
    t.start()
    time.sleep(steady)
    cut_t = time.time()
    for key in (("a", "c"), ("c", "a")):
        relays[key].send({"cut": True})
    time.sleep(cut)
    heal_t = time.time()
    for key in (("a", "c"), ("c", "a")):
        relays[key].send({"cut": False})
    assert t.source is not None
    t.source.wait(60.0)
    time.sleep(3.0)
    sb.stop()
    sc.stop()
    src = t.source.report()
    cb, cc = account(src, [sb.report()]), account(src, [sc.report()])
    back = first_after(cc["times"], heal_t)
    stats_a = zipper_stats(zippers["a"])
    link_c = stats_a.get("mesh", {}).get("c", {})
    return [
        row(
            "WAN mesh a->b (impaired)",
            f"{rate} frames/s, 256 B, source on a",
            "100 ms RTT, 5 ms jitter, 1% loss on every link",
            counts=cb,
            times={"longest delivery gap": round(cb["max_gap"], 3)},
            checks=[
                check("nothing lost over 1% loss", cb["lost"] == 0, gate=False),
                check("no duplicates", cb["duplicated"] == 0),
                check("order kept", cb["reordered"] == 0),
            ],
        ),
        row(
            "WAN mesh a->c (impaired, 10 s partition)",
            f"{rate} frames/s, 256 B, source on a",
            f"as a->b, plus a<->c cut for {cut:g} s, then healed",
            counts=cc,
            times={"back after heal": round(back - heal_t, 3) if back else None},
            checks=[
                check("traffic back after heal", back is not None),
                check("no duplicates", cc["duplicated"] == 0),
                check("order kept", cc["reordered"] == 0),
                check(
                    "every lost frame counted by the link (goal)",
                    link_c.get("dropped", 0) >= cc["lost"],
                    gate=False,
                ),
            ],
            notes=(
                f"partition from t={cut_t:.0f} for {cut:g} s; a's link to c: "
                f"dropped {link_c.get('dropped')} ({link_c.get('dropped_link_down')} link down, "
                f"{link_c.get('dropped_send_timeout')} send timeout, "
                f"{link_c.get('dropped_unacknowledged')} unacknowledged), downs {link_c.get('downs')}"
            ),
        ),
    ]
