"""Where our zipper's CPU per routed frame goes with Go clients: ``python bench/frame_cost.py``.

A diagnostic beside bench/run.py (not part of the suite): a Go v1.22.3 source
(``ybench source``) pushes frames at full speed through our zipper to a Go function
(``ybench sink``), as in run.py's throughput scenario, and the zipper's process is
counted for the source's run: CPU (psutil), and with ``--stat`` the kernel's counts
from ``perf stat -p`` (context switches, syscalls by kind: recvmmsg, sendmsg,
epoll_wait, futex, all) divided by the frames the function received.

Several source trees can be compared, interleaved (``--tree NAME=DIR``: our zipper
runs with PYTHONPATH=DIR, e.g. a copy of ``src`` with another build of
``yomo/_native.abi3.so``); every round runs each tree once, the order alternating.
Prints one line per run and the medians with min-max per tree; ``--json FILE`` keeps
the runs. The 1-minute load average is recorded before every run.

``--quic`` adds quinn's statistics of the zipper's connection to the function
(``YOMO_NATIVE_QUIC_STATS``: packets sent, declared lost, congestion events, the window
and RTT at the close; free). ``--quic-go`` adds quic-go's view in the Go function
(``ybench sink -quicstats``: packets it dropped, by trigger; ``dos_prevention`` is its
connection's queue of unprocessed packets being full). quic-go's tracing costs the
function CPU, so rates with ``--quic-go`` are not comparable with rates without.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as bench  # noqa: E402

#: quinn's connection statistics of the zipper's connection to the function (--quic).
QUINN_KEYS = ("sent_packets", "lost_packets", "congestion_events", "cwnd", "rtt_us", "acks_rx")
STREAM_FUNCTION = 0x5D

#: perf events counted in the zipper's process (all threads) with --stat.
EVENTS = {
    "context-switches": "cs",
    "syscalls:sys_enter_recvmmsg": "recvmmsg",
    "syscalls:sys_enter_sendmsg": "sendmsg",
    "syscalls:sys_enter_epoll_wait": "epoll_wait",
    "syscalls:sys_enter_futex": "futex",
    "syscalls:sys_enter_write": "write",
    "raw_syscalls:sys_enter": "syscalls",
}


def ctx_switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches of every thread of `pid` so far."""
    vol = invol = 0
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for line in (task / "status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        invol += int(line.split()[1])
    return vol, invol


def udp_counters() -> dict[str, int]:
    """The machine's UDP counters (/proc/net/snmp): RcvbufErrors counts datagrams dropped
    at a full socket receive buffer, anyone's."""
    lines = [
        ln.split()
        for ln in Path("/proc/net/snmp").read_text().splitlines()
        if ln.startswith("Udp:")
    ]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]), strict=False))


def set_sched(pid: int, how: str) -> None:
    """Experiment: every thread of `pid` to SCHED_BATCH ("batch") or a custom fair slice
    ("slice=<us>", Linux 6.12+ sched_setattr's sched_runtime for SCHED_OTHER)."""
    import ctypes

    class Attr(ctypes.Structure):
        _fields_ = [
            ("size", ctypes.c_uint32),
            ("policy", ctypes.c_uint32),
            ("flags", ctypes.c_uint64),
            ("nice", ctypes.c_int32),
            ("prio", ctypes.c_uint32),
            ("runtime", ctypes.c_uint64),
            ("deadline", ctypes.c_uint64),
            ("period", ctypes.c_uint64),
            ("util_min", ctypes.c_uint32),
            ("util_max", ctypes.c_uint32),
        ]

    libc = ctypes.CDLL(None, use_errno=True)
    for task in Path(f"/proc/{pid}/task").iterdir():
        tid = int(task.name)
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        a = Attr(size=ctypes.sizeof(Attr), nice=nice)
        if how == "batch":
            a.policy = 3
        elif how.startswith("slice="):
            a.policy = 0
            a.runtime = int(float(how.split("=", 1)[1]) * 1000)
        if libc.syscall(314, tid, ctypes.byref(a), 0) != 0:
            raise OSError(ctypes.get_errno(), f"sched_setattr {tid} {how}")


