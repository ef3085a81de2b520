"""Issue 16's goals, one line each, from the last saved runs: ``python bench/goals.py [--publish]``.

Reads bench/results/latest.json (bench/run.py: Go clients, our zipper vs Go's, the native
profile) and bench/results/nats.json (bench/nats_compare.py: Python clients, our zipper vs
NATS, the loopback UDP ceiling) and says for every goal: met or not, by how much, and what
the same runs show limits it. ``--publish`` writes its section at the top of
bench/RESULTS.md (``bash bench/run.sh`` runs it last); without it the section is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (bench/run.py: the goal table of goal 3, the profile areas)

__all__ = ["main", "render"]

RESULTS = BENCH / "RESULTS.md"
LATEST = BENCH / "results" / "latest.json"
NATS = BENCH / "results" / "nats.json"
BEGIN = "<!-- bench/goals.py: generated section begin -->"
END = "<!-- bench/goals.py: generated section end -->"


def _load(path: Path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text()) if path.exists() else {}


def _median(rows: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return statistics.median(values) if values else None


def _verdict(met: bool, by: float, word: str) -> str:
    return "**met**" if met else f"**not met**: {by * 100:.0f} % {word}"


def _top_areas(prof: dict[str, Any], n: int = 4) -> str:
    """The largest areas of a profile, as text."""
    areas = list((prof.get("by_area") or {}).items())[:n]
    if not areas:
        return "no profile in this run"
    tool = prof.get("tool", "py-spy")
    return f"{tool}: " + ", ".join(f"{k} {v:.0f} %" for k, v in areas)


def _ours_share(prof: dict[str, Any]) -> str:
    """How much of the zipper's CPU is our own Rust code (framing, routing)."""
    areas = prof.get("by_area") or {}
    ours = next((v for k, v in areas.items() if k.startswith("ours in Rust")), None)
    if prof.get("tool") != "perf" or ours is None:
        return "our own share not measured"
    return f"our framing and routing are {ours:.0f} % of it, the rest is QUIC, crypto, kernel UDP and wake-ups"


def _clients(n: dict[str, Any], size: int) -> dict[str, float | None]:
    runs = n.get("runs", {})
    out: dict[str, float | None] = {}
    for who in ("yomo", "nats"):
        rows = runs.get(f"{who}-{size}", [])
        for key in ("fps", "producer_cpu_us_per_frame", "consumer_cpu_us_per_frame"):
            out[f"{who}_{key}"] = _median(rows, key)
        out[f"{who}_server"] = _median(rows, "server_cpu_us_per_frame")
    return out


def _us(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} µs"


def _busiest(c: dict[str, float | None]) -> str:
    """Which of our three processes needs the most CPU per frame, and what that allows."""
    ours = {
        "our source": c["yomo_producer_cpu_us_per_frame"],
        "our function": c["yomo_consumer_cpu_us_per_frame"],
        "our zipper": c["yomo_server"],
    }
    nats = (
        f"nats-py's publisher {_us(c['nats_producer_cpu_us_per_frame'])}, subscriber "
        f"{_us(c['nats_consumer_cpu_us_per_frame'])}, nats-server {_us(c['nats_server'])}"
    )
    known = {k: v for k, v in ours.items() if v is not None}
    text = "CPU per frame: " + ", ".join(f"{k} {_us(v)}" for k, v in ours.items())
    text += f" ({nats})"
    if len(known) == len(ours):
        who, most = max(known.items(), key=lambda kv: kv[1])
        text += (
            f"; the busiest is {who}: one core allows it {1e6 / most:,.0f} frames/s, and "
            "the three processes share 2 cores with other jobs"
        )
    return text


