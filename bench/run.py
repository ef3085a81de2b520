"""Benchmarks our zipper side by side with Go YoMo v1.22.3's: ``python bench/run.py [--quick]``.

Every scenario runs against both zippers in the same run, interleaved, with
repeats; each zipper is its own process (ours: ``python -m yomo serve -c``,
Go's: the v1.22.3 ``yomo serve -c``) and the load comes from the SAME clients
for both (the Go program in bench/go, or bench/pyclient.py for scenario 5).
Writes bench/out/<stamp>.json, bench/results/latest.json, bench/RESULTS.md
and bench/charts/*.png. Not part of the test suite. See bench/README.md.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import goharness as gh  # noqa: E402

__all__ = ["Settings", "main"]

GO_BENCH_DIR = BENCH / "go"
OUT_DIR = BENCH / "out"
RESULTS_DIR = BENCH / "results"
CHARTS_DIR = BENCH / "charts"
RESULTS_MD = BENCH / "RESULTS.md"
BEGIN = "<!-- bench/run.py: generated section begin -->"
END = "<!-- bench/run.py: generated section end -->"
ZIPPERS = ("ours", "go")
#: Our zipper on the opt-in aiopquic backend (needs a Python 3.12 venv): a third zipper when present.
AIOPQUIC = "ours-aiopquic"
NAMES = {
    "ours": "ours",
    AIOPQUIC: "ours, aiopquic",
    "go": "Go v1.22.3",
    "ours-aioquic": "ours, aioquic only",
    "ours-qh3": "ours, pure-Python path (qh3)",
}
#: Diagnostic cases: Python clients against our zipper on another data path, by case.
DIAGNOSTICS = {
    "clients-py-1024-qh3": (
        "ours-qh3",
        "pure-Python path (`YOMO_QUIC_BACKEND=qh3`: what an install without the native module runs)",
    ),
    "clients-py-1024-aioquic": ("ours-aioquic", "aioquic only (`YOMO_QUIC_BACKEND=aioquic`)"),
}


def zippers_in(summary: dict[str, Any]) -> tuple[str, ...]:
    """The zippers of a run, in table order."""
    present = {z for case in summary.values() for z in case}
    return tuple(z for z in ("ours", AIOPQUIC, "go") if z in present) or ZIPPERS


TAG_IN, TAG_OUT = "0x10", "0x11"


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one run measures and how long each part may take."""

    quick: bool
    repeats: int
    duration: float  # seconds a throughput source writes
    sizes: tuple[int, ...]
    fanout: int
    fanout_size: int
    rates: tuple[int, ...]
    lat_duration: dict[int, float]
    idle_n: int
    idle_py_n: int
    idle_parallel: int
    profile_seconds: float
    budget: float  # seconds for the whole run; runs past it are skipped
    ours_backend: str
    extra_repeats: dict[str, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def make(cls, quick: bool, ours_backend: str, budget: float | None) -> Settings:
        if quick:
            return cls(
                quick=True,
                repeats=1,
                duration=1.5,
                sizes=(64, 1024, 65536),
                fanout=8,
                fanout_size=1024,
                rates=(1000, 10000),
                lat_duration={1000: 2.0, 10000: 1.5},
                idle_n=200,
                idle_py_n=100,
                idle_parallel=16,
                profile_seconds=3.0,
                budget=budget or 300.0,
                ours_backend=ours_backend,
            )
        return cls(
            quick=False,
            repeats=3,
            duration=3.0,
            sizes=(64, 1024, 65536),
            fanout=8,
            fanout_size=1024,
            rates=(1000, 10000),
            lat_duration={1000: 5.0, 10000: 2.0},
            idle_n=1000,
            idle_py_n=300,
            idle_parallel=16,
            profile_seconds=4.0,
            budget=budget or 840.0,
            ours_backend=ours_backend,
            # the goal figures, and the noisiest: more samples of them.
            extra_repeats={
                "throughput-1024": 5,
                "latency-1000": 5,
                "idle-py": 2,
                "clients-py-1024-qh3": 2,
            },
        )


class Skipped(Exception):
    """The time budget is spent."""


# --------------------------------------------------------------------------- processes


class Runner:
    """Starts zippers and clients; stops every process group it started."""

    def __init__(self, settings: Settings, bins: gh.GoBins, ybench: Path, tmp: Path) -> None:
        self.s = settings
        self.bins = bins
        self.ybench = ybench
        self.tmp = tmp
        self.procs: list[gh.GoProcess] = []
        self.start_time = time.monotonic()
        self.base_env: dict[str, str] = {}
        self.ours_env: dict[str, str] = {}
        self.notes: list[str] = []
        self.zippers: tuple[str, ...] = ZIPPERS
        self.py312: str | None = None

    # -- time --------------------------------------------------------------

    def left(self) -> float:
        return self.s.budget - (time.monotonic() - self.start_time)

    def check_budget(self, need: float) -> None:
        if self.left() < need:
            raise Skipped(
                f"skipped: {self.left():.0f} s of the time budget left, run needs ~{need:.0f} s"
            )

    # -- processes ---------------------------------------------------------

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> gh.GoProcess:
        p = gh.GoProcess(name, argv, env)
        self.procs.append(p)
        return p

    def stop(self, p: gh.GoProcess, timeout: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after timeout."""
        if p.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)  # stragglers in the group
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.proc.wait(5)
        with contextlib.suppress(Exception):
            for t in p._threads:
                t.join(2)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self) -> None:
        for p in reversed(list(self.procs)):
            self.stop(p, 3.0)

    @contextlib.contextmanager
    def zipper(self, kind: str) -> Iterator[tuple[gh.GoProcess, str]]:
        port = gh.free_udp_port()
        cfg = self.tmp / f"zipper-{kind}-{port}.yaml"
        cfg.write_text(yaml.safe_dump({"name": f"bench-{kind}", "host": "127.0.0.1", "port": port}))
        if kind == AIOPQUIC:
            assert self.py312 is not None
            argv = [self.py312, "-m", "yomo", "serve", "-c", str(cfg)]
            env = {"YOMO_LOG_LEVEL": "info", **self.base_env, "YOMO_QUIC_BACKEND": "aiopquic"}
        elif kind.startswith("ours"):
            argv = [sys.executable, "-m", "yomo", "serve", "-c", str(cfg)]
            env = {"YOMO_LOG_LEVEL": "info", **self.base_env, **self.ours_env}
            if kind in ("ours-aioquic", "ours-qh3"):  # diagnostic: another data path
                env["YOMO_QUIC_BACKEND"] = kind.removeprefix("ours-")
        else:
            argv = [str(self.bins.yomo), "serve", "-c", str(cfg)]
            env = {}
        z = self.spawn(f"zipper-{kind}", argv, env)
        try:
            z.wait_for(
                lambda p: any(
                    "listening on" in line or "up and running" in line for line in p.stderr
                ),
                30.0,
                "zipper ready",
            )
            yield z, f"127.0.0.1:{port}"
        finally:
            self.stop(z)

    def go(self, *args: str) -> gh.GoProcess:
        return self.spawn(f"ybench-{args[0]}", [str(self.ybench), *args])

    def py(self, *args: str) -> gh.GoProcess:
        return self.spawn(
            f"pyclient-{args[0]}",
            [sys.executable, str(BENCH / "pyclient.py"), *args],
            {**self.base_env, **self.ours_env},
        )


def _connected(p: gh.GoProcess, timeout: float = 20.0) -> None:
    ev = p.wait_for(
        lambda q: next(
            (
                e
                for e in q.events
                if e.get("event") in ("connected", "connect_error", "usage_error")
            ),
            None,
        ),
        timeout,
        "connected",
    )
    if ev.get("event") != "connected":
        raise RuntimeError(f"{p.name}: {ev.get('event')}: {ev.get('error')}")


def _last_progress(p: gh.GoProcess) -> int:
    for e in reversed(p.snapshot("progress")):
        return int(e.get("frames", 0))
    return 0


def _wait_drained(sink: gh.GoProcess, expect: int, stall: float = 2.0, limit: float = 30.0) -> str:
    """Wait until the sink counted `expect` frames; returns how the wait ended: "drained",
    "stalled" (no progress for `stall` s: what is missing then is counted as lost, though
    it may only have been late) or "limit"."""
    deadline = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = _last_progress(sink)
        if n >= expect:
            return "drained"
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > stall:
            return "stalled"
        time.sleep(0.1)
    return "limit"


def _evidence(*procs: gh.GoProcess, n: int = 40) -> dict[str, list[str]]:
    """The last `n` log lines of each process (the zipper logs every connection it
    registers and closes; Go clients log reconnects), kept for a run that lost frames."""
    return {p.name: list(p.stderr[-n:]) for p in procs}


def _zipper_cpu(z: gh.GoProcess) -> float:
    try:
        t = psutil.Process(z.pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def _zipper_rss(z: gh.GoProcess) -> int:
    try:
        return int(psutil.Process(z.pid).memory_info().rss)
    except psutil.Error:
        return 0


def _tail(p: gh.GoProcess, n: int = 8) -> str:
    return p.tail(n)[-1500:]


# --------------------------------------------------------------------------- scenarios


def run_throughput(
    r: Runner, kind: str, size: int, conns: int = 1, clients: str = "go", sources: int = 1
) -> dict[str, Any]:
    """Scenarios 1, 2 and 5: `sources` sources at full speed -> zipper -> `conns` counting functions."""
    r.check_budget(r.s.duration + 12)
    with r.zipper(kind) as (z, addr):
        src: gh.GoProcess | None = None
        if clients == "go":
            sink = r.go(
                "sink", f"-zipper={addr}", f"-observe={TAG_IN}", f"-size={size}", f"-conns={conns}"
            )
        else:
            sink = r.py("sink", "-zipper", addr, "-observe", TAG_IN, "-size", str(size))
        try:
            _connected(sink)
            cpu0, t0 = _zipper_cpu(z), time.monotonic()
            dur = f"{r.s.duration}s"
            if clients == "go":
                src = r.go(
                    "source",
                    f"-zipper={addr}",
                    f"-tag={TAG_IN}",
                    f"-size={size}",
                    f"-duration={dur}",
                    f"-conns={sources}",
                )
            else:
                src = r.py(
                    "source", "-zipper", addr, "-tag", TAG_IN, "-size", str(size), "-duration", dur
                )
            try:
                summary = src.wait_event("summary", r.s.duration + 30)
                written = int(summary["written"])
                drain = _wait_drained(sink, written * conns)
                cpu1, t1 = _zipper_cpu(z), time.monotonic()
                rss = _zipper_rss(z)
            finally:
                r.stop(src)
            r.stop(sink)
            got = sink.wait_event("summary", 10)
        finally:
            r.stop(sink)
    frames = int(got["frames"])
    elapsed = float(got["elapsed_s"]) or 1e-9
    per = [float(c["fps"]) for c in got.get("per_conn", [])]
    fps = (frames - conns) / elapsed if frames > conns else 0.0
    anomaly = frames != written * conns or got.get("out_of_order") or got.get("bad_len")
    extra = {"evidence": _evidence(z, src, sink)} if anomaly and src is not None else {}
    return {
        "drain": drain,
        **extra,
        "fps": fps,
        "mbps": fps * size / 1e6,
        "per_function_fps": statistics.median(per) if per else 0.0,
        "written": written,
        "source_fps": float(summary["fps"]),
        "delivered": frames,
        "lost": written * conns - frames,
        "bad_len": int(got.get("bad_len", 0)),
        "out_of_order": int(got.get("out_of_order", 0)),
        "zipper_cpu_s": cpu1 - cpu0,
        "zipper_cpu_util": (cpu1 - cpu0) / max(t1 - t0, 1e-9),
        "zipper_cpu_us_per_frame": 1e6 * (cpu1 - cpu0) / max(frames, 1),
        "zipper_rss_mib": rss / 2**20,
    }


def run_latency(r: Runner, kind: str, rate: int) -> dict[str, Any]:
    """Scenario 3: source -> zipper -> forwarder A -> zipper -> sink at a fixed rate."""
    dur = r.s.lat_duration[rate]
    r.check_budget(dur + 12)
    with r.zipper(kind) as (_z, addr):
        fwd = r.go("fwd", f"-zipper={addr}", f"-observe={TAG_IN}", f"-out={TAG_OUT}")
        try:
            _connected(fwd)
            lat = r.go(
                "lat", f"-zipper={addr}", f"-tag={TAG_IN}", f"-observe={TAG_OUT}",
                f"-rate={rate}", f"-duration={dur}s", "-size=64",
            )  # fmt: skip
            try:
                s = lat.wait_event("summary", dur + 30)
            finally:
                r.stop(lat)
        finally:
            r.stop(fwd)
    return {k: s[k] for k in s if k != "event"}


def run_idle(r: Runner, kind: str, clients: str = "go") -> dict[str, Any]:
    """Scenario 4: n idle stream functions; zipper RSS per connection and handshakes/s."""
    r.check_budget(25)
    with r.zipper(kind) as (z, addr):
        time.sleep(1.0)
        rss0 = _zipper_rss(z)
        if clients == "go":
            idle = r.go(
                "idle", f"-zipper={addr}", f"-n={r.s.idle_n}", f"-parallel={r.s.idle_parallel}"
            )
        else:
            n = r.s.idle_py_n
            idle = r.py("idle", "-zipper", addr, "-n", str(n), "-parallel", str(r.s.idle_parallel))
        try:
            ev = idle.wait_event("connected", 90)
            time.sleep(2.0)  # let keep-alives and buffers settle
            rss1 = _zipper_rss(z)
        finally:
            r.stop(idle)
    ok = int(ev["ok"]) or 1
    return {
        "n": int(ev["n"]),
        "ok": int(ev["ok"]),
        "failed": int(ev["failed"]),
        "handshakes_per_s": float(ev["hps"]),
        "connect_seconds": float(ev["seconds"]),
        "rss_before_mib": rss0 / 2**20,
        "rss_after_mib": rss1 / 2**20,
        "kib_per_conn": (rss1 - rss0) / 1024 / ok,
    }


# --------------------------------------------------------------------------- profile


def _native_zipper(r: Runner, kind: str) -> bool:
    """True when this zipper kind moves frames in Rust (the native data path)."""
    return kind == "ours" and getattr(r, "ours_backend_used", "").startswith("native")


def run_profile(
    r: Runner, clients: str = "go", size: int = 1024, kind: str = "ours"
) -> dict[str, Any]:
    """Sample our zipper while a source pushes 1 KiB frames to a function (Go or Python).

    The native data path is Rust: perf samples every thread of the process. A zipper
    whose data path is Python (aiopquic, qh3) is sampled with py-spy.
    """
    native = _native_zipper(r, kind)
    if native:
        tool = shutil.which("perf")
        if tool is None:
            return {"error": "perf is not installed (Debian: apt-get install linux-perf)"}
        ext = "data"
    else:
        tool = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(tool).exists():
            return {"error": "py-spy is not installed (pip install py-spy)"}
        ext = "txt"
    secs = r.s.profile_seconds
    r.check_budget(secs + 15)
    raw = OUT_DIR / f"profile-{kind}-{clients}-{time.strftime('%Y%m%dT%H%M%S')}.{ext}"
    dur = f"{secs + 2}s"
    with r.zipper(kind) as (z, addr):
        if clients == "go":
            sink = r.go("sink", f"-zipper={addr}", f"-observe={TAG_IN}", f"-size={size}")
        else:
            sink = r.py("sink", "-zipper", addr, "-observe", TAG_IN, "-size", str(size))
        try:
            _connected(sink)
            if clients == "go":
                src = r.go(
                    "source", f"-zipper={addr}", f"-tag={TAG_IN}", f"-size={size}",
                    f"-duration={dur}", "-linger=1s",
                )  # fmt: skip
            else:
                src = r.py(
                    "source", "-zipper", addr, "-tag", TAG_IN, "-size", str(size), "-duration", dur
                )
            _connected(src)
            time.sleep(0.5)
            cpu0, frames0 = _zipper_cpu(z), _last_progress(sink)
            if native:
                argv = [tool, "record", "-F", str(PERF_HZ), "-e", "cpu-clock", "-p", str(z.pid),
                        "-o", str(raw), "--", "sleep", str(secs)]  # fmt: skip
            else:
                argv = [tool, "record", "-p", str(z.pid), "-d", str(int(secs)), "-r", "250",
                        "-f", "raw", "-o", str(raw), "--nonblocking", "--idle"]  # fmt: skip
            spy = subprocess.run(
                argv, capture_output=True, text=True, timeout=secs + 30, check=False
            )
            cpu = _zipper_cpu(z) - cpu0
            frames = _last_progress(sink) - frames0
            r.stop(src)
        finally:
            r.stop(sink)
    if spy.returncode != 0 or not raw.exists():
        return {
            "error": f"{Path(tool).name} failed (rc={spy.returncode}): {spy.stderr.strip()[-500:]}"
        }
    out = summarize_perf(raw) if native else summarize_profile(raw)
    out["tool"] = "perf" if native else "py-spy"
    out["clients"] = clients
    out["seconds"] = secs
    out["zipper_cpu_s"] = cpu
    out["frames_at_function"] = frames
    return out


#: perf's sampling rate (cpu-clock, every thread of the zipper process).
PERF_HZ = 999
_PERF_LINE = re.compile(r"^\s*(?P<pct>[\d.]+)%\s+(?P<dso>\S+)\s+\[(?P<kind>.)\]\s+(?P<sym>.+?)\s*$")
_CRATE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)::")
_CRYPTO = ("aes", "gcm", "ghash", "chacha", "poly1305", "sha", "x25519", "ecp_", "ring_core")
_KERNEL_NET = ("udp", "ip_", "ipv4", "skb", "sock", "net_", "__sys_", "copy_", "_copy", "csum",
               "dev_", "loopback", "recvmsg", "sendmsg", "sendmmsg", "recvmmsg", "nf_", "__ip")  # fmt: skip
_KERNEL_SCHED = ("schedule", "task_switch", "futex", "wake", "epoll", "ep_", "hrtimer",
                 "enqueue", "dequeue", "select_task", "update_curr", "switch_", "nanosleep")  # fmt: skip


def _native_area(dso: str, sym: str) -> str:
    """What part of the native zipper a perf sample's symbol belongs to."""
    low = sym.lower()
    if dso.startswith("[kernel"):
        if any(k in low for k in _KERNEL_SCHED):
            return "kernel: scheduling, wake-ups (futex, epoll, timers)"
        if any(k in low for k in _KERNEL_NET):
            return "kernel: UDP send/receive (copies, IP, loopback)"
        return "kernel: other (locks, syscall entry/exit, memory)"
    if "_native" in dso:
        if any(k in low for k in _CRYPTO) and "::" not in sym:
            return "crypto (ring: AES-GCM, header protection)"
        m = _CRATE.search(sym.lstrip("<"))
        crate = m.group(1) if m else ""
        if crate in ("quinn_proto", "quinn", "quinn_udp"):
            return "quinn (QUIC: packets, ACKs, streams, congestion)"
        if crate in ("ring", "rustls", "webpki", "untrusted"):
            return "crypto (ring: AES-GCM, header protection)"
        if crate in ("tokio", "mio", "parking_lot", "parking_lot_core"):
            return "tokio (tasks, I/O driver, wake-ups)"
        if crate == "_native":
            return "ours in Rust (framing, routing, outbox, PyO3 glue)"
        if crate in ("pyo3", "pyo3_ffi"):
            return "ours in Rust (framing, routing, outbox, PyO3 glue)"
        return "Rust core/alloc/bytes (moves, drops, hashing, allocation)"
    if "libc" in dso or dso.startswith("ld-"):
        return "libc (memcpy/memmove, malloc/free)"
    if "python" in dso.lower():
        return "Python interpreter (control, stats)"
    return f"other ({dso})"


def summarize_perf(raw: Path) -> dict[str, Any]:
    """Share of samples by area, by thread and by symbol, from ``perf report``."""

    def report(sort: str, quiet: bool = True) -> list[str]:
        res = subprocess.run(
            ["perf", "report", "-i", str(raw), "--stdio", "--no-children", "-g", "none",
             "--sort", sort, "--percent-limit", "0", *(["-q"] if quiet else [])],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        return res.stdout.splitlines()

    areas: collections.Counter[str] = collections.Counter()
    top: list[list[Any]] = []
    for line in report("dso,sym"):
        m = _PERF_LINE.match(line)
        if not m:
            continue
        pct = float(m["pct"])
        areas[_native_area(m["dso"], m["sym"])] += pct
        if len(top) < 15:
            top.append([f"{m['sym'][:110]} ({m['dso']})", pct])
    threads: collections.Counter[str] = collections.Counter()
    for line in report("pid"):  # per thread: "12.34%  4242:yomo-native"
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].endswith("%"):
            threads[parts[1].strip()] += float(parts[0][:-1])
    count = next((ln for ln in report("comm", quiet=False) if ln.startswith("# Samples:")), "")
    m = re.search(r"(\d+)", count)
    return {
        "raw_file": str(raw.relative_to(ROOT)),
        "samples": int(m.group(1)) if m else 0,
        "by_area": {k: round(v, 1) for k, v in areas.most_common()},
        "threads": {k: round(v, 1) for k, v in threads.most_common(8)},
        "self_top": [[k, round(v, 1)] for k, v in top],
    }


IDLE = "idle (waiting in epoll)"
_SOCKET_CALLS = {
    "sendto", "_read_ready", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "_raw_send", "sendto_many", "_recv_rust", "_recv_plain", "_recv_gro_python", "_send_gso_python",
}  # fmt: skip
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def _category(file: str, func: str) -> str:
    f = "/" + file.replace("\\", "/")
    if f.endswith("/selectors.py") and func.endswith("select"):
        return IDLE
    if func.rsplit(".", 1)[-1] in _SOCKET_CALLS:
        return "UDP socket syscalls (sendto/recvfrom, sendmmsg/recvmmsg)"
    if "/qh3/" in f:
        return "qh3 (QUIC: packets, crypto, ACKs, loss recovery)"
    if "/aiopquic/" in f:
        return "aiopquic binding (Python side; picoquic's C threads are not sampled)"
    if "/aioquic/" in f:
        return "aioquic (QUIC: packets, crypto, ACKs, loss recovery)"
    if "yomo/wire" in f:
        return "yomo.wire (frame decode/encode, metadata)"
    if "yomo/zipper" in f:
        return "yomo.zipper (handshake, read loop, routing)"
    if "yomo/transport" in f:
        return "yomo.transport (stream data, send, flow control)"
    if "asyncio" in f or "selectors" in f:
        return "asyncio event loop"
    if "logging" in f:
        return "logging"
    return "other"


_OURS_AND_QUIC = ("yomo/transport", "yomo/zipper", "yomo/wire", "qh3/", "aioquic/", "aiopquic/")


def summarize_profile(raw: Path) -> dict[str, Any]:
    """Self time by function and by area, inclusive time of our functions, from py-spy raw output."""
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    cats: collections.Counter[str] = collections.Counter()
    total = busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf = frames[-1]
        m = _FRAME.match(leaf)
        file, func = (m["file"], m["func"]) if m else ("", leaf)
        short = f"{func} ({Path(file).name})" if file else func
        category = _category(file, func)
        cats[category] += n
        if category == IDLE:
            continue
        self_t[short] += n
        busy += n
        seen: set[str] = set()
        for fr in frames:
            m = _FRAME.match(fr)
            if not m or not m["file"].startswith(_OURS_AND_QUIC):
                continue
            key = f"{m['func']} ({Path(m['file']).name})"
            if key not in seen:
                seen.add(key)
                incl[key] += n
    pct = (lambda n: round(100.0 * n / busy, 1)) if busy else (lambda n: 0.0)
    idle = cats.pop(IDLE, 0)
    return {
        "raw_file": str(raw.relative_to(ROOT)),
        "samples": total,
        "busy_samples": busy,
        "idle_pct_of_wall": round(100.0 * idle / total, 1) if total else 0.0,
        "by_area": {k: pct(v) for k, v in cats.most_common()},
        "self_top": [[k, pct(v)] for k, v in self_t.most_common(15)],
        "inclusive_top": [[k, pct(v)] for k, v in incl.most_common(15)],
    }


# --------------------------------------------------------------------------- setup


def _stamp(paths: list[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for p in sorted(paths):
        h.update(p.read_bytes())
    return h.hexdigest()


def build(log: Callable[[str], None]) -> tuple[gh.GoToolchain, gh.GoBins, Path]:
    """The Go YoMo CLI (through the interop harness) and the bench load generator."""
    toolchain = gh.find_go_toolchain()
    if toolchain is None:
        raise SystemExit("bench: no `go` on PATH; the Go side cannot be built")
    bins = gh.build_go_bins(toolchain)
    log(
        f"go: {toolchain.version}; {bins.yomo_cli_version} ({'cached' if bins.cached else 'built'})"
    )
    out = gh.CACHE_DIR / "bench-bin" / "ybench"
    sources = [*GO_BENCH_DIR.rglob("*.go"), GO_BENCH_DIR / "go.mod", GO_BENCH_DIR / "go.sum"]
    stamp = _stamp(sources, toolchain.version)
    stamp_file = out.with_suffix(".stamp")
    if not (out.exists() and stamp_file.exists() and stamp_file.read_text() == stamp):
        res = toolchain.run(["build", "-o", str(out), "./cmd/ybench"], GO_BENCH_DIR)
        if res.returncode != 0:
            raise gh.GoBuildError(f"go build ./cmd/ybench failed:\n{res.stdout}")
        stamp_file.write_text(stamp)
    return toolchain, bins, out


def probe_ours(r: Runner, log: Callable[[str], None]) -> None:
    """Pick the QUIC backend for our zipper: the first that a Go client can connect to."""
    choice = r.s.ours_backend
    candidates = ["default", "aioquic"] if choice == "auto" else [choice]
    for backend in candidates:
        r.ours_env = {} if backend == "default" else {"YOMO_QUIC_BACKEND": backend}
        with r.zipper("ours") as (z, addr):
            src = r.go("source", f"-zipper={addr}", "-count=1", "-duration=2s", "-size=64")
            try:
                ev = src.wait_for(
                    lambda p: next(
                        (e for e in p.events if e.get("event") in ("connected", "connect_error")),
                        None,
                    ),
                    20,
                    "connected",
                )
            except TimeoutError as e:
                ev = {"event": "connect_error", "error": str(e)[:300]}
            finally:
                r.stop(src)
            # the log is JSON lines (GoProcess asks for them): the message, else the raw line
            backend_line = next(
                (str(rec.get("msg", "")) for rec in z.logs if "listening on" in rec.get("msg", "")),
                next((ln for ln in z.stderr if "listening on" in ln), ""),
            )
        quic = backend_line.rstrip().split("QUIC ", 1)
        used = quic[1][:-1] if len(quic) == 2 and quic[1].endswith(")") else backend
        if ev.get("event") == "connected":
            r.ours_backend_used = used  # type: ignore[attr-defined]
            if backend != candidates[0]:
                r.notes.append(
                    f"Our zipper runs on the {used} QUIC backend (YOMO_QUIC_BACKEND={used}): "
                    f"Go YoMo clients could not connect to it on the default backend "
                    f"({r.probe_error})."  # type: ignore[attr-defined]
                )
            if "aioquic for empty" in used:
                r.notes.append(
                    "Go YoMo clients (quic-go) use zero-length connection ids, which qh3 2.1.0 "
                    "cannot serve, so our zipper hands them to its aioquic path: every Go-client "
                    "figure for our zipper measures aioquic; Python clients (scenario 5) use qh3."
                )
            log(f"ours: QUIC backend {used} accepts Go clients")
            return
        r.probe_error = f"{used}: {ev.get('error')}"  # type: ignore[attr-defined]
        log(f"ours: Go client could not connect on backend {used}: {ev.get('error')}")
    r.ours_backend_used = "none"  # type: ignore[attr-defined]
    r.notes.append(
        "No QUIC backend of our zipper accepted Go YoMo clients "
        f"({r.probe_error}); every Go-client figure for our zipper is missing."  # type: ignore[attr-defined]
    )
    r.ours_env = {}


def probe_aiopquic(r: Runner, log: Callable[[str], None], py312: str | None) -> None:
    """Add our zipper on aiopquic as a third zipper when a Python 3.12 venv has it."""
    candidates = (
        [py312]
        if py312
        else [str(ROOT / v / "bin" / "python") for v in (".venv-312", ".venv-test312")]
    )
    env = {**os.environ, **r.base_env}
    for py in candidates:
        if not Path(py).exists():
            continue
        ok = subprocess.run(
            [py, "-c", "import aiopquic, yomo.transport"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if ok.returncode != 0:
            continue
        r.py312 = py
        try:
            with r.zipper(AIOPQUIC) as (_z, addr):
                src = r.go("source", f"-zipper={addr}", "-count=1", "-duration=2s", "-size=64")
                try:
                    _connected(src)
                finally:
                    r.stop(src)
        except Exception as e:
            log(f"ours on aiopquic ({py}): Go client could not connect: {e}")
            r.stop_all()
            continue
        r.zippers = ("ours", AIOPQUIC, "go")
        ver = subprocess.run(
            [py, "-c", "import sys, aiopquic; print(sys.version.split()[0], getattr(aiopquic, '__version__', '?'))"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        ).stdout.split()  # fmt: skip
        r.notes.append(
            f'Third zipper "{NAMES[AIOPQUIC]}": our zipper with the opt-in '
            f"`YOMO_QUIC_BACKEND=aiopquic` (aiopquic {ver[1] if len(ver) > 1 else '?'}, "
            f"Python {ver[0] if ver else '?'} from `{Path(py).parent.parent.name}`), same clients. "
            "It is not the default: it needs Python 3.12+ and has no mutual TLS."
        )
        log(f"ours on aiopquic: {py} accepts Go clients; running three zippers")
        return
    log("ours on aiopquic: no Python 3.12 venv with aiopquic; two zippers")


def _git_state() -> str:
    """The commit the run measured, and whether src/ had local changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"{head}{' with local changes in src/' if dirty else ''}"


def machine(toolchain: gh.GoToolchain, bins: gh.GoBins) -> dict[str, Any]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def ver(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    gomod = (GO_BENCH_DIR / "go.mod").read_text()
    quicgo = re.search(r"github.com/quic-go/quic-go (v\S+)", gomod)
    import yomo

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "go": toolchain.version,
        "yomo_python": yomo.__version__,
        "go_yomo": bins.yomo_cli_version,
        "quic_go": quicgo.group(1) if quicgo else "?",
        "qh3": ver("qh3"),
        "aioquic": ver("aioquic"),
        "uvloop": ver("uvloop"),
    }


# --------------------------------------------------------------------------- summary


def _stats(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max per (case, zipper, metric)."""
    out: dict[str, Any] = {}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for run in runs:
        if run.get("metrics"):
            groups[(run["case"], run["zipper"])].append(run["metrics"])
    for (case, zipper), ms in groups.items():
        keys = [k for k, v in ms[0].items() if isinstance(v, (int, float))]
        out.setdefault(case, {})[zipper] = {
            k: _stats([float(m[k]) for m in ms if isinstance(m.get(k), (int, float))]) for k in keys
        }
    return out


# Rows of the main table: (case, metric, label, unit, higher_is_better, goal ratio or None);
# the goal ratios (ours/Go) are issue 16's goal 3, for our default zipper.
TABLE = [
    ("throughput-64", "fps", "Throughput 64 B", "frames/s", True, 3.0),
    ("throughput-64", "mbps", "Throughput 64 B", "MB/s", True, None),
    ("throughput-1024", "fps", "Throughput 1 KiB", "frames/s", True, 3.0),
    ("throughput-1024", "mbps", "Throughput 1 KiB", "MB/s", True, None),
    ("throughput-65536", "fps", "Throughput 64 KiB", "frames/s", True, 1.0),
    ("throughput-65536", "mbps", "Throughput 64 KiB", "MB/s", True, None),
    ("sources4-1024", "fps", "Throughput 1 KiB, 4 sources -> 1 function", "frames/s", True, None),
    ("fanout-8", "fps", "Fan-out 1->8, 1 KiB, delivered", "frames/s", True, None),
    ("fanout-8", "per_function_fps", "Fan-out 1->8, per function", "frames/s", True, None),
    ("latency-1000", "p50_ms", "Latency @1,000/s p50", "ms", False, None),
    ("latency-1000", "p99_ms", "Latency @1,000/s p99", "ms", False, 1.0),
    ("latency-1000", "p999_ms", "Latency @1,000/s p99.9", "ms", False, None),
    ("latency-10000", "p50_ms", "Latency @10,000/s p50", "ms", False, None),
    ("latency-10000", "p99_ms", "Latency @10,000/s p99", "ms", False, None),
    ("latency-10000", "p999_ms", "Latency @10,000/s p99.9", "ms", False, None),
    ("latency-10000", "rate_achieved", "Latency @10,000/s rate achieved", "msg/s", True, None),
    ("idle", "kib_per_conn", "Idle functions: memory per connection", "KiB", False, 0.5),
    ("idle", "handshakes_per_s", "Idle functions: handshakes", "per s", True, 1.0),
    ("idle-py", "kib_per_conn", "Idle Python functions: memory per connection", "KiB", False, None),
    ("idle-py", "handshakes_per_s", "Idle Python functions: handshakes", "per s", True, None),
    ("throughput-64", "zipper_cpu_us_per_frame", "Zipper CPU per frame, 64 B", "µs", False, None),
    (
        "throughput-1024",
        "zipper_cpu_us_per_frame",
        "Zipper CPU per frame, 1 KiB",
        "µs",
        False,
        None,
    ),
    (
        "throughput-65536",
        "zipper_cpu_us_per_frame",
        "Zipper CPU per frame, 64 KiB",
        "µs",
        False,
        None,
    ),
    ("clients-py-1024", "fps", "Python clients, 1 KiB (scenario 5)", "frames/s", True, None),
    (
        "clients-py-1024",
        "zipper_cpu_us_per_frame",
        "Zipper CPU per frame, Python clients",
        "µs",
        False,
        None,
    ),
]


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _ratio(x: float) -> str:
    return f"{x:.2f}x" if x >= 0.1 else f"{x:.3f}x"


def _cell(st: dict[str, Any] | None) -> str:
    if not st:
        return "n/a"
    if st["n"] > 1:
        return f"{_fmt(st['median'])} ({_fmt(st['min'])}-{_fmt(st['max'])})"
    return _fmt(st["median"])


#: Issue 16's goal 2, our zipper's CPU per routed frame (µs), absolute:
#: (case, label, limit).
CPU_GOALS = [
    ("throughput-1024", "zipper CPU per routed 1 KiB frame, Go clients", 5.0),
    ("clients-py-1024", "zipper CPU per routed 1 KiB frame, Python clients", 5.0),
    ("throughput-64", "zipper CPU per routed 64 B frame, Go clients", 2.0),
]


def goal_results(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's goals 2 and 3 as measured in this run, for our default zipper."""
    out: list[dict[str, Any]] = []
    for case, metric, label, _unit, higher, goal in TABLE:
        if goal is None:
            continue
        o = (summary.get(case, {}).get("ours") or {}).get(metric)
        g = (summary.get(case, {}).get("go") or {}).get(metric)
        item: dict[str, Any] = {"goal": 3, "what": f"{label}, ours/Go", "target": goal}
        item["rel"] = ">=" if higher else "<="
        if o and g and g["median"]:
            ratio = o["median"] / g["median"]
            item.update(ours=o["median"], go=g["median"], value=ratio)
            item["met"] = ratio >= goal if higher else ratio <= goal
            item["by"] = (goal / ratio - 1) if higher else (ratio / goal - 1)
        out.append(item)
    for case, label, limit in CPU_GOALS:
        o = (summary.get(case, {}).get("ours") or {}).get("zipper_cpu_us_per_frame")
        item = {"goal": 2, "what": label, "target": limit, "rel": "<=", "unit": "µs"}
        if o:
            item.update(value=o["median"], met=o["median"] <= limit, by=o["median"] / limit - 1)
        out.append(item)
    return out


def goal_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for it in goal_results(summary):
        unit = it.get("unit", "x")
        target = f"{it['rel']} {it['target']:g}{' ' if unit != 'x' else ''}{unit}"
        if "value" not in it:
            lines.append(f"- Goal {it['goal']}, {it['what']} ({target}): not measured in this run.")
            continue
        short = "short" if it["rel"] == ">=" else "over"
        verdict = "**met**" if it["met"] else f"**not met** ({it['by'] * 100:.0f} % {short})"
        value = f"{it['value']:.2f}x" if unit == "x" else f"{it['value']:.1f} µs"
        extra = f" ({_fmt(it['ours'])} vs {_fmt(it['go'])})" if "ours" in it else ""
        lines.append(f"- Goal {it['goal']}, {it['what']} ({target}): {value}{extra}: {verdict}")
    return lines


def render_markdown(res: dict[str, Any]) -> str:
    s = res["summary"]
    m = res["machine"]
    cfg = res["settings"]
    L: list[str] = [BEGIN, ""]
    L.append(
        f"Generated by `{res['command']}` on {res['finished']} ({res['wall_seconds']:.0f} s)"
        + (f", source at commit {res['source']}" if res.get("source") else "")
        + "."
    )
    L.append("")
    L.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}; "
        f"Python {m['python']}, {m['go']}; YoMo for Python {m['yomo_python']} "
        f"(qh3 {m['qh3']}, aioquic {m['aioquic']}, uvloop {m['uvloop']}); "
        f"Go YoMo {m['go_yomo'].replace('YoMo CLI Version: ', '')} (quic-go {m['quic_go']})."
    )
    L.append("")
    L.append(
        f"Our zipper: `python -m yomo serve -c cfg.yaml`, QUIC backend **{res['ours_backend']}**. "
        "Go's: the v1.22.3 `yomo serve -c cfg.yaml`. Each in its own process, restarted for "
        "every run; the load comes from the same Go YoMo v1.22.3 clients "
        "(bench/go, `ybench`) for both, except where the table says Python clients. "
        f"Repeats: {cfg['repeats']}"
        + "".join(f" ({n} for {c})" for c, n in (cfg.get("extra_repeats") or {}).items())
        + ", zippers interleaved; cells are median (min-max)."
    )
    loads = [x["loadavg_1m_before"] for x in res["runs"] if "loadavg_1m_before" in x]
    busy = [x["machine_cpu_pct"] for x in res["runs"] if "machine_cpu_pct" in x]
    if loads and busy:
        L += [
            "",
            f"Machine load while it ran: 1-minute load average before each run "
            f"median {statistics.median(loads):.1f} (max {max(loads):.1f}); whole-machine CPU busy "
            f"during runs median {statistics.median(busy):.0f} % (ours included). Other jobs on the "
            "machine share the 2 cores, so absolute figures are noisy; the ratios, from "
            "interleaved runs, are the result."
            + (
                f" Every bench process ran at nice {res['nice']} (both zippers alike)."
                if res.get("nice")
                else ""
            ),
        ]
    for note in res.get("notes", []):
        L += ["", f"**Note:** {note}"]
    zs = zippers_in(s)
    ours_all = [z for z in zs if z != "go"]
    head = " | ".join(NAMES[z] for z in zs)
    ratios = " | ".join(f"{NAMES[z]}/Go" for z in ours_all)
    L += [
        "",
        f"| scenario | unit | {head} | {ratios} |",
        "|---|---|" + "---|" * (len(zs) + len(ours_all)),
    ]
    for case, metric, label, unit, _higher, _goal in TABLE:
        g = (s.get(case, {}).get("go") or {}).get(metric)
        cells = [_cell((s.get(case, {}).get(z) or {}).get(metric)) for z in zs]
        rs = []
        for z in ours_all:
            o = (s.get(case, {}).get(z) or {}).get(metric)
            rs.append(_ratio(o["median"] / g["median"]) if o and g and g["median"] else "n/a")
        L.append(f"| {label} | {unit} | {' | '.join(cells)} | {' | '.join(rs)} |")
    L += [
        "",
        "### Issue 16's goals 2 and 3, from this run (our default zipper)",
        "",
        *goal_lines(s),
    ]

    L += ["", "### Clients: Python vs Go, 1 KiB source -> zipper -> function", ""]
    L += [
        "| zipper | Go source + Go function | Python source + Python function | Python/Go |",
        "|---|---|---|---|",
    ]
    for z in zs:
        go_c = (s.get("throughput-1024", {}).get(z) or {}).get("fps")
        py_c = (s.get("clients-py-1024", {}).get(z) or {}).get("fps")
        ratio = (
            f"{py_c['median'] / go_c['median']:.2f}x" if go_c and py_c and go_c["median"] else "n/a"
        )
        L.append(f"| {NAMES[z]} (frames/s) | {_cell(go_c)} | {_cell(py_c)} | {ratio} |")
    main_py = s.get("clients-py-1024", {}).get("ours") or {}
    for case, (kind, what) in DIAGNOSTICS.items():
        diag = s.get(case, {}).get(kind) or {}
        if not diag.get("fps"):
            continue
        L += [
            "",
            f"Diagnostic, same Python clients: our zipper on its default data path "
            f"({res['ours_backend']}) vs on the {what}:",
            "",
            "| our zipper | frames/s | zipper CPU per frame (µs) |",
            "|---|---|---|",
            f"| {res['ours_backend']} (default) | {_cell(main_py.get('fps'))} "
            f"| {_cell(main_py.get('zipper_cpu_us_per_frame'))} |",
            f"| {kind.removeprefix('ours-')} | {_cell(diag.get('fps'))} "
            f"| {_cell(diag.get('zipper_cpu_us_per_frame'))} |",
        ]

    L += ["", "### Checks", ""]
    bad = [
        f"{r['case']} {r['zipper']} #{r['repeat']}: lost {r['metrics'].get('lost')}, "
        f"bad length {r['metrics'].get('bad_len', 0)}, out of order {r['metrics'].get('out_of_order', 0)}"
        + (
            "; the sink made no progress for 2 s before it was stopped (lost or late; "
            "the run's log tails are under `evidence` in the JSON)"
            if r["metrics"].get("drain") == "stalled"
            else ""
        )
        for r in res["runs"]
        if r.get("metrics")
        and (
            r["metrics"].get("lost", 0)
            or r["metrics"].get("bad_len", 0)
            or r["metrics"].get("out_of_order", 0)
        )
    ]
    bad += [
        f"{r['case']} {r['zipper']} #{r['repeat']}: only {r['metrics']['ok']} of "
        f"{r['metrics']['n']} connections got through ({r['metrics']['failed']} failed); "
        "memory per connection and handshakes/s are over the connected ones"
        for r in res["runs"]
        if r.get("metrics") and r["metrics"].get("failed")
    ]
    failed = [
        f"{r['case']} {r['zipper']} #{r['repeat']}: {r['error'].splitlines()[0][:200]}"
        for r in res["runs"]
        if r.get("error")
    ]
    L.append(
        f"Runs: {len(res['runs'])}, failed or skipped: {len(failed)}. Every function counts frames and checks length and order."
    )
    L += [f"- {x}" for x in bad + failed] or [
        "- every frame arrived, in order, with the right length."
    ]

    for key, who, kind in (
        ("profile", "Go", "ours"),
        ("profile_py", "Python", "ours"),
        ("profile_aiopquic", "Go", AIOPQUIC),
    ):
        if key in res:
            L += _render_profile(res, res.get(key) or {}, who, kind)
    L += [
        "",
        "Charts: `bench/charts/throughput.png`, `bench/charts/latency.png`, `bench/charts/scale.png`. "
        "Full data: `bench/results/latest.json`.",
        "",
        END,
    ]
    return "\n".join(L)


HEADER = """# Benchmarks: YoMo for Python vs Go YoMo v1.22.3 and NATS

Run the whole suite (about 15 minutes on 2 cores: bench/run.py, then
bench/nats_compare.py and bench/goals.py; `--quick`, about 2, writes only bench/out/):

    bash bench/run.sh                 # on a shared machine: bash bench/run.sh --nice 0
    bash bench/run.sh --quick

It needs Go on PATH (builds Go YoMo v1.22.3, bench/go and nats-server into .cache/),
the `bench` extra (matplotlib, psutil, nats-py; py-spy for zippers whose data path is
Python) and `perf` (Debian's linux-perf) for the profile of the native zipper.
See bench/README.md.
"""


def _render_profile(
    res: dict[str, Any], prof: dict[str, Any], who: str, kind: str = "ours"
) -> list[str]:
    zipper = "our zipper" if kind == "ours" else f"our zipper on aiopquic ({NAMES[kind]})"
    tool = prof.get("tool", "py-spy")
    L = ["", f"### Profile of {zipper} ({tool}), 1 KiB source -> function, {who} clients", ""]
    if kind == AIOPQUIC:
        L.append(
            "py-spy sees the Python threads only: picoquic's own C threads (the QUIC work) "
            "are not in these samples, so this is the Python side of the zipper."
        )
        L.append("")
    if prof.get("error"):
        return [*L, f"Not profiled: {prof['error']}"]
    if not prof:
        return [*L, "Not profiled in this run."]
    frames = prof.get("frames_at_function", 0)
    cpu = prof.get("zipper_cpu_s", 0.0)
    secs = prof.get("seconds", res["settings"]["profile_seconds"])
    per = f", {1e6 * cpu / frames:.1f} µs of zipper CPU per frame" if frames else ""
    rate = f"{frames / secs:,.0f} frames/s" if secs else f"{frames:,} frames"
    if tool == "perf":
        L.append(
            f"`perf record -F {PERF_HZ} -e cpu-clock -p <zipper>` for {secs:g} s, every thread "
            f"of the zipper process (the native data path is Rust; py-spy would see only the "
            f"idle Python thread), while a {who} source pushed 1 KiB frames to a {who} "
            f"function ({rate} at the function, {cpu:.2f} CPU-seconds in the zipper{per}): "
            f"{prof['samples']:,} samples. Percentages are of all samples (time on CPU, not "
            f"wall time); raw data in `{prof['raw_file']}` (gitignored; `perf report -i` it)."
        )
        L += ["", "| zipper CPU by area | % |", "|---|---|"]
        L += [f"| {k} | {v} |" for k, v in prof["by_area"].items()]
        L += ["", "| by thread (tid:name) | % |", "|---|---|"]
        L += [f"| `{k}` | {v} |" for k, v in prof.get("threads", {}).items()]
        L += ["", "| top symbols, self time | % |", "|---|---|"]
        L += ["| `" + k.replace("|", "\\|") + f"` | {v} |" for k, v in prof["self_top"][:12]]
        return L
    L.append(
        f"py-spy at 250 Hz for {secs:g} s on our zipper process while "
        f"a {who} source pushed 1 KiB frames to a {who} function ({frames:,} frames arrived{per}): "
        f"{prof['samples']} samples, idle (in epoll) {prof.get('idle_pct_of_wall', 0)} % of them. "
        f"Percentages are of the {prof.get('busy_samples', prof['samples'])} busy samples; raw "
        f"stacks in `{prof['raw_file']}` (gitignored)."
    )
    L += ["", "| self time by area | % |", "|---|---|"]
    L += [f"| {k} | {v} |" for k, v in prof["by_area"].items()]
    L += ["", "| top functions, self time | % |", "|---|---|"]
    L += [f"| `{k}` | {v} |" for k, v in prof["self_top"][:12]]
    L += ["", "| our and QUIC-library functions, inclusive time | % |", "|---|---|"]
    L += [f"| `{k}` | {v} |" for k, v in prof["inclusive_top"][:12]]
    return L


def write_markdown(res: dict[str, Any]) -> None:
    block = render_markdown(res)
    if RESULTS_MD.exists():
        text = RESULTS_MD.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            _, tail = rest.split(END, 1)
            RESULTS_MD.write_text(head + block + tail)
            return
        if text.startswith("# Benchmarks: YoMo for Python vs Go"):
            text = text.split("\n", 1)[1]
        RESULTS_MD.write_text(HEADER + "\n" + block + "\n\n" + text.lstrip("\n"))
        return
    RESULTS_MD.write_text(HEADER + "\n" + block + "\n")


# --------------------------------------------------------------------------- charts


def charts(res: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    CHARTS_DIR.mkdir(parents=True, exist_ok=True)
    s = res["summary"]
    colors = {"ours": "#3776ab", AIOPQUIC: "#ffd43b", "go": "#00add8"}
    names = {
        "ours": "ours (default install)",
        AIOPQUIC: "ours, aiopquic (opt-in)",
        "go": "Go v1.22.3",
    }
    zs = zippers_in(s)
    width = 0.8 / len(zs)

    def offset(i: int) -> float:
        return (i - (len(zs) - 1) / 2) * width

    written = []

    def bars(ax: Any, cases: list[str], metric: str, labels: list[str], log: bool = False) -> None:
        for i, z in enumerate(zs):
            med, lo, hi = [], [], []
            for c in cases:
                st = (s.get(c, {}).get(z) or {}).get(metric)
                v = st["median"] if st else 0.0
                med.append(v)
                lo.append(v - st["min"] if st else 0.0)
                hi.append(st["max"] - v if st else 0.0)
            xs = [x + offset(i) for x in range(len(cases))]
            ax.bar(xs, med, width, yerr=[lo, hi], capsize=3, label=names[z], color=colors[z])
            for x, v in zip(xs, med, strict=True):
                if v:
                    ax.annotate(_fmt(v), (x, v), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(cases)), labels)
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=8)

    sizes = res["settings"]["sizes"]
    cases = [f"throughput-{n}" for n in sizes]
    labels = [f"{n} B" if n < 1024 else f"{n // 1024} KiB" for n in sizes]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    bars(a1, cases, "fps", labels, log=True)
    a1.set_title("Frames/s, source -> zipper -> function")
    a1.set_ylabel("frames/s (log)")
    bars(a2, cases, "mbps", labels, log=True)
    a2.set_title("Payload MB/s")
    a2.set_ylabel("MB/s (log)")
    fig.suptitle("Throughput by payload size (same Go clients; median, bars = min-max)")
    fig.tight_layout()
    fig.savefig(CHARTS_DIR / "throughput.png", dpi=110)
    plt.close(fig)
    written.append("throughput.png")

    rates = res["settings"]["rates"]
    fig, axes = plt.subplots(1, len(rates), figsize=(5.5 * len(rates), 4.2))
    for ax, rate in zip(list(axes) if len(rates) > 1 else [axes], rates, strict=True):
        case = f"latency-{rate}"
        for i, z in enumerate(zs):
            vals = []
            for met in ("p50_ms", "p99_ms", "p999_ms"):
                st = (s.get(case, {}).get(z) or {}).get(met)
                vals.append(st["median"] if st else 0.0)
            xs = [x + offset(i) for x in range(3)]
            ax.bar(xs, vals, width, label=names[z], color=colors[z])
            for x, v in zip(xs, vals, strict=True):
                if v:
                    ax.annotate(f"{v:.2f}", (x, v), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(3), ["p50", "p99", "p99.9"])
        ax.set_yscale("log")
        ax.set_ylabel("ms (log)")
        short = {"ours": "ours", AIOPQUIC: "aiopquic", "go": "Go"}
        got = ", ".join(
            f"{short.get(z, z)} "
            f"{((s.get(case, {}).get(z) or {}).get('rate_achieved') or {}).get('median', 0.0):,.0f}"
            for z in zs
        )
        ax.set_title(
            f"{rate:,}/s target; achieved: {got}\nsource -> zipper -> A -> zipper -> sink",
            fontsize=9,
        )
        ax.legend(fontsize=7, loc="lower right", framealpha=0.7)
    fig.suptitle("Round-trip latency (64 B payload; median of repeats)")
    fig.tight_layout()
    fig.savefig(CHARTS_DIR / "latency.png", dpi=110)
    plt.close(fig)
    written.append("latency.png")

    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(13, 4))
    bars(a1, ["fanout-8"], "fps", ["1 source -> 8 functions"])
    a1.set_title("Fan-out: frames/s delivered (1 KiB)")
    idle_cases = ["idle", "idle-py"] if "idle-py" in s else ["idle"]
    idle_labels = [f"{res['settings']['idle_n']} Go functions"]
    if len(idle_cases) == 2:
        idle_labels.append(f"{res['settings'].get('idle_py_n', '?')} Python functions")
    bars(a2, idle_cases, "kib_per_conn", idle_labels)
    a2.set_title("Zipper memory per idle connection (KiB)")
    bars(a3, idle_cases, "handshakes_per_s", idle_labels)
    a3.set_title("Handshakes per second")
    fig.tight_layout()
    fig.savefig(CHARTS_DIR / "scale.png", dpi=110)
    plt.close(fig)
    written.append("scale.png")
    return written


# --------------------------------------------------------------------------- main


def run_all(
    r: Runner, log: Callable[[str], None], only: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Every case (or those in ``only``), zippers interleaved within each repeat."""
    s = r.s
    runs: list[dict[str, Any]] = []
    plan: list[tuple[str, Callable[[str], dict[str, Any]]]] = []
    for size in s.sizes:
        plan.append((f"throughput-{size}", lambda z, size=size: run_throughput(r, z, size)))
    plan.append(("sources4-1024", lambda z: run_throughput(r, z, 1024, sources=4)))
    plan.append(
        (f"fanout-{s.fanout}", lambda z: run_throughput(r, z, s.fanout_size, conns=s.fanout))
    )
    for rate in s.rates:
        plan.append((f"latency-{rate}", lambda z, rate=rate: run_latency(r, z, rate)))
    plan.append(("idle", lambda z: run_idle(r, z)))
    plan.append(("idle-py", lambda z: run_idle(r, z, clients="py")))
    plan.append(("clients-py-1024", lambda z: run_throughput(r, z, 1024, clients="py")))
    zippers_for = {"clients-py-1024-qh3": ("ours-qh3",)}
    plan.append(("clients-py-1024-qh3", lambda z: run_throughput(r, z, 1024, clients="py")))
    go_blocked = getattr(r, "ours_backend_used", "") == "none"
    if only:
        plan = [(case, fn) for case, fn in plan if case in only]
    for case, fn in plan:
        for rep in range(s.extra_repeats.get(case, s.repeats) if not only else s.repeats):
            order = r.zippers if rep % 2 == 0 else tuple(reversed(r.zippers))
            order = zippers_for.get(case, order)
            for z in order:
                entry: dict[str, Any] = {"case": case, "zipper": z, "repeat": rep + 1}
                entry["loadavg_1m_before"] = round(os.getloadavg()[0], 2)
                psutil.cpu_percent(None)
                t0 = time.monotonic()
                try:
                    if z == "ours" and go_blocked and not case.startswith("clients-py"):
                        raise RuntimeError("Go clients cannot connect to our zipper (see notes)")
                    entry["metrics"] = fn(z)
                except Skipped as e:
                    entry["error"] = str(e)
                except Exception as e:  # one broken run must not lose the others
                    entry["error"] = f"{type(e).__name__}: {e}"[:3000]
                finally:
                    r.stop_all()
                entry["seconds"] = round(time.monotonic() - t0, 2)
                entry["machine_cpu_pct"] = psutil.cpu_percent(None)
                runs.append(entry)
                brief = (
                    entry.get("error", "").splitlines()[0][:160]
                    if entry.get("error")
                    else _brief(entry["metrics"])
                )
                log(
                    f"{case:>18} {z:>4} #{rep + 1}: {brief} ({entry['seconds']:.1f} s, {r.left():.0f} s left)"
                )
    return runs


def _brief(m: dict[str, Any]) -> str:
    if "fps" in m:
        return f"{m['fps']:,.0f} frames/s {m['mbps']:.1f} MB/s lost={m['lost']} cpu={m['zipper_cpu_util']:.2f}"
    if "p99_ms" in m:
        return f"p50={m['p50_ms']:.2f} p99={m['p99_ms']:.2f} p99.9={m['p999_ms']:.2f} ms lost={m['lost']}"
    if "kib_per_conn" in m:
        return f"{m['kib_per_conn']:.1f} KiB/conn {m['handshakes_per_s']:.0f} hs/s ok={m['ok']}"
    return json.dumps(m)[:160]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repeat, short runs (about 3 minutes)")
    ap.add_argument(
        "--ours-backend",
        default="auto",
        choices=["auto", "default", "qh3", "aioquic"],
        help="QUIC backend of our zipper; auto: the default, or aioquic if Go clients cannot connect",
    )
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole run")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument(
        "--py312",
        metavar="PYTHON",
        help="Python 3.12+ with yomo and aiopquic for the third zipper "
        "(default: .venv-312 or .venv-test312 if they have aiopquic)",
    )
    ap.add_argument("--no-aiopquic", action="store_true", help="leave out our aiopquic zipper")
    ap.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="scheduling priority for the harness and everything it starts (negative needs root; "
        "lets both zippers win the CPU over unrelated jobs on a shared machine; 0 to leave it)",
    )
    ap.add_argument(
        "--render", metavar="JSON", help="only regenerate RESULTS.md and charts from JSON"
    )
    ap.add_argument(
        "--only",
        metavar="CASES",
        default="",
        help="comma-separated cases to run (e.g. idle,throughput-1024; `profile` for the "
        "profiles); nothing published: for measuring one change",
    )
    ap.add_argument("--repeats", type=int, default=None, help="repeats per case (default 3)")
    ap.add_argument(
        "--ours-src",
        metavar="DIR",
        help="run our zipper and Python clients from this source tree (PYTHONPATH=DIR), e.g. a git archive",
    )
    ap.add_argument(
        "--publish",
        action="store_true",
        help="with --quick: also overwrite bench/results/latest.json, RESULTS.md and charts",
    )
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    if args.render:
        res = json.loads(Path(args.render).read_text())
        write_markdown(res)
        charts(res)
        log(f"rendered {RESULTS_MD} and charts from {args.render}")
        return 0

    settings = Settings.make(args.quick, args.ours_backend, args.budget)
    if args.repeats:
        settings = dataclasses.replace(settings, repeats=args.repeats)
    only = tuple(c for c in args.only.split(",") if c)
    nice = 0
    if args.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # children inherit it
            nice = args.nice
        except OSError as e:
            log(f"could not set priority {args.nice}: {e}; running at the default")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.time()
    toolchain, bins, ybench = build(log)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    with tempfile.TemporaryDirectory(prefix="yomo-bench-") as tmp:
        r = Runner(settings, bins, ybench, Path(tmp))
        if args.ours_src:
            r.base_env = {"PYTHONPATH": str(Path(args.ours_src).resolve())}
        try:
            probe_ours(r, log)
            if not args.no_aiopquic:
                probe_aiopquic(r, log, args.py312)
            runs = run_all(r, log, only)
            profiles: dict[str, dict[str, Any]] = {}
            if not args.no_profile and (not only or "profile" in only):
                plan = [("profile", "go", "ours"), ("profile_py", "py", "ours")]
                if AIOPQUIC in r.zippers:
                    plan.append(("profile_aiopquic", "go", AIOPQUIC))
                for key, clients, kind in plan:
                    if clients == "go" and getattr(r, "ours_backend_used", "none") == "none":
                        continue
                    try:
                        prof = run_profile(r, clients, kind=kind)
                    except Exception as e:
                        prof = {"error": f"{type(e).__name__}: {e}"[:500]}
                    finally:
                        r.stop_all()
                    profiles[key] = prof
                    log(f"{key}: {json.dumps(prof.get('by_area', prof))[:300]}")
        finally:
            r.stop_all()
    cmd = "python bench/run.py" + (" --quick" if args.quick else "")
    if args.ours_src:
        cmd += f" --ours-src {args.ours_src}"
    if args.ours_backend != "auto":
        cmd += f" --ours-backend {args.ours_backend}"
    res = {
        "command": cmd,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "wall_seconds": time.time() - started,
        "machine": machine(toolchain, bins),
        "source": _git_state(),
        "settings": dataclasses.asdict(settings),
        "ours_backend": getattr(r, "ours_backend_used", "?"),
        "nice": nice,
        "notes": r.notes,
        "runs": runs,
        "summary": summarize(runs),
        "profile": profiles.get("profile", {}),
        "profile_py": profiles.get("profile_py", {}),
        **(
            {"profile_aiopquic": profiles["profile_aiopquic"]}
            if "profile_aiopquic" in profiles
            else {}
        ),
        "zippers": list(r.zippers),
    }
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = OUT_DIR / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(res, indent=1))
    log(f"wrote {out.relative_to(ROOT)}")
    if (not args.quick or args.publish) and not only:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "latest.json").write_text(json.dumps(res, indent=1))
        write_markdown(res)
        written = charts(res)
        log(f"wrote bench/results/latest.json, bench/RESULTS.md, bench/charts/{written}")
    log(f"total {res['wall_seconds']:.0f} s")
    for line in goal_lines(res["summary"]):
        log(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
