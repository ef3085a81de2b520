"""Processes of a scenario: the zipper, the normal traffic beside it, and what they report.

Every process runs in its own session (so a whole group can be signalled), writes
its log to the run's work directory, and is stopped in ``Processes.stop_all`` even
when a scenario fails. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .ledger import gaps, ranges_to_set, replay_trail

__all__ = [
    "ROOT",
    "Proc",
    "Processes",
    "Traffic",
    "account",
    "free_port",
    "lower_priority",
    "rss_kib",
]

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent


def _ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of ports for sockets bound to port 0 (Linux default 32768-60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A UDP port that was free a moment ago on 127.0.0.1, outside the ephemeral range.

    A zipper restarted on its port must find it free: a port the kernel also hands
    to clients' sockets bound to port 0 can be taken by one of the clients'
    redials in the second the zipper is down (seen: "Address already in use").
    """
    low, high = _ephemeral_ports()
    span = (10000, low - 1) if low - 10000 >= 1000 else (high + 1, 65535)
    for _ in range(100):
        port = random.randint(*span)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def lower_priority(pid: int) -> None:
    """Every thread of ``pid`` at nice 19 (Linux nice values are per thread).

    For client processes whose own work is not what a scenario measures: the mass
    close's crowds tear down 2,500 connections each on the same 2 cores as the zipper
    and the probing client, where real clients would be on machines of their own.
    """
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, int(tid), 19)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class Proc:
    """One child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    out: Path | None = None
    addr: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.signal(signal.SIGKILL)
                self.wait(5.0)

    def send(self, obj: Any) -> None:
        """Write one JSON line to the child's stdin (the relay's controls)."""
        stdin = self.popen.stdin
        assert stdin is not None
        stdin.write(json.dumps(obj).encode() + b"\n")
        stdin.flush()

    def report(self) -> dict[str, Any] | None:
        """The JSON report the child wrote; a killed sink's is rebuilt from its trail."""
        if self.out is None:
            return None
        trail = Path(f"{self.out}.trail")
        if not self.out.is_file():
            return replay_trail(trail.read_bytes()) if trail.is_file() else None
        try:
            data: dict[str, Any] = json.loads(self.out.read_text())
        except ValueError:
            return None
        return data

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class Processes:
    """Starts the processes of one scenario run in ``workdir`` and stops them all at the end."""

    workdir: Path
    path_env: Mapping[str, str]
    all: list[Proc] = field(default_factory=list)
    _count: int = 0

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.path_env)
        env.update(extra or {})
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        env.setdefault("PYTHONUNBUFFERED", "1")
        # Compiled bytecode, as an installed package has: without it every restarted
        # zipper compiles yomo from source again (~0.4 s CPU of its start-up).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        out: bool = False,
        stdin: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> Proc:
        self._count += 1
        log = self.workdir / f"{self._count:02d}-{name}.log"
        f = open(log, "wb")
        popen = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE if out else f,
            stderr=f,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            env=self._env(env),
            cwd=self.workdir,
            start_new_session=True,
        )
        f.close()
        proc = Proc(name, popen, log)
        self.all.append(proc)
        return proc

    def zipper(
        self,
        name: str = "zipper",
        *,
        port: int = 0,
        mesh: Mapping[str, tuple[str, int]] | None = None,
        auth_token: str | None = None,
        options: Mapping[str, Any] | None = None,
        ready_timeout: float = 30.0,
    ) -> Proc:
        """Start our zipper (``zipper_proc.py``) and wait until it listens.

        Without a given ``port`` it takes a free one; if another process took that port
        between the check and the bind (clients open thousands of UDP sockets here), it
        tries again with another, at most three times.
        """
        for attempt in range(3):
            config: dict[str, Any] = {
                "name": name,
                "host": "127.0.0.1",
                "port": port or free_port(),
            }
            if auth_token is not None:
                config["auth"] = {"type": "token", "token": auth_token}
            if mesh:
                config["mesh"] = {p: {"host": h, "port": n} for p, (h, n) in mesh.items()}
            cfg = self.workdir / f"{name}.yaml"
            cfg.write_text(yaml.safe_dump(config))
            argv = [
                sys.executable,
                str(HERE / "zipper_proc.py"),
                str(cfg),
                json.dumps(options or {}),
            ]
            proc = self.spawn(name, argv, out=True)
            line = _read_line(proc, ready_timeout)
            if line.startswith("READY "):
                proc.addr = line.split()[1]
                return proc
            proc.stop()
            log = proc.log_text()
            if port or attempt == 2 or "Address already in use" not in log:
                raise RuntimeError(f"zipper {name} did not start: {line!r}\n{log[-2000:]}")
        raise AssertionError("unreachable")

    def restart_zipper(self, old: Proc, ready_timeout: float = 30.0) -> Proc:
        """Start the zipper again with the same config on the same port."""
        cfg = self.workdir / f"{old.name}.yaml"
        argv = list(old.popen.args)  # type: ignore[arg-type]
        proc = self.spawn(old.name, argv, out=True)
        line = _read_line(proc, ready_timeout)
        if not line.startswith("READY "):
            proc.stop()
            raise RuntimeError(f"zipper {old.name} did not restart ({cfg}): {line!r}")
        proc.addr = line.split()[1]
        return proc

    def crowd(
        self, addr: str, count: int, env: Mapping[str, str] | None = None, **opts: Any
    ) -> Proc:
        """Start ``crowd_proc.py``: ``count`` connections; ``.send('close')`` closes them all.

        ``env`` overrides the run's environment for it (e.g. the crowd's client path).
        """
        out = self.workdir / f"{self._count + 1:02d}-crowd.json"
        argv = [
            sys.executable,
            str(HERE / "crowd_proc.py"),
            json.dumps({"zipper": addr, "count": count, "out": str(out), **opts}),
        ]
        proc = self.spawn("crowd", argv, out=True, stdin=True, env=env)
        proc.out = out
        return proc

    def client(
        self,
        role: str,
        opts: Mapping[str, Any],
        name: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Proc:
        """Start ``clients_proc.py ROLE``; a source or sink is waited for until it is connected.

        So a probe never races the pair: e.g. a flood that fills ``max_connections``
        before the pair's source got in would refuse the source itself.
        """
        name = name or role
        out = self.workdir / f"{self._count + 1:02d}-{name}.json"
        argv = [
            sys.executable,
            str(HERE / "clients_proc.py"),
            role,
            json.dumps({**opts, "out": str(out)}),
        ]
        waits = role in ("source", "sink")
        proc = self.spawn(name, argv, out=waits, env=env)
        proc.out = out
        if waits:
            line = _read_line(proc, 30.0)
            if line != "CONNECTED":
                proc.stop()
                raise RuntimeError(f"{role} did not connect: {line!r}\n{proc.log_text()[-2000:]}")
        return proc

    def relay(self, name: str, target_port: int) -> Proc:
        """Start an impairing UDP relay (``relay.py``) in front of ``target_port``."""
        port = free_port()
        proc = self.spawn(
            name,
            [sys.executable, str(HERE / "relay.py"), str(port), str(target_port)],
            out=True,
            stdin=True,
        )
        if _read_line(proc, 10.0) != "READY":
            raise RuntimeError(f"relay {name} did not start\n{proc.log_text()}")
        proc.addr = f"127.0.0.1:{port}"
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.all):
            proc.stop()