def _goal1(n: dict[str, Any]) -> list[str]:
    rows: list[str] = []
    udp = _median(n.get("runs", {}).get("udp-1024", []), "fps")
    for size, is_goal in ((1024, True), (64, False)):
        c = _clients(n, size)
        ours, nats = c["yomo_fps"], c["nats_fps"]
        if not ours or not nats:
            rows.append(f"| 1 | Python clients, {size} B | not measured | | |")
            continue
        ratio = ours / nats
        verdict = _verdict(ratio >= 1.0, 1 - ratio, "short") if is_goal else "(no goal at 64 B)"
        limit = _busiest(c)
        rows.append(
            f"| 1 | Python clients, {size} B, >= 1.0x nats-py/nats-server"
            f"{'' if is_goal else ' (for scale)'} | {ratio:.2f}x ({ours:,.0f} vs {nats:,.0f} "
            f"frames/s) | {verdict} | {limit} |"
        )
        if is_goal:
            if udp:
                share = f"; the loopback UDP ceiling (one Python sender) was {udp:,.0f}/s"
                if udp < 200_000:
                    share += ": one Python process here does not send 200,000 datagrams/s"
            else:
                share = ""
            rows.append(
                f"| 1 | stretch: 200,000 frames/s at 1 KiB | {ours:,.0f} frames/s | "
                + _verdict(ours >= 200_000, 1 - ours / 200_000, "short")
                + f" | as above{share} |"
            )
    return rows


def _goal2(latest: dict[str, Any], n: dict[str, Any]) -> list[str]:
    rows = []
    summary = latest.get("summary", {})
    prof_go = latest.get("profile") or {}
    prof_py = latest.get("profile_py") or {}
    checks = [
        (1024, "Python clients", _clients(n, 1024)["yomo_server"], 5.0, prof_py),
        (64, "Python clients", _clients(n, 64)["yomo_server"], 2.0, prof_py),
    ]
    for case, label, limit in run.CPU_GOALS:
        st = (summary.get(case, {}).get("ours") or {}).get("zipper_cpu_us_per_frame")
        size = 1024 if "1024" in case else 64
        if "Go clients" in label:
            checks.append((size, "Go clients", st["median"] if st else None, limit, prof_go))
    for size, who, value, limit, prof in checks:
        what = f"zipper CPU per routed {'1 KiB' if size == 1024 else '64 B'} frame, {who}"
        if value is None:
            rows.append(f"| 2 | {what} <= {limit:g} µs | not measured | | |")
            continue
        rows.append(
            f"| 2 | {what} <= {limit:g} µs | {value:.1f} µs | "
            + _verdict(value <= limit, value / limit - 1, "over")
            + f" | {_top_areas(prof)} (profile at 1 KiB, {who}); "
            f"{_ours_share(prof)} |"
        )
    return rows


def _goal3(latest: dict[str, Any]) -> list[str]:
    rows = []
    summary = latest.get("summary", {})

    def cpu(case: str, z: str, key: str = "zipper_cpu_us_per_frame") -> float | None:
        st = (summary.get(case, {}).get(z) or {}).get(key)
        return st["median"] if st else None

    def load(case: str) -> str:
        us, go, busy = cpu(case, "ours"), cpu(case, "go"), cpu(case, "ours", "zipper_cpu_util")
        if us is None or go is None or busy is None:
            return "zipper CPU not measured"
        return (
            f"zipper CPU per frame: ours {us:.1f} µs, Go's {go:.1f} µs; ours busy {busy:.0%} "
            "of a core"
        )

    limits = {
        "Throughput 64 B": f"{load('throughput-64')}; the rest of 2 cores runs the Go source and "
        "function",
        "Throughput 1 KiB": f"{load('throughput-1024')}; "
        + _top_areas(latest.get("profile") or {}),
        "Throughput 64 KiB": f"{load('throughput-65536')} (not profiled at 64 KiB)",
        "Latency @1,000/s p99": "not profiled",
        "Idle functions: memory per connection": "quinn's per-connection state and two tokio "
        "tasks per connection (measured for da5e5b9: one stream per connection, no session "
        "tickets, 120 -> 36 KiB)",
        "Idle functions: handshakes": "not profiled (the Go load generator keeps 16 handshakes "
        "in flight)",
    }
    for it in run.goal_results(summary):
        if it["goal"] != 3:
            continue
        label = it["what"].removesuffix(", ours/Go")
        target = f"{it['rel']} {it['target']:g}x Go v1.22.3's zipper"
        if "value" not in it:
            rows.append(f"| 3 | Go clients: {label} {target} | not measured | | |")
            continue
        word = "short" if it["rel"] == ">=" else "over"
        rows.append(
            f"| 3 | Go clients: {label} {target} | {it['value']:.2f}x ({run._fmt(it['ours'])} vs "
            f"{run._fmt(it['go'])}) | {_verdict(it['met'], it['by'], word)} | "
            f"{limits.get(label, '')} |"
        )
    return rows


