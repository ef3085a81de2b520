"""The scenarios, and the probes of bad input, floods and slow consumers.

Each scenario starts its own processes, injects its faults and returns result
rows (see ``common.py``); ``SCENARIOS`` lists them in run order. Chaos is in
``chaos.py``; the soak, the fuzzer and the aioquic-client run in ``endurance.py``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import badwire
from .chaos import function_sigkill, mesh_peer_sigkill, zipper_sigkill, zipper_sigstop
from .common import TOKEN, WRONG, Ctx, check, row, stats_opt, zipper_stats
from .endurance import aioquic_clients, fuzz, soak
from .harness import (
    Proc,
    Processes,
    Traffic,
    cpu_seconds,
    lower_priority,
    max_gap_within,
    rss_kib,
)
from .wan import wan_mesh

__all__ = ["SCENARIOS", "Scenario"]


# -- bad input -----------------------------------------------------------------


def bad_input(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    z = procs.zipper(auth_token=TOKEN, options=stats_opt(procs, "zipper"))
    t = Traffic(procs, z.addr, rate=500, size=256, duration=600, credential=f"token:{TOKEN}")
    t.start()
    time.sleep(1.0)
    rows = asyncio.run(_bad_cases(ctx, z))
    assert t.source is not None
    t.source.signal(signal.SIGTERM)  # ends the source early; it reports what it wrote
    counts = t.finish(settle=2.0, timeout=20.0)
    stats = zipper_stats(z)
    rows.append(
        row(
            "bad input: the pair beside it",
            "500 frames/s, 256 B",
            f"{len(badwire.CASES)} bad connections and a brute force",
            counts=counts,
            times={"longest delivery gap": round(counts["max_gap"], 3)},
            checks=[
                check("pair lost nothing", counts["lost"] == 0),
                check("no duplicates", counts["duplicated"] == 0),
                check("order kept", counts["reordered"] == 0),
            ],
            notes=f"zipper rejections {stats.get('rejections')}, protocol errors {stats.get('protocol_errors')}",
        )
    )
    return rows


async def _bad_cases(ctx: Ctx, z: Proc) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    case_ctx = {"credential": f"token:{TOKEN}", "wrong_token": WRONG}
    for case in badwire.CASES:
        before = z.log.stat().st_size
        res = await badwire.run_case(case, z.addr, case_ctx)
        await asyncio.sleep(0.3)
        grew = z.log.stat().st_size - before
        checks = [check("zipper alive", z.alive())]
        if case.expect_close:
            checks.append(check("closed by the zipper", res["closed_by_zipper"]))
            checks.append(check("a close reason", bool(res["reason"])))
        big = case.name in ("huge-name", "many-tags")
        checks.append(check("log growth < 16 KiB", grew < 16 * 1024, gate=not big))
        if case.name == "wrong-token":
            checks.append(
                check("presented token not logged", WRONG not in z.log_text(), gate=False)
            )
        rows.append(
            row(
                f"bad input: {case.name}",
                "pair 500/s beside it",
                case.what,
                times={"closed after": res["close_s"]} if case.expect_close else {},
                rss_kib=rss_kib(z.pid),
                checks=checks,
                notes=f"reason: {res['reason'] or '-'}; log +{grew} B",
            )
        )
    seconds = 3.0 if ctx.short else 5.0
    brute = await badwire.brute_force(z.addr, WRONG, seconds)
    rows.append(
        row(
            "bad input: brute force",
            "pair 500/s beside it",
            "wrong tokens back to back from one address",
            rss_kib=rss_kib(z.pid),
            checks=[
                check(
                    "at most 10 credential checks/s (+ a first burst of 10)",
                    brute["checked"] <= 10 * seconds + 10,
                ),
                check("wrong tokens never logged", WRONG not in z.log_text()),
            ],
            notes=f"{brute['attempts']} attempts, {brute['checked']} checked ({brute['checked_per_s']}/s)",
        )
    )
    return rows


# -- floods ----------------------------------------------------------------------


def _wait_line(proc: Proc, timeout: float) -> str:
    from .harness import _read_line

    return _read_line(proc, timeout)


def flood(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    cap = 100 if ctx.short else 1000
    z = procs.zipper(options={"quic": {"max_connections": cap}, **stats_opt(procs, "zipper")})
    t = Traffic(procs, z.addr, rate=500, size=256, duration=600).start()
    crowd = procs.crowd(z.addr, cap + cap // 2)
    line = _wait_line(crowd, 600.0)
    _, accepted, refused, failed = (line.split() + ["?"] * 4)[:4]
    rss = rss_kib(z.pid)
    crowd.send("close")
    _wait_line(crowd, 30.0)
    assert t.source is not None
    t.source.signal(signal.SIGTERM)
    counts = t.finish(settle=2.0, timeout=30.0)
    ok_cap = accepted.isdigit() and int(accepted) + 2 <= cap
    return [
        row(
            "connection flood to the cap",
            f"{cap + cap // 2} connections, cap {cap}, pair 500/s",
            "more connections than max_connections",
            counts=counts,
            times={"longest delivery gap": round(counts["max_gap"], 3)},
            rss_kib=rss,
            checks=[
                check("cap enforced", ok_cap),
                check("pair lost nothing", counts["lost"] == 0),
                check("no duplicates", counts["duplicated"] == 0),
                check("order kept", counts["reordered"] == 0),
            ],
            notes=f"accepted {accepted}, refused {refused}, failed {failed}",
        )
    ]


async def _probe_handshake(
    addr: str, dials: list[float] | None = None, parts: list[tuple[float, float]] | None = None
) -> float | None:
    from yomo._version import SPEC_VERSION
    from yomo.client.core import parse_address
    from yomo.transport import QuicSettings, TlsConfig, dial
    from yomo.wire import ClientType, HandshakeAckFrame, HandshakeFrame

    host, port = parse_address(addr)
    t0 = time.time()
    try:
        conn = await dial(host, port, tls=TlsConfig(), settings=QuicSettings())
        if dials is not None:  # the QUIC handshake's part
            dials.append(time.time() - t0)
        conn.send_nowait(
            HandshakeFrame(
                name="probe", id="probe-0", client_type=ClientType.SOURCE, version=SPEC_VERSION
            )
        )
        quic = time.time() - t0
        reply = await asyncio.wait_for(conn.read_frame(), 30.0)
    except Exception:
        return None
    took = time.time() - t0
    await conn.aclose("probe done")
    if not isinstance(reply, HandshakeAckFrame):
        return None
    if parts is not None:  # (QUIC handshake, then HandshakeFrame -> HandshakeAck)
        parts.append((quic, took - quic))
    return took


#: Connections per crowd process in the mass close: one process holds ~2,500 native
#: client connections (one UDP socket each) comfortably; 10,000 need four.
CROWD_PER_PROCESS = 2500


def _crowd_env() -> dict[str, str] | None:
    """The mass close's crowd dials on the native client wherever it is installed.

    The crowd stands in for clients on other machines; what the scenario measures is
    the zipper of the run's path and that path's own clients (the pair, the probes).
    On this 2-core machine 10,000 qh3 crowd connections took about as much CPU for
    their keep-alive ACKs as the zipper did for its PINGs (~0.7 core each).
    """
    from yomo.transport import native

    return {"YOMO_QUIC_BACKEND": "native"} if native.available() else None


def _crowds(procs: Processes, addr: str, n: int) -> tuple[list[Proc], list[str]]:
    """``n`` idle connections from ceil(n / CROWD_PER_PROCESS) processes, all opened."""
    k = max(1, -(-n // CROWD_PER_PROCESS))
    env = _crowd_env()
    crowds = [
        procs.crowd(addr, n // k + (i < n % k), env=env, parallel=32, attempts=3) for i in range(k)
    ]
    return crowds, [_wait_line(c, 900.0) for c in crowds]


async def _probe_handshakes(
    addr: str,
    seconds: float,
    dials: list[float] | None = None,
    parts: list[tuple[float, float]] | None = None,
) -> list[float | None]:
    """New handshakes one after another for ``seconds``: each one's time (None: failed);
    ``dials`` gets each one's QUIC handshake time, ``parts`` each acknowledged one's
    QUIC part and the rest (its HandshakeFrame to the zipper's HandshakeAck)."""
    took: list[float | None] = []
    end = time.time() + seconds
    while time.time() < end:
        took.append(await _probe_handshake(addr, dials, parts))
        await asyncio.sleep(0.1)
    return took


def mass_close(ctx: Ctx) -> list[dict[str, Any]]:
    procs = ctx.procs
    n = 1000 if ctx.short else 10_000
    z = procs.zipper(options={"quic": {"max_connections": n + 100}, **stats_opt(procs, "zipper")})
    crowds, lines = _crowds(procs, z.addr, n)
    opened = sum(int(ln.split()[1]) for ln in lines if ln.startswith("OPEN"))
    rss = rss_kib(z.pid)
    t = Traffic(procs, z.addr, rate=500, size=256, duration=600).start()
    time.sleep(3.0)
    for crowd in crowds:  # their teardown is the clients' own work, not the zipper's
        lower_priority(crowd.pid)
    cpu0 = cpu_seconds(z.pid)
    close_t = time.time()
    for crowd in crowds:  # every process closes all of its connections in one loop turn
        crowd.send("close")
    dials: list[float] = []
    parts: list[tuple[float, float]] = []
    probes = asyncio.run(_probe_handshakes(z.addr, 8.0, dials, parts))
    quic, answer = max(parts, key=sum, default=(0.0, 0.0))
    slowest = None if None in probes or not probes else max(p for p in probes if p is not None)
    closed = [_wait_line(c, 30.0) for c in crowds]
    time.sleep(max(0.0, close_t + 8.0 - time.time()))
    cpu = cpu_seconds(z.pid) - cpu0
    assert t.source is not None
    t.source.signal(signal.SIGTERM)
    counts = t.finish(settle=2.0, timeout=60.0)
    stall = max_gap_within(counts["times"], close_t, close_t + 8.0)
    stats = zipper_stats(z)
    left = stats.get("connections")
    reasons: dict[str, int] = {}
    for crowd in crowds:
        crowd.wait(10.0)
        for why, k in ((crowd.report() or {}).get("reasons") or {}).items():
            reasons[why] = reasons.get(why, 0) + k
    return [
        row(
            "mass close",
            f"{opened} idle connections from {len(crowds)} processes"
            f"{' (native clients)' if _crowd_env() else ''}, pair 500/s",
            f"all {opened} close at once",
            counts=counts,
            times={
                "others stalled": round(stall, 3),
                "slowest new handshake during close": round(slowest, 3) if slowest else None,
            },
            rss_kib=rss,
            checks=[
                check(f"{n} connections open", opened >= n, gate=False),
                check("no stall over 1 s (goal)", stall <= 1.0, gate=False),
                check(
                    "new handshakes within 1 s (goal)",
                    slowest is not None and slowest <= 1.0,
                    gate=False,
                ),
                check("pair lost nothing", counts["lost"] == 0),
                check("no duplicates", counts["duplicated"] == 0),
                check("all closes sent", all(c == "CLOSED" for c in closed)),
            ],
            notes=(
                f"crowds: {'; '.join(lines)}; {len(probes)} new handshakes in the 8 s "
                f"({probes.count(None)} failed; slowest QUIC handshake of them "
                f"{max(dials, default=0.0):.3f} s; the slowest one: QUIC {quic:.3f} s, then "
                f"HandshakeFrame -> HandshakeAck {answer:.3f} s); "
                f"zipper CPU {cpu:.2f} s in the 8 s after the close; "
                f"connections left at the end {left}; not opened: {reasons or 'none'}"
            ),
        )
    ]


def _slow(ctx: Ctx, policy: str) -> list[dict[str, Any]]:
    procs = ctx.procs
    z = procs.zipper(options={"slow_consumer": policy, **stats_opt(procs, "zipper")})
    t = Traffic(procs, z.addr, rate=500, size=256, duration=8.0).start()
    slow = Traffic(procs, z.addr, tag=0x20, rate=2000, size=1024, duration=8.0, name="slow")
    slow.start_sink(stall=True)
    slow.start(write_timeout=3.0)
    counts = t.finish(settle=2.0)
    slow_counts = slow.finish(settle=0.5)
    stats = zipper_stats(z)
    drops = stats.get("drops", 0)
    checks = [
        check("pair lost nothing", counts["lost"] == 0),
        check("pair: no duplicates", counts["duplicated"] == 0),
        check("pair: order kept", counts["reordered"] == 0),
    ]
    if policy == "block":
        checks.append(check("zipper dropped nothing", drops == 0))
    else:
        checks.append(check("drops counted", drops > 0))
        checks.append(check("slow producer never failed", slow_counts["failed_writes"] == 0))
    return [
        row(
            f"slow consumer, {policy}",
            "pair 500/s + a 2,000/s 1 KiB producer to a function that stops reading",
            "function handler blocks for good",
            counts=counts,
            times={"pair's longest gap": round(counts["max_gap"], 3)},
            rss_kib=rss_kib(z.pid),
            checks=checks,
            notes=(
                f"slow producer: wrote {slow_counts['written']}, failed {slow_counts['failed_writes']}; "
                f"zipper drops {drops}"
            ),
        )
    ]


def slow_block(ctx: Ctx) -> list[dict[str, Any]]:
    return _slow(ctx, "block")


def slow_drop(ctx: Ctx) -> list[dict[str, Any]]:
    return _slow(ctx, "drop")


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Ctx], list[dict[str, Any]]]
    short: bool = True
    """Part of the short run (``scripts/test.sh``)."""
    repeats: bool = True
    """Repeated (3x in the full run); False for the soak and the fuzzer."""


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("bad-input", bad_input),
    Scenario("flood", flood),
    Scenario("mass-close", mass_close),
    Scenario("slow-block", slow_block),
    Scenario("slow-drop", slow_drop),
    Scenario("zipper-sigkill", zipper_sigkill),
    Scenario("zipper-sigstop", zipper_sigstop, short=False),
    Scenario("function-sigkill", function_sigkill),
    Scenario("mesh-peer-sigkill", mesh_peer_sigkill),
    Scenario("wan-mesh", wan_mesh),
    Scenario("aioquic-clients", aioquic_clients),
    Scenario("soak", soak, repeats=False),
    Scenario("fuzz", fuzz, repeats=False),
)
