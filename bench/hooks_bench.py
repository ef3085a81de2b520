"""What the zipper's hooks cost (yomo.zipper.hooks): frames/s through our zipper with each.

Handshake-time hooks (connection middleware) keep the native data path; per-frame hooks
(frame middleware, a metadata router) put the zipper on the pure-Python path. This
measures all of them the same way: our zipper in its own process (``python
bench/hooks_bench.py zipper MODE PORT``), Go YoMo v1.22.3 load (``ybench source`` at
full speed for 4 s, ``ybench sink``, 1 KiB), frames/s at the sink, median of
``--repeat`` runs, modes interleaved::

    .venv-test/bin/python bench/hooks_bench.py [--repeat 3] [--size 1024] [--seconds 4]

Needs Go on PATH (the interop harness builds ybench into .cache/go/bench-bin).
``--memory`` measures the Python routing alone instead: a source and a function on a
``MemoryListener`` (no QUIC, one process), frames/s with and without each per-frame hook.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import goharness as gh  # noqa: E402

MODES = {
    "native": "native data path, no hooks",
    "native+connection-mw": "native data path, a connection middleware",
    "python": "pure-Python data path (qh3), no hooks",
    "python+frame-mw": "pure-Python path, one frame middleware that passes frames on",
    "python+metadata-router": "pure-Python path, a MetadataRouter routing by tag",
}
MEMORY_MODES = {
    "python": "no hooks",
    "python+frame-mw": "one frame middleware that passes frames on",
    "python+metadata-router": "a MetadataRouter routing by tag",
}
TAG = 0x10


def _zipper_options(mode: str) -> dict[str, Any]:
    """The hooks of ``mode`` (the zipper side of this script)."""
    from yomo.zipper.hooks import ClientConnection

    def connection_mw(next: Any) -> Any:
        async def handle(conn: ClientConnection) -> None:
            await next(conn)

        return handle

    def frame_mw(next: Any) -> Any:
        def handle(ctx: Any) -> None:
            next(ctx)

        return handle

    class ByTag:
        def __init__(self) -> None:
            self.by_tag: dict[int, dict[int, ClientConnection]] = {}

        def add(self, connection: ClientConnection) -> None:
            for tag in connection.observe_data_tags:
                self.by_tag.setdefault(tag, {})[connection.number] = connection

        def remove(self, number: int) -> None:
            for conns in self.by_tag.values():
                conns.pop(number, None)

        def route_frame(self, tag: int, metadata: Mapping[str, str]) -> list[ClientConnection]:
            return list(self.by_tag.get(tag, {}).values())

    return {
        "native": {},
        "native+connection-mw": {"connection_middleware": [connection_mw]},
        "python": {},
        "python+frame-mw": {"frame_middleware": [frame_mw]},
        "python+metadata-router": {"router": ByTag()},
    }[mode]


def serve_zipper(mode: str, port: int) -> None:
    """Run our zipper with ``mode``'s hooks until SIGTERM (a child of the bench)."""
    import yomo.aio

    async def main() -> None:
        zipper = yomo.aio.Zipper(
            "bench", "127.0.0.1", port, stats_interval=0, **_zipper_options(mode)
        )
        await zipper.start()
        print(json.dumps({"event": "ready", "backend": zipper.backend}), flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await zipper.stop()

    asyncio.run(main())


def _ybench(log: Any) -> Path:
    toolchain = gh.find_go_toolchain()
    if toolchain is None:
        raise SystemExit("hooks_bench: no `go` on PATH")
    gh.build_go_bins(toolchain)
    out = gh.CACHE_DIR / "bench-bin" / "ybench"
    if not out.exists():
        log("building ybench ...")
        res = toolchain.run(["build", "-o", str(out), "./cmd/ybench"], ROOT / "bench" / "go")
        if res.returncode != 0:
            raise SystemExit(f"go build ./cmd/ybench failed:\n{res.stdout}")
    return out


def _lines(proc: subprocess.Popen[str], event: str, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{proc.args}: ended before {event!r}")
        if line.startswith("{"):
            obj = json.loads(line)
            if obj.get("event") == event:
                return dict(obj)
    raise RuntimeError(f"{proc.args}: no {event!r} within {timeout} s")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def one_run(ybench: Path, mode: str, size: int, seconds: float) -> tuple[float, str]:
    """Frames/s at the sink for one run of ``mode``, and the backend the zipper used."""
    port = gh.free_udp_port()
    env = dict(os.environ)
    env.pop("YOMO_QUIC_BACKEND", None)
    if mode.startswith("python"):
        env["YOMO_QUIC_BACKEND"] = "qh3"
    zipper = subprocess.Popen(
        [sys.executable, __file__, "zipper", mode, str(port)],
        stdout=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    procs = [zipper]
    try:
        backend = _lines(zipper, "ready", 30)["backend"]
        addr = f"127.0.0.1:{port}"
        sink = subprocess.Popen(
            [str(ybench), "sink", "-zipper", addr, "-observe", hex(TAG), "-size", str(size)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
        )  # fmt: skip
        procs.append(sink)
        _lines(sink, "connected", 30)
        source = subprocess.Popen(
            [str(ybench), "source", "-zipper", addr, "-tag", hex(TAG), "-size", str(size),
             "-duration", f"{seconds}s", "-linger", "1s"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
        )  # fmt: skip
        procs.append(source)
        _lines(source, "summary", seconds + 60)
        source.wait(30)
        _stop(sink)
        summary = _lines(sink, "summary", 30)
        frames, elapsed = summary["frames"], summary["elapsed_s"]
        return (frames / elapsed if elapsed else 0.0), backend
    finally:
        for proc in reversed(procs):
            _stop(proc)


async def memory_run(mode: str, size: int, frames: int) -> float:
    """Frames/s from a memory source through the zipper's Python routing to a memory function."""
    import yomo
    import yomo.aio
    from yomo.wire import ClientType, DataFrame, HandshakeFrame, encode_metadata
    from yomo.zipper.memory import MemoryListener

    listener = MemoryListener()
    options = _zipper_options(mode) if mode != "python" else {}
    zipper = yomo.aio.Zipper("bench", "127.0.0.1", 0, stats_interval=0, listeners=[listener],
                             **options)  # fmt: skip
    await zipper.start()
    try:
        fn = await listener.dial()
        await fn.handshake(HandshakeFrame(name="fn", id="fn", version=yomo.SPEC_VERSION,
                                          client_type=ClientType.STREAM_FUNCTION,
                                          observe_data_tags=(TAG,)))  # fmt: skip
        src = await listener.dial()
        await src.handshake(HandshakeFrame(name="src", id="src", version=yomo.SPEC_VERSION,
                                           client_type=ClientType.SOURCE))  # fmt: skip
        md = encode_metadata({"yomo-tid": "t", "yomo-source-id": "src"})
        frame = DataFrame(tag=TAG, metadata=md, payload=b"x" * size).encode()

        async def read_all() -> None:
            for _ in range(frames):
                await fn.read_frame()

        reading = asyncio.ensure_future(read_all())
        start = time.perf_counter()
        for _ in range(frames):
            await src.write_frame(frame)
        await reading
        return frames / (time.perf_counter() - start)
    finally:
        await zipper.stop()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["zipper"]:
        serve_zipper(args[1], int(args[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--memory", action="store_true", help="the Python routing alone")
    parser.add_argument("--frames", type=int, default=50_000, help="frames per --memory run")
    opts = parser.parse_args(args)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if opts.memory:
        modes = ["python", "python+frame-mw", "python+metadata-router"]
        results: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(opts.repeat):
            for mode in modes:
                results[mode].append(asyncio.run(memory_run(mode, opts.size, opts.frames)))
                log(f"{mode:24s} {results[mode][-1]:10.0f} frames/s")
        base = statistics.median(results["python"])
        print(f"\n{opts.size} B frames, memory source -> our zipper's Python routing -> memory "
              f"function, {opts.frames} frames, median of {opts.repeat}; "
              f"load average {os.getloadavg()[0]:.1f}\n")  # fmt: skip
        print("| zipper (pure-Python routing) | frames/s (median, min-max) | vs no hooks | "
              "µs per frame added |")  # fmt: skip
        print("|---|---|---|---|")
        for mode in modes:
            med = statistics.median(results[mode])
            added = (1 / med - 1 / base) * 1e6
            print(f"| {MEMORY_MODES[mode]} | {med:,.0f} ({min(results[mode]):,.0f}-"
                  f"{max(results[mode]):,.0f}) | {med / base:.2f}x | {added:+.1f} |")  # fmt: skip
        return

    ybench = _ybench(log)
    runs: dict[str, list[float]] = {m: [] for m in MODES}
    backends: dict[str, str] = {}
    for r in range(opts.repeat):
        for mode in MODES:
            fps, backends[mode] = one_run(ybench, mode, opts.size, opts.seconds)
            runs[mode].append(fps)
            log(f"repeat {r + 1}: {mode:24s} {fps:10.0f} frames/s")
    base = statistics.median(runs["native"])
    print(f"\n{opts.size} B frames, Go ybench source -> our zipper -> Go ybench sink, "
          f"{opts.seconds:g} s, median of {opts.repeat}; load average {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print("| zipper | frames/s (median, min-max) | vs native, no hooks | data path |")
    print("|---|---|---|---|")
    for mode, label in MODES.items():
        med = statistics.median(runs[mode])
        print(
            f"| {label} | {med:,.0f} ({min(runs[mode]):,.0f}-{max(runs[mode]):,.0f}) "
            f"| {med / base:.2f}x | {backends[mode]} |"
        )


if __name__ == "__main__":
    main()