def _loads(latest: dict[str, Any], n: dict[str, Any]) -> str:
    a = [x["loadavg_1m_before"] for x in latest.get("runs", []) if "loadavg_1m_before" in x]
    b = [r["load1"] for rows in n.get("runs", {}).values() for r in rows if "load1" in r]
    parts = []
    if a:
        parts.append(
            f"bench/run.py ({latest.get('finished', '?')}): median {statistics.median(a):.1f}, "
            f"max {max(a):.1f}"
        )
    if b:
        parts.append(
            f"bench/nats_compare.py ({n.get('when', '?')}): median {statistics.median(b):.1f}, "
            f"max {max(b):.1f}"
        )
    return "; ".join(parts) or "not recorded"


def render(latest: dict[str, Any], n: dict[str, Any]) -> str:
    """The goals section, from the two saved runs."""
    src = latest.get("source", "?")
    L = [
        BEGIN,
        "## Issue 16's goals: where we stand (bench/goals.py)",
        "",
        "Generated by `python bench/goals.py --publish` from the runs below: "
        f"bench/results/latest.json (source at {src}) and bench/results/nats.json. "
        f"1-minute load average during them (2 cores): {_loads(latest, n)}. On a loaded "
        "machine absolute rates are low for every column; the ratios come from interleaved "
        "runs. 'What limits it' is what the same runs measured (CPU per frame of each "
        "process, the perf profile of the native zipper further down).",
        "",
        "| goal | target | measured | verdict | what limits it |",
        "|---|---|---|---|---|",
        *_goal1(n),
        *_goal2(latest, n),
        *_goal3(latest),
        "| 4 | default install on Python 3.10-3.13, mutual TLS, every feature on that path; "
        "a pure-Python path tested and selectable | `scripts/test.sh`: full suite on the "
        f"main interpreter ({latest.get('machine', {}).get('python', '?')} here), unit tests and the integration core (routing, "
        "handshake, bad input, backpressure, both client APIs, TLS with mutual TLS, "
        "reconnect, mesh) under 3.10 and 3.13 on the native path, unit and aiopquic tests "
        "under 3.12, the integration core on the pure-Python path (`YOMO_QUIC_BACKEND=qh3`) "
        "| **met** where those interpreters are installed (the passes say when one is "
        "skipped) | one abi3 module serves 3.10+; without Rust at install time the "
        "pure-Python path is used |",
    ]
    udp = _median(n.get("runs", {}).get("udp-1024", []), "fps")
    ours = _clients(n, 1024)["yomo_fps"]
    if udp and ours:
        L.append(
            "| 5 | NATS column and each figure as a share of the loopback UDP ceiling | "
            f"bench/nats_compare.py section: ours at 1 KiB {ours / udp:.2f}x of the ceiling "
            f"({udp:,.0f} datagrams/s) | **met** | |"
        )
    L += ["", END]
    return "\n".join(L)


def publish(section: str) -> None:
    """Put the section into RESULTS.md: in place, or first after the title and intro."""
    text = RESULTS.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        RESULTS.write_text(head + section + rest.split(END, 1)[1])
        return
    head, sep, tail = text.partition(run.BEGIN)
    RESULTS.write_text(head + section + "\n\n" + sep + tail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--publish", action="store_true", help="write the section into RESULTS.md")
    args = ap.parse_args(argv)
    latest, n = _load(LATEST), _load(NATS)
    if not latest and not n:
        print("bench/goals.py: no saved runs (run bash bench/run.sh first)", file=sys.stderr)
        return 1
    section = render(latest, n)
    if args.publish:
        publish(section)
    else:
        print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
