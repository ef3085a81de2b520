"""Python clients, 1 KiB, producer -> broker -> consumer, each its own process: our zipper
(native data path) vs nats-server with nats-py, and the loopback UDP ceiling, interleaved.

    .venv-test/bin/python bench/nats_compare.py --repeats 3 --duration 4

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

__all__ = ["main"]


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


# --- the client roles, run as subprocesses of this script ------------------------------


async def _nats_sub(port: int, expect_seconds: float) -> None:
    import nats

    nc = await nats.connect(f"nats://127.0.0.1:{port}", pending_size=256 * 1024 * 1024)
    state = {"n": 0, "first": 0, "last": 0, "ooo": 0, "bad": 0, "seq": -1}

    async def cb(msg) -> None:  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        if not state["n"]:
            state["first"] = now
        state["last"] = now
        state["n"] += 1
        data = msg.data
        if len(data) != SIZE:
            state["bad"] += 1
        seq = int.from_bytes(data[:8], "big")
        if seq <= state["seq"]:
            state["ooo"] += 1
        state["seq"] = seq

    await nc.subscribe("bench", cb=cb, pending_msgs_limit=10_000_000, pending_bytes_limit=-1)
    await nc.flush()
    print("ready", flush=True)
    await _until_idle(state, expect_seconds)
    print(json.dumps(_summary(state)), flush=True)
    await nc.close()


async def _nats_pub(port: int, duration: float) -> None:
    import nats

    nc = await nats.connect(f"nats://127.0.0.1:{port}", pending_size=64 * 1024 * 1024)
    filler = b"a" * (SIZE - 8)
    n = 0
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        for _ in range(100):
            await nc.publish("bench", n.to_bytes(8, "big") + filler)
            n += 1
    await nc.flush()
    print(json.dumps({"written": n}), flush=True)
    await nc.close()


async def _yomo_sink(addr: str, expect_seconds: float) -> None:
    from yomo import aio

    state = {"n": 0, "first": 0, "last": 0, "ooo": 0, "bad": 0, "seq": -1}

    async def handler(ctx: aio.AsyncContext) -> None:
        now = time.perf_counter()
        if not state["n"]:
            state["first"] = now
        state["last"] = now
        state["n"] += 1
        data = ctx.data
        if len(data) != SIZE:
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
    print(json.dumps(_summary(state)), flush=True)
    await sfn.close()


async def _yomo_source(addr: str, duration: float) -> None:
    from yomo import aio

    src = aio.Source("bench-source", addr)
    await src.connect()
    filler = b"a" * (SIZE - 8)
    n = 0
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        for _ in range(100):
            await src.write(0x10, n.to_bytes(8, "big") + filler)
            n += 1
    print(json.dumps({"written": n}), flush=True)
    await src.close()


def _udp_recv(port: int, expect_seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(expect_seconds + 10)
    print("ready", flush=True)
    state = {"n": 0, "first": 0.0, "last": 0.0, "ooo": 0, "bad": 0, "seq": -1}
    sock.recv(2048)
    state["first"] = state["last"] = time.perf_counter()
    state["n"] = 1
    sock.settimeout(1.0)
    try:
        while True:
            sock.recv(2048)
            state["n"] += 1
            state["last"] = time.perf_counter()
    except TimeoutError:
        pass
    print(json.dumps(_summary(state)), flush=True)


def _udp_send(port: int, duration: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    data = b"a" * SIZE
    n = 0
    end = time.perf_counter() + duration
    while time.perf_counter() < end:
        for _ in range(100):
            try:
                sock.send(data)
                n += 1
            except OSError:
                pass
    print(json.dumps({"written": n}), flush=True)


async def _until_idle(state: dict[str, int], expect_seconds: float) -> None:
    deadline = time.perf_counter() + expect_seconds + 60
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.5)
        if state["n"] and time.perf_counter() - state["last"] > 1.5:
            return


def _summary(state: dict[str, int]) -> dict[str, float]:
    elapsed = state["last"] - state["first"]
    return {
        "frames": state["n"],
        "fps": (state["n"] - 1) / elapsed if elapsed > 0 else 0.0,
        "out_of_order": state["ooo"],
        "bad_length": state["bad"],
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
    written = json.loads(out.strip().splitlines()[-1])["written"]
    got = json.loads(consumer.stdout.readline())
    consumer.wait(timeout=30)
    result = {"written": written, **got}
    if server is not None:
        result["server_cpu_us_per_frame"] = (_cpu(server) - cpu0) * 1e6 / max(got["frames"], 1)
    return result


def _nats(duration: float) -> dict[str, float]:
    port = _free_port()
    server = subprocess.Popen([str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(port)])
    try:
        time.sleep(0.5)
        return _pair(
            ["nats-sub", str(port), str(duration)],
            ["nats-pub", str(port), str(duration)],
            psutil.Process(server.pid),
        )
    finally:
        server.terminate()
        server.wait(10)


def _yomo(duration: float) -> dict[str, float]:
    port = _free_port(socket.SOCK_DGRAM)
    cfg = ROOT / ".cache" / "bench-zipper.yaml"
    cfg.write_text(f"name: bench\nhost: 127.0.0.1\nport: {port}\n")
    server = subprocess.Popen([PY, "-m", "yomo", "serve", "-c", str(cfg)], cwd=ROOT)
    try:
        time.sleep(1.5)
        addr = f"127.0.0.1:{port}"
        return _pair(
            ["yomo-sink", addr, str(duration)],
            ["yomo-source", addr, str(duration)],
            psutil.Process(server.pid),
        )
    finally:
        server.terminate()
        server.wait(10)


def _udp(duration: float) -> dict[str, float]:
    port = _free_port(socket.SOCK_DGRAM)
    return _pair(
        ["udp-recv", str(port), str(duration)], ["udp-send", str(port), str(duration)], None
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", nargs="+")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    args = parser.parse_args()
    if args.role:
        name, target, seconds = args.role[0], args.role[1], float(args.role[2])
        roles = {
            "nats-sub": lambda: asyncio.run(_nats_sub(int(target), seconds)),
            "nats-pub": lambda: asyncio.run(_nats_pub(int(target), seconds)),
            "yomo-sink": lambda: asyncio.run(_yomo_sink(target, seconds)),
            "yomo-source": lambda: asyncio.run(_yomo_source(target, seconds)),
            "udp-recv": lambda: _udp_recv(int(target), seconds),
            "udp-send": lambda: _udp_send(int(target), seconds),
        }
        roles[name]()
        return
    results: dict[str, list[dict[str, float]]] = {"yomo": [], "nats": [], "udp": []}
    print(json.dumps({"load_before": os.getloadavg()}), flush=True)
    for i in range(args.repeats):
        for name, run in (("yomo", _yomo), ("nats", _nats), ("udp", _udp)):
            r = run(args.duration)
            r["load1"] = os.getloadavg()[0]
            results[name].append(r)
            print(json.dumps({"run": i, "case": name, **r}), flush=True)
    med = {k: statistics.median(r["fps"] for r in v) for k, v in results.items()}
    summary = {
        "median_fps": med,
        "yomo_vs_nats": med["yomo"] / med["nats"],
        "yomo_share_of_udp": med["yomo"] / med["udp"],
        "nats_share_of_udp": med["nats"] / med["udp"],
        "yomo_zipper_cpu_us": statistics.median(
            r["server_cpu_us_per_frame"] for r in results["yomo"]
        ),
        "nats_server_cpu_us": statistics.median(
            r["server_cpu_us_per_frame"] for r in results["nats"]
        ),
    }
    print(json.dumps({"summary": summary}), flush=True)


if __name__ == "__main__":
    main()