def _read_line(proc: Proc, timeout: float) -> str:
    """The child's first stdout line, or '' after ``timeout`` s or when it exits."""
    import selectors

    stdout = proc.popen.stdout
    assert stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while time.monotonic() < deadline:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf:
                return buf.split(b"\n", 1)[0].decode(errors="replace").strip()
    finally:
        sel.close()
    return buf.decode(errors="replace").strip()


@dataclass
class Traffic:
    """The normal source -> function pair that runs beside every probe."""

    procs: Processes
    zipper_addr: str
    tag: int = 0x10
    rate: float = 500.0
    size: int = 256
    duration: float = 10.0
    producers: int = 1
    name: str = "pair"
    sinks: list[Proc] = field(default_factory=list)
    source: Proc | None = None

    credential: str | None = None
    client_env: Mapping[str, str] | None = None

    def start_sink(self, name: str | None = None, addr: str | None = None, **extra: Any) -> Proc:
        sink = self.procs.client(
            "sink",
            {
                "zipper": addr or self.zipper_addr,
                "tag": self.tag,
                "name": f"{self.name}-sfn",
                "credential": self.credential,
                **extra,
            },
            name or f"{self.name}-sink",
            env=self.client_env,
        )
        self.sinks.append(sink)
        return sink

    def start(self, **source_extra: Any) -> Traffic:
        if not self.sinks:
            self.start_sink()
        self.source = self.procs.client(
            "source",
            {
                "zipper": self.zipper_addr,
                "tag": self.tag,
                "rate": self.rate,
                "size": self.size,
                "duration": self.duration,
                "producers": self.producers,
                "name": f"{self.name}-src",
                "credential": self.credential,
                **source_extra,
            },
            f"{self.name}-source",
            env=self.client_env,
        )
        return self

    def finish(self, settle: float = 2.0, timeout: float | None = None) -> dict[str, Any]:
        """Wait for the source to end, give the last frames ``settle`` s, stop the sinks, count."""
        source = self._end(settle, timeout)
        return account(source, [s.report() for s in self.sinks])

    def finish_each(
        self, settle: float = 2.0, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """``finish``, counted for each sink on its own (sinks behind different zippers)."""
        source = self._end(settle, timeout)
        return [account(source, [s.report()]) for s in self.sinks]

    def _end(self, settle: float, timeout: float | None) -> dict[str, Any] | None:
        """The source ended (stopped after ``timeout``), ``settle`` s, the sinks stopped."""
        assert self.source is not None
        limit = timeout if timeout is not None else self.duration + 60.0
        if self.source.wait(limit) is None:
            self.source.stop()
        time.sleep(settle)
        for sink in self.sinks:
            sink.stop()
        return self.source.report()


def account(
    source: Mapping[str, Any] | None, sinks: Sequence[Mapping[str, Any] | None]
) -> dict[str, Any]:
    """Exact counts from the source's and the sinks' reports (``ledger`` payloads)."""
    if source is None:
        return {"error": "the source wrote no report"}
    written: dict[int, set[int]] = {
        int(p): set(range(n)) - set(source["failed"][p]) for p, n in source["attempted"].items()
    }
    failed = sum(len(f) for f in source["failed"].values())
    seen: dict[int, set[int]] = {p: set() for p in written}
    duplicated = reordered = same_connection = 0
    times: list[float] = []
    sink_events: list[dict[str, Any]] = []
    missing_reports = 0
    for rep in sinks:
        if rep is None:
            missing_reports += 1
            continue
        for p, book in rep["producers"].items():
            got = ranges_to_set(book["ranges"])
            seen.setdefault(int(p), set()).update(got)
            duplicated += book["duplicated"]
            reordered += book["reordered"]
        times.extend(rep["times"])
        same_connection += rep.get("duplicated_same_connection", 0)
        sink_events.extend(rep.get("events", []))
    times.sort()
    delivered = sum(len(s) for s in seen.values())
    total = sum(len(w) for w in written.values())
    lost = sum(len(w - seen.get(p, set())) for p, w in written.items())
    # a write that raised may still have gone out: such frames are delivered, not lost
    delivered_failed = sum(len(seen.get(p, set()) - w) for p, w in written.items())
    reported = sum(e.get("frames") or 0 for e in source["events"])
    return {
        "written": total,
        "failed_writes": failed,
        "delivered": delivered,
        "lost": lost,
        "delivered_after_failed_write": delivered_failed,
        "duplicated": duplicated,
        "duplicated_same_connection": same_connection,
        "reordered": reordered,
        "reported_lost": reported,
        "source_start": source["start"],
        "source_end": source["end"],
        "source_events": source["events"],
        "sink_events": sink_events,
        "missing_sink_reports": missing_reports,
        "times": times,
        "max_gap": max((b - a for a, b in gaps(times, 0.0)), default=0.0),
    }


def first_after(times: Sequence[float], t: float) -> float | None:
    """The first delivery time at or after ``t``."""
    import bisect

    i = bisect.bisect_left(times, t)
    return times[i] if i < len(times) else None


def max_gap_within(times: Sequence[float], start: float, end: float) -> float:
    """The longest stretch without a delivery between ``start`` and ``end``."""
    import bisect

    inside = [
        start,
        *times[bisect.bisect_left(times, start) : bisect.bisect_right(times, end)],
        end,
    ]
    return max((b - a for a, b in itertools.pairwise(inside)), default=0.0)


@contextlib.contextmanager
def scenario_processes(workdir: Path, path_env: Mapping[str, str]) -> Iterator[Processes]:
    """Processes that are all stopped when the block ends, however it ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    procs = Processes(workdir, path_env)
    try:
        yield procs
    finally:
        procs.stop_all()
