"""The WAN mesh: zippers a, b, c, every link through an impairing relay (``relay.py``).

~100 ms RTT, 5 ms jitter and 1 % loss on every link, then a<->c cut for 10 s and
healed. QUIC retransmits what the relay drops, so over a link that stays up nothing
is lost; a frame is lost only when a link is down (dropped at the sender, as Go
does) or dies with frames its peer never acknowledged. Each row therefore reports
its link's own counters (``Link.stats``) next to the pair's ledger, and checks that
every lost frame is one the link counted.

The source starts only once a's links to b and c are up (bounded). The 81 (native)
and 140 (Python path) frames a->b lost in one short run at 11:04 (commit 284dc5b) cannot
be told apart now: that row carried no link counters. Two ways lose frames over an
impaired link: frames offered before the link is first up are dropped at a (Go does the
same; b starts after a, so a's first Initial can go nowhere and the link may come up
only after the source started), and a link that dies (taken for dead on the lossy
link) loses what it had sent unacknowledged. The first is now excluded by waiting for
the links; both are counted by the link, which the row reports. The first is real:
in a Python-path run at 15:18 a's links came up 4.0 s after the sinks had started,
1 s after the source would have started with the old fixed 3 s wait (about 200
frames at 200/s). Since the wait: 0 lost a->b in 6 native and 2 Python-path runs.
"""

from __future__ import annotations

import time
from typing import Any

from .common import Ctx, check, row, stats_opt, zipper_stats
from .harness import Proc, Traffic, first_after, free_port

__all__ = ["wan_mesh"]

#: Seconds to wait for a's mesh links to come up before the source starts.
LINKS_UP_TIMEOUT = 30.0


def _links_up(zipper: Proc, peers: tuple[str, ...], timeout: float) -> float | None:
    """Seconds until ``zipper``'s log says its links to all ``peers`` are up (None: not in time)."""
    start = time.time()
    while time.time() - start < timeout:
        lines = [ln for ln in zipper.log_text().splitlines() if " is up (" in ln]
        if all(any(f"-> '{p}' (" in ln for ln in lines) for p in peers):
            return time.time() - start
        time.sleep(0.1)
    return None


def _link_note(name: str, link: dict[str, Any]) -> str:
    return (
        f"a's link to {name}: dropped {link.get('dropped')} ({link.get('dropped_link_down')} "
        f"link down, {link.get('dropped_queue_full')} queue full, "
        f"{link.get('dropped_send_timeout')} send timeout, "
        f"{link.get('dropped_unacknowledged')} unacknowledged), downs {link.get('downs')}"
    )


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
    t.start_sink(name="sink-b", addr=zippers["b"].addr)  # finish_each: b, then c
    t.start_sink(name="sink-c", addr=zippers["c"].addr)
    links_up = _links_up(zippers["a"], ("b", "c"), LINKS_UP_TIMEOUT)
    t.start()
    time.sleep(steady)
    cut_t = time.time()
    for key in (("a", "c"), ("c", "a")):
        relays[key].send({"cut": True})
    time.sleep(cut)
    heal_t = time.time()
    for key in (("a", "c"), ("c", "a")):
        relays[key].send({"cut": False})
    cb, cc = t.finish_each(settle=3.0, timeout=60.0)
    back = first_after(cc["times"], heal_t)
    stats_a = zipper_stats(zippers["a"])
    link_b = stats_a.get("mesh", {}).get("b", {})
    link_c = stats_a.get("mesh", {}).get("c", {})
    up_note = (
        f"a's links up {links_up:.1f} s after the sinks started"
        if links_up is not None
        else (f"links not all up after {LINKS_UP_TIMEOUT:g} s")
    )
    return [
        row(
            "WAN mesh a->b (impaired)",
            f"{rate} frames/s, 256 B, source on a",
            "100 ms RTT, 5 ms jitter, 1% loss on every link",
            counts=cb,
            times={"longest delivery gap": round(cb["max_gap"], 3)},
            checks=[
                check("links up before the source", links_up is not None),
                check("nothing lost over 1% loss", cb["lost"] == 0, gate=False),
                check(
                    "every lost frame counted by the link",
                    link_b.get("dropped", 0) >= cb["lost"],
                ),
                check("no duplicates", cb["duplicated"] == 0),
                check("order kept", cb["reordered"] == 0),
            ],
            notes=f"{up_note}; {_link_note('b', link_b)}",
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
            notes=f"partition from t={cut_t:.0f} for {cut:g} s; {_link_note('c', link_c)}",
        ),
    ]
