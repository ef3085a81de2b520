"""Python clients, 1 KiB, producer -> broker -> consumer, each its own process: our zipper
(native data path) vs nats-server with nats-py, and the loopback UDP ceiling, interleaved.

    .venv-test/bin/python bench/nats_compare.py --repeats 3 --duration 4 [--publish]

``--publish`` rewrites its section of bench/RESULTS.md and bench/results/nats.json
(``bash bench/run.sh`` runs it after bench/run.py).

Needs nats-py and psutil, and nats-server in .cache/nats (built from the Go module
proxy: ``GOBIN=$PWD/.cache/nats go install github.com/nats-io/nats-server/v2@v2.12.2``).
Prints one JSON line per run and a summary; frames/s are counted at the consumer, from
its first to its last frame, and every frame is checked for length and order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
NATS_SERVER = ROOT / ".cache" / "nats" / "nats-server"
PY = sys.executable
SIZE = 1024
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN = "<!-- bench/nats_compare.py: generated section begin -->"
END = "<!-- bench/nats_compare.py: generated section end -->"

__all__ = ["main"]


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


# --- the client roles, run as subprocesses of this script ------------------------------


async def _nats_sub(port: int, expect_seconds: float, size: int) -> None:
    import nats

    nc = await nats.connect(f"nats://127.0.0.1:{port}", pending_size=256 * 1024 * 1024)
    state = {"n": 0, "first": 0, "last": 0, "ooo": 0, "bad": 0, "seq": -1, "cpu0": 0.0}

    async def cb(msg) -> None:  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        if not state["n"]:
            state["first"], state["cpu0"] = now, time.process_time()
        state["last"] = now
        state["n"] += 1
        data = msg.data
        if len(data) != size:
            state["bad"] += 1
        seq = int.from_bytes(data[:8], "big")
        if seq <= state["seq"]:
            state["ooo"] += 1
        state["seq"] = seq

    await nc.subscribe("bench", cb=cb, pending_msgs_limit=10_000_000, pending_bytes_limit=-1)
    await nc.flush()
    print("ready", flush=True)
    await _until_idle(state, expect_seconds)
    print(json.dumps(_summary(state, size)), flush=True)
    await nc.close()


async def _nats_pub(port: int, duration: float, size: int) -> None:
    import nats

    nc = await nats.connect(f"nats://127.0.0.1:{port}", pending_size=64 * 1024 * 1024)
    filler = b"a" * (size - 8)
    n = 0
    cpu0 = time.process_time()
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        for _ in range(100):
            await nc.publish("bench", n.to_bytes(8, "big") + filler)
            n += 1
    await nc.flush()
    print(json.dumps(_written(n, cpu0)), flush=True)
    await nc.close()


async def _yomo_sink(addr: str, expect_seconds: float, size: int) -> None:
    from yomo import aio

    state = {"n": 0, "first": 0, "last": 0, "ooo": 0, "bad": 0, "seq": -1, "cpu0": 0.0}

    async def handler(ctx: aio.AsyncContext) -> None:
        now = time.perf_counter()
        if not state["n"]:
            state["first"], state["cpu0"] = now, time.process_time()
        state["last"] = now
        state["n"] += 1
        data = ctx.data
        if len(data) != size:
            state["bad"] += 1
        seq = int.from_bytes(data[:8], "big")
        if seq <= state["seq"]:
            state["ooo"] += 1
        state["seq"] = seq

    sfn = aio.StreamFunction("bench-sink", addr, observe_data_tags=[0x10])
    sfn.set_handler(handler)
    await sfn.connect()
    print("ready", flush=True)
    await _until_idle(state, expect_seconds)
    print(json.dumps(_summary(state, size)), flush=True)
    await sfn.close()


async def _yomo_source(addr: str, duration: float, size: int) -> None:
    from yomo import aio

    src = aio.Source("bench-source", addr)
    await src.connect()
    filler = b"a" * (size - 8)
    n = 0
    cpu0 = time.process_time()
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        for _ in range(100):
            await src.write(0x10, n.to_bytes(8, "big") + filler)
            n += 1
    await src.close()  # sends what is still queued
    print(json.dumps(_written(n, cpu0)), flush=True)


def _udp_recv(port: int, expect_seconds: float, size: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(expect_seconds + 10)
    print("ready", flush=True)
    state = {"n": 0, "first": 0.0, "last": 0.0, "ooo": 0, "bad": 0, "seq": -1, "cpu0": 0.0}
    sock.recv(2048)
    state["first"] = state["last"] = time.perf_counter()
    state["cpu0"] = time.process_time()
    state["n"] = 1
    sock.settimeout(1.0)
    try:
        while True:
            sock.recv(2048)
            state["n"] += 1
            state["last"] = time.perf_counter()
    except TimeoutError:
        pass
    print(json.dumps(_summary(state, size)), flush=True)


def _udp_send(port: int, duration: float, size: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    data = b"a" * size
    n = 0
    cpu0 = time.process_time()
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        for _ in range(100):
            try:
                sock.send(data)
                n += 1
            except OSError:
                pass
    print(json.dumps(_written(n, cpu0)), flush=True)


async def _until_idle(state: dict[str, int], expect_seconds: float) -> None:
    deadline = time.perf_counter() + expect_seconds + 60
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.5)
        if state["n"] and time.perf_counter() - state["last"] > 1.5:
            return


def _written(n: int, cpu0: float) -> dict[str, float]:
    """A producer's summary: frames written, and its CPU (all threads) per frame."""
    return {
        "written": n,
        "producer_cpu_us_per_frame": (time.process_time() - cpu0) * 1e6 / max(n, 1),
    }