def one_run(
    r: bench.Runner,
    size: int,
    stat: bool,
    record: str | None = None,
    sched: str = "",
    quic: bool = False,
    quic_go: bool = False,
) -> dict[str, Any]:
    """One throughput run (bench/run.py's scenario 1, Go clients) with the zipper counted."""
    qfile = Path(r.tmp) / f"quinn-{time.monotonic_ns()}.jsonl"
    if quic:
        r.base_env = {**r.base_env, "YOMO_NATIVE_QUIC_STATS": str(qfile)}
    with r.zipper("ours") as (z, addr):
        flags = ["-quicstats"] if quic_go else []
        sink = r.go("sink", f"-zipper={addr}", f"-observe={bench.TAG_IN}", f"-size={size}", *flags)
        src = None
        perf = None
        try:
            bench._connected(sink)
            if sched:
                set_sched(z.pid, sched)
            out = Path(r.tmp) / f"stat-{z.pid}.csv"
            if stat or record:
                cmd = [
                    "perf",
                    "stat",
                    "-x",
                    ",",
                    "-o",
                    str(out),
                    "-e",
                    ",".join(EVENTS),
                    "-p",
                    str(z.pid),
                ]
                if record:
                    cmd = ["perf", "record", "-F", "1999", "-g", "-o", record, "-p", str(z.pid)]
                perf = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                time.sleep(0.3)  # attached before the source starts
            cpu0, t0 = bench._zipper_cpu(z), time.monotonic()
            cs0 = ctx_switches(z.pid)
            udp0 = udp_counters()
            src = r.go(
                "source",
                f"-zipper={addr}",
                f"-tag={bench.TAG_IN}",
                f"-size={size}",
                f"-duration={r.s.duration}s",
            )
            summary = src.wait_event("summary", r.s.duration + 30)
            written = int(summary["written"])
            drain = bench._wait_drained(sink, written)
            cpu1, t1 = bench._zipper_cpu(z), time.monotonic()
            cs1 = ctx_switches(z.pid)
            udp1 = udp_counters()
            counts: dict[str, float] = {"vcs": cs1[0] - cs0[0], "ivcs": cs1[1] - cs0[1]}
            counts["rcvbuf_drops"] = udp1["RcvbufErrors"] - udp0["RcvbufErrors"]
            if perf is not None:
                os.killpg(perf.pid, signal.SIGINT)
                perf.wait(10)
                for line in out.read_text().splitlines() if out.exists() else ():
                    parts = line.split(",")
                    if len(parts) > 2 and parts[2] in EVENTS:
                        with contextlib.suppress(ValueError):
                            counts[EVENTS[parts[2]]] = float(parts[0])
        finally:
            if perf is not None and perf.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(perf.pid, signal.SIGKILL)
            if src is not None:
                r.stop(src)
            r.stop(sink)
        got = sink.wait_event("summary", 10)
    frames = int(got["frames"])
    elapsed = float(got["elapsed_s"]) or 1e-9
    res: dict[str, Any] = {
        "fps": (frames - 1) / elapsed if frames > 1 else 0.0,
        "frames": frames,
        "lost": written - frames,
        "out_of_order": int(got.get("out_of_order", 0)),
        "drain": drain,
        "cpu_util": (cpu1 - cpu0) / max(t1 - t0, 1e-9),
        "cpu_us": 1e6 * (cpu1 - cpu0) / max(frames, 1),
    }
    if quic or quic_go:
        res.update(quic_counts(qfile, got))
    for k, v in counts.items():
        res[f"{k}_per_frame"] = v / max(frames, 1)
    return res