def _summary(state: dict[str, int], size: int) -> dict[str, float]:
    del size
    elapsed = state["last"] - state["first"]
    # CPU (all threads) from the first frame on; the ~1.5 s wait after the last is asleep
    cpu = time.process_time() - state["cpu0"]
    return {
        "frames": state["n"],
        "fps": (state["n"] - 1) / elapsed if elapsed > 0 else 0.0,
        "out_of_order": state["ooo"],
        "bad_length": state["bad"],
        "consumer_cpu_us_per_frame": cpu * 1e6 / max(state["n"], 1),
    }


# --- the runs ----------------------------------------------------------------------------


def _role(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, __file__, "--role", *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )


def _pair(recv: list[str], send: list[str], server: psutil.Process | None) -> dict[str, float]:
    consumer = _role(*recv)
    assert consumer.stdout is not None
    assert consumer.stdout.readline().strip() == "ready"
    cpu0 = _cpu(server) if server is not None else 0.0
    producer = _role(*send)
    out, _ = producer.communicate(timeout=120)
    sent = json.loads(out.strip().splitlines()[-1])
    got = json.loads(consumer.stdout.readline())
    consumer.wait(timeout=30)
    result = {**sent, **got}
    if server is not None:
        result["server_cpu_us_per_frame"] = (_cpu(server) - cpu0) * 1e6 / max(got["frames"], 1)
    return result


def _nats(duration: float, size: int) -> dict[str, float]:
    port = _free_port()
    server = subprocess.Popen([str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port)])
    try:
        time.sleep(0.5)
        return _pair(
            ["nats-sub", str(port), str(duration), str(size)],
            ["nats-pub", str(port), str(duration), str(size)],
            psutil.Process(server.pid),
        )
    finally:
        server.terminate()
        server.wait(10)


def _yomo(duration: float, size: int) -> dict[str, float]:
    port = _free_port(socket.SOCK_DGRAM)
    cfg = ROOT / ".cache" / "bench-zipper.yaml"
    cfg.write_text(f"name: bench\nhost: 127.0.0.1\nport: {port}\n")
    server = subprocess.Popen([PY, "-m", "yomo", "serve", "-c", str(cfg)], cwd=ROOT)
    try:
        time.sleep(1.5)
        addr = f"127.0.0.1:{port}"
        return _pair(
            ["yomo-sink", addr, str(duration), str(size)],
            ["yomo-source", addr, str(duration), str(size)],
            psutil.Process(server.pid),
        )
    finally:
        server.terminate()
        server.wait(10)


def _udp(duration: float, size: int) -> dict[str, float]:
    port = _free_port(socket.SOCK_DGRAM)
    return _pair(
        ["udp-recv", str(port), str(duration), str(size)],
        ["udp-send", str(port), str(duration), str(size)],
        None,
    )


def _median(rows: list[dict[str, float]], key: str) -> tuple[float, float, float]:
    values = [r[key] for r in rows]
    return statistics.median(values), min(values), max(values)


def _fmt(v: tuple[float, float, float], digits: int = 0) -> str:
    return f"{v[0]:,.{digits}f} ({v[1]:,.{digits}f}-{v[2]:,.{digits}f})"


def _cpu_cell(rows: list[dict[str, float]], who: str) -> str:
    """A producer's or consumer's CPU per frame (runs of older saves lack it)."""
    key = f"{who}_cpu_us_per_frame"
    if not all(key in r for r in rows):
        return "n/a"
    return _fmt(_median(rows, key), 1)