def quic_counts(qfile: Path, sink_summary: dict[str, Any]) -> dict[str, Any]:
    """quinn's view (the zipper's connection to the function) and quic-go's (the function's
    dropped packets by trigger, its events received and sent) of one run."""
    out: dict[str, Any] = {}
    lines = qfile.read_text().splitlines() if qfile.exists() else []
    for line in lines:
        row = json.loads(line)
        if row.get("client_type") == STREAM_FUNCTION:
            out.update({f"q_{k}": row[k] for k in QUINN_KEYS if k in row})
    q = sink_summary.get("quic")
    if not q:
        return out
    events = q.get("events", {})
    out["go_received"] = events.get("transport:packet_received", 0)
    out["go_sent"] = events.get("transport:packet_sent", 0)
    for trigger, n in (q.get("dropped") or {}).items():
        out[f"go_dropped_{trigger}"] = n
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tree", action="append", default=[], metavar="NAME=DIR", help="source tree (repeatable)"
    )
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument(
        "--case",
        default="throughput",
        help="throughput (default), py (Python clients, bench/run.py's scenario 5), "
        "or latency-1000 / latency-10000 (bench/run.py's scenario 3, p50/p99)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument(
        "--stat", action="store_true", help="count syscalls and context switches (perf stat)"
    )
    ap.add_argument(
        "--record", metavar="FILE", help="perf record -g the zipper (kernel call chains) into FILE"
    )
    ap.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="for our zipper"
    )
    ap.add_argument(
        "--quic",
        action="store_true",
        help="quinn's counts of the packets toward the function (sent, lost, window)",
    )
    ap.add_argument(
        "--quic-go",
        action="store_true",
        help="... and quic-go's in the Go function (dropped by trigger; costs it CPU)",
    )
    ap.add_argument("--nice", type=int, default=-10)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    if args.nice:
        with contextlib.suppress(OSError):
            os.nice(args.nice)
    extra_env = dict(e.split("=", 1) for e in args.env)
    trees = [t.split("=", 1) for t in args.tree] or [["here", str(bench.ROOT / "src")]]
    settings = bench.Settings.make(False, "default", None)
    settings = bench.dataclasses.replace(settings, duration=args.duration, budget=1e9)
    _toolchain, bins, ybench = bench.build(lambda s: print(s, flush=True))
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="frame-cost-") as tmp:
        r = bench.Runner(settings, bins, ybench, Path(tmp))
        try:
            for rnd in range(args.rounds):
                order = trees if rnd % 2 == 0 else list(reversed(trees))
                for name, src in order:
                    src, _, sched = src.partition(":")
                    env = dict(extra_env)
                    if sched.startswith("env:"):
                        env.update(dict(e.split("=", 1) for e in sched[4:].split(",")))
                        sched = ""
                    r.base_env = {"PYTHONPATH": str(Path(src).resolve()), **env}
                    load = os.getloadavg()[0]
                    stamp = time.strftime("%H:%M:%S", time.gmtime())
                    try:
                        if args.case.startswith("latency-"):
                            if sched:
                                raise SystemExit("--case latency-* takes no scheduling experiment")
                            m = bench.run_latency(r, "ours", int(args.case.split("-")[1]))
                            m.update(
                                fps=m.get("rate_achieved", 0.0),
                                cpu_us=0.0,
                                cpu_util=0.0,
                                lost=m.get("lost", 0),
                            )
                            m.setdefault("out_of_order", 0)
                        elif args.case == "py":
                            m = bench.run_throughput(r, "ours", args.size, clients="py")
                            m.update(
                                cpu_us=m["zipper_cpu_us_per_frame"], cpu_util=m["zipper_cpu_util"]
                            )
                        else:
                            m = one_run(
                                r, args.size, args.stat, args.record, sched, args.quic, args.quic_go
                            )
                    finally:
                        r.stop_all()
                    m.update(tree=name, round=rnd + 1, load=round(load, 2), utc=stamp)
                    runs.append(m)
                    extra = " ".join(
                        f"{k.removesuffix('_per_frame')}={v:.2f}"
                        for k, v in m.items()
                        if k.endswith("_per_frame")
                    )
                    extra += "".join(
                        f" {k}={v}" for k, v in m.items() if k.startswith(("q_", "go_"))
                    )
                    print(
                        f"{stamp} load {load:4.1f} {name:>6} #{rnd + 1}: {m['fps']:9,.0f} frames/s "
                        f"cpu {m['cpu_us']:6.2f} us/frame ({m['cpu_util']:.2f} core) lost={m['lost']} "
                        f"ooo={m['out_of_order']} {extra}",
                        flush=True,
                    )
        finally:
            r.stop_all()
    print()
    keys = [
        "fps",
        "cpu_us",
        "p50_ms",
        "p99_ms",
        "p999_ms",
        *sorted({k for m in runs for k in m if k.endswith("_per_frame")}),
        *sorted({k for m in runs for k in m if k.startswith(("q_", "go_"))}),
    ]
    for name, _ in trees:
        mine = [m for m in runs if m["tree"] == name]
        cells = []
        for k in keys:
            vals = [m[k] for m in mine if k in m]
            if vals:
                cells.append(
                    f"{k.removesuffix('_per_frame')} {statistics.median(vals):,.2f} ({min(vals):,.2f}-{max(vals):,.2f})"
                )
        print(f"{name}: " + "; ".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