def _render(data: dict[str, object]) -> str:
    runs: dict[str, list[dict[str, float]]] = data["runs"]  # type: ignore[assignment]
    loads = [r["load1"] for rows in runs.values() for r in rows]
    udp = _median(runs["udp-1024"], "fps")
    lines = [
        BEGIN,
        "## Python clients: our zipper vs NATS, and the loopback UDP ceiling "
        "(bench/nats_compare.py)",
        "",
        f"Generated by `python bench/nats_compare.py --publish` on {data['when']} "
        f"({data['repeats']} repeats of {data['duration']:g} s, cases interleaved). "
        "Each producer, broker and consumer is its own process on 127.0.0.1: our source -> "
        "`yomo serve` (native data path) -> our stream function (`yomo.aio`), and nats-py -> "
        f"nats-server {data['nats_version']} -> nats-py (one subject, async callback); "
        "the UDP ceiling is one Python process sending 1 KiB datagrams to another over "
        "loopback. Frames/s are counted at the consumer, first to last frame; every frame "
        "is checked for length and order. CPU per frame is each process's (all threads) "
        "divided by the frames it handled: the broker's per delivered frame, the producer's "
        "over its writing loop (ours: until `close()` has sent everything), the consumer's "
        "from its first frame on.",
        "",
        f"Machine load (1-minute average) during the runs: median {statistics.median(loads):.1f}, "
        f"max {max(loads):.1f} on 2 cores (other developers' jobs included).",
        "",
        "| case | frames/s | share of UDP ceiling | ours / NATS | broker CPU per frame (µs) "
        "| producer CPU per frame (µs) | consumer CPU per frame (µs) | lost or out of order |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in (1024, 64):
        ours, nats = runs[f"yomo-{size}"], runs[f"nats-{size}"]
        o, n = _median(ours, "fps"), _median(nats, "fps")
        for label, rows, v in ((f"ours, {size} B", ours, o), (f"NATS, {size} B", nats, n)):
            bad = sum(
                int(r["written"] - r["frames"]) + int(r["out_of_order"]) + int(r["bad_length"])
                for r in rows
            )
            lines.append(
                f"| {label} | {_fmt(v)} | {v[0] / udp[0]:.2f}x | "
                f"{o[0] / n[0]:.2f}x | {_fmt(_median(rows, 'server_cpu_us_per_frame'), 1)} "
                f"| {_cpu_cell(rows, 'producer')} | {_cpu_cell(rows, 'consumer')} | {bad} |"
            )
    lines.append(
        f"| UDP ceiling, 1024 B datagrams | {_fmt(udp)} | 1.00x | | "
        f"| {_cpu_cell(runs['udp-1024'], 'producer')} | {_cpu_cell(runs['udp-1024'], 'consumer')} | |"
    )
    o1, n1 = _median(runs["yomo-1024"], "fps"), _median(runs["nats-1024"], "fps")
    c1 = _median(runs["yomo-1024"], "server_cpu_us_per_frame")
    c64 = _median(runs["yomo-64"], "server_cpu_us_per_frame")

    def verdict(ok: bool, by: str) -> str:
        return "**met**" if ok else f"**not met** ({by})"

    lines += [
        "",
        "### Goals of issue 16 measured here",
        "",
        f"- Goal 1, Python clients at 1 KiB >= 1.0x NATS: {o1[0] / n1[0]:.2f}x "
        f"({o1[0]:,.0f} vs {n1[0]:,.0f} frames/s): "
        + verdict(o1[0] >= n1[0], f"{(1 - o1[0] / n1[0]) * 100:.0f} % short"),
        f"- Goal 2, zipper CPU per routed 1 KiB frame <= 5 µs: {c1[0]:.1f} µs: "
        + verdict(c1[0] <= 5, f"{(c1[0] / 5 - 1) * 100:.0f} % over"),
        f"- Goal 2, per 64 B frame <= 2 µs: {c64[0]:.1f} µs: "
        + verdict(c64[0] <= 2, f"{(c64[0] / 2 - 1) * 100:.0f} % over"),
        "",
        END,
    ]
    return "\n".join(lines) + "\n"


def _publish(data: dict[str, object]) -> None:
    out = ROOT / "bench" / "results" / "nats.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    section = _render(data)
    text = RESULTS.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        marker = "<!-- bench/run.py: generated section end -->"
        text = text.replace(marker, marker + "\n\n" + section.rstrip("\n"), 1)
    RESULTS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", nargs="+")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--publish", action="store_true", help="rewrite bench/RESULTS.md's section")
    parser.add_argument("--render", help="render the section from a saved JSON file")
    args = parser.parse_args()
    if args.role:
        name, target, seconds, size = (
            args.role[0],
            args.role[1],
            float(args.role[2]),
            int(args.role[3]),
        )
        roles = {
            "nats-sub": lambda: asyncio.run(_nats_sub(int(target), seconds, size)),
            "nats-pub": lambda: asyncio.run(_nats_pub(int(target), seconds, size)),
            "yomo-sink": lambda: asyncio.run(_yomo_sink(target, seconds, size)),
            "yomo-source": lambda: asyncio.run(_yomo_source(target, seconds, size)),
            "udp-recv": lambda: _udp_recv(int(target), seconds, size),
            "udp-send": lambda: _udp_send(int(target), seconds, size),
        }
        roles[name]()
        return
    if args.render:
        _publish(json.loads(Path(args.render).read_text()))
        return
    version = subprocess.run(
        [str(NATS_SERVER), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    runs: dict[str, list[dict[str, float]]] = {}
    print(json.dumps({"load_before": os.getloadavg()}), flush=True)
    cases = [("yomo", _yomo, 1024), ("nats", _nats, 1024), ("udp", _udp, 1024)]
    cases += [("yomo", _yomo, 64), ("nats", _nats, 64)]
    for i in range(args.repeats):
        for name, run, size in cases:
            r = run(args.duration, size)
            r["load1"] = os.getloadavg()[0]
            runs.setdefault(f"{name}-{size}", []).append(r)
            print(json.dumps({"run": i, "case": f"{name}-{size}", **r}), flush=True)
    data: dict[str, object] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "repeats": args.repeats,
        "duration": args.duration,
        "nats_version": version,
        "runs": runs,
    }
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"nats-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(data))
    print(_render(data))
    if args.publish:
        _publish(data)


if __name__ == "__main__":
    main()
