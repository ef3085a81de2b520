"""AI bridge overhead: a tool-call round trip through our bridge vs Go's, same run.

Each chat request takes two LLM turns and one tool call: the scripted
OpenAI-compatible server (tests/support/scripted_llm.py, in a process of its own)
asks for ``get-weather``, the bridge calls the function through its
zipper, and the LLM's second turn quotes the result. The function is Go's own
``yomo init -t llm -r go`` template run by Go's ``yomo run`` (tests/interop/go_llm.py),
the same binary for both zippers. Zippers: ours (``python -m yomo serve -c``) and
Go's v1.22.3 (``yomo serve -c``), each in its own process, alternating per repeat.
The load: ``--concurrency`` (100) clients posting ``/v1/chat/completions`` back to
back for ``--seconds`` (10); the baseline is the same clients doing the two LLM
calls straight to the scripted server, so the difference is what a bridge adds.

    .venv-test/bin/python bench/bridge_bench.py            # writes bench/out/bridge.json
    .venv-test/bin/python bench/bridge_bench.py --publish  # ... and its section of RESULTS.md

Not part of the test suite; needs Go on PATH (the interop harness builds Go's yomo).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))
sys.path.insert(0, str(ROOT / "tests"))

import goharness as gh  # noqa: E402
from go_llm import GoLLMFunctions, prepare_go_llm_app  # noqa: E402

from support.scripted_llm import ScriptedLLM, call_tools_then_answer  # noqa: E402

OUT = ROOT / "bench" / "out"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
BEGIN = "<!-- bench/bridge_bench.py: section begin -->"
END = "<!-- bench/bridge_bench.py: section end -->"
ARGS = {"city": "New York", "latitude": 40.7128, "longitude": -74.006}
RESULT = "The current weather in New York (40.712800,-74.006000) is sunny"


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(path: Path, llm_url: str) -> tuple[Path, str, int]:
    """A zipper.yaml with the AI bridge on the scripted LLM; returns it, the zipper, the API port."""
    port, api = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    path.write_text(
        f"name: bench\nhost: 127.0.0.1\nport: {port}\n"
        f"bridge:\n  ai:\n    server:\n      addr: 127.0.0.1:{api}\n      provider: vllm\n"
        f"    providers:\n      vllm:\n        api_endpoint: {llm_url}\n"
    )
    return path, f"127.0.0.1:{port}", api


def start_zipper(which: str, cfg: Path, bins: gh.GoBins) -> subprocess.Popen[bytes]:
    if which == "go":
        argv = [str(bins.yomo), "serve", "-c", str(cfg)]
    else:
        argv = [sys.executable, "-m", "yomo", "--log-level", "warn", "serve", "-c", str(cfg)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOMO_", "OTEL_"))}
    env["YOMO_LOG_LEVEL"] = os.environ.get("BENCH_ZIPPER_LOG", "error")
    log = open(cfg.with_suffix(".log"), "wb")
    return subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


async def wait_ready(api: str, names: list[str], timeout: float = 240.0) -> None:
    """Until /overview answers and lists exactly ``names`` (the functions registered)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                body = (await http.get(api + "/overview")).json()
                if [f.get("name") for f in body.get("Functions") or []] == names:
                    return
            await asyncio.sleep(0.3)
    raise TimeoutError(f"{api}: /overview did not list {names} within {timeout:g} s")


async def load(
    url: str, concurrency: int, seconds: float, *, direct: bool = False
) -> dict[str, Any]:
    """``concurrency`` clients, back to back, for ``seconds``: latencies and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    ask = [{"role": "user", "content": "weather in New York?"}]
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        stop_at = time.monotonic() + seconds

        async def one_bridge() -> None:
            r = await http.post(url, json={"model": "m", "messages": ask})
            content = r.json()["choices"][0]["message"]["content"]
            if RESULT not in content:
                raise ValueError(f"unexpected answer {content!r}")

        async def one_direct() -> None:  # the two LLM turns, without a bridge
            first = await http.post(url, json={"model": "m", "messages": ask, "tools": TOOLS})
            call = first.json()["choices"][0]["message"]["tool_calls"][0]
            messages = [
                *ask,
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": RESULT},
            ]
            r = await http.post(url, json={"model": "m", "messages": messages})
            if RESULT not in r.json()["choices"][0]["message"]["content"]:
                raise ValueError("unexpected answer")

        one = one_direct if direct else one_bridge

        async def client() -> None:
            while time.monotonic() < stop_at:
                start = time.perf_counter()
                try:
                    await one()
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    await asyncio.sleep(0.05)
                    continue
                latencies.append(time.perf_counter() - start)

        began = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.monotonic() - began
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0
        )

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "calls_per_s": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else 0.0,
    }


TOOLS = [
    {
        "type": "function",
        "function": {"name": "get-weather", "parameters": {"type": "object", "properties": {}}},
    }
]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    toolchain = gh.find_go_toolchain()
    if toolchain is None:
        raise SystemExit("bridge_bench: needs Go on PATH (to build Go's yomo and its LLM function)")
    bins = gh.build_go_bins(toolchain)
    app = prepare_go_llm_app(bins)
    rows: dict[str, list[dict[str, Any]]] = {"baseline": [], "ours": [], "go": []}
    load_start = os.getloadavg()[0]
    llm_port = free_port(socket.SOCK_STREAM)
    llm_proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-llm", str(llm_port)], start_new_session=True
    )
    llm_url = f"http://127.0.0.1:{llm_port}/v1"
    try:
        await wait_llm(llm_url)
        return await measure(args, bins, app, llm_url, rows, load_start)
    finally:
        stop(llm_proc)


async def wait_llm(url: str) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url + "/models")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError("the scripted LLM did not start")


async def measure(
    args: argparse.Namespace,
    bins: gh.GoBins,
    app: Path,
    llm_url: str,
    rows: dict[str, list[dict[str, Any]]],
    load_start: float,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            rows["baseline"].append(
                await load(
                    llm_url + "/chat/completions", args.concurrency, args.seconds, direct=True
                )
            )
            order = ("ours", "go") if repeat % 2 == 0 else ("go", "ours")
            for which in order:
                cfg, zipper_addr, api_port = config(Path(tmp) / f"{which}-{repeat}.yaml", llm_url)
                zipper = start_zipper(which, cfg, bins)
                functions = GoLLMFunctions(bins, app)
                try:
                    api = f"http://127.0.0.1:{api_port}"
                    await wait_ready(api, [])  # the zipper (and its bridge) listen
                    proc = functions.start("get-weather", zipper_addr)
                    try:
                        await wait_ready(api, ["get-weather"])
                    except TimeoutError:
                        print(proc.tail(), file=sys.stderr)
                        raise
                    await load(api + "/v1/chat/completions", 10, 1.0)  # warm-up
                    result = await load(
                        api + "/v1/chat/completions", args.concurrency, args.seconds
                    )
                    rows[which].append(result)
                    print(f"repeat {repeat + 1} {which}: {json.dumps(result)}", flush=True)
                finally:
                    functions.stop_all()
                    stop(zipper)
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average": [load_start, os.getloadavg()[0]],
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "rows": rows,
    }


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows) if rows else 0.0


def render(res: dict[str, Any]) -> str:
    rows = res["rows"]
    lines = [
        BEGIN,
        "## AI bridge overhead (bench/bridge_bench.py)",
        "",
        "A chat request through the AI bridge: two LLM turns (the scripted OpenAI-compatible",
        "server of tests/support, in a process of its own) and one tool call to Go's",
        "`get-weather` LLM function (Go's `yomo init -t llm` template, run by Go's `yomo run`,",
        "the same binary for both zippers). "
        f"{res['concurrency']} clients post `/v1/chat/completions` back to back for "
        f"{res['seconds']:g} s; zippers alternate; medians of {res['repeats']} repeats. "
        "*Direct* is the same clients making the two LLM calls themselves (no bridge, no tool).",
        "",
        "    .venv-test/bin/python bench/bridge_bench.py --publish",
        "",
        f"Run {res['when']} on {res['machine']}; CPython {res['python']}; load average "
        f"{res['load_average'][0]:.1f} at start, {res['load_average'][1]:.1f} at end (2 cores, shared).",
        "",
        "| path | requests/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for key, label in (
        ("baseline", "direct to the LLM"),
        ("ours", "our bridge"),
        ("go", "Go's bridge"),
    ):
        r = rows[key]
        lines.append(
            f"| {label} | {median(r, 'calls_per_s'):.0f} | {median(r, 'p50_ms'):.1f} | "
            f"{median(r, 'p99_ms'):.1f} | {sum(x['errors'] for x in r)} |"
        )
    ours, go = rows["ours"], rows["go"]
    if ours and go and median(go, "calls_per_s"):
        lines += [
            "",
            f"Ours vs Go: {median(ours, 'calls_per_s') / median(go, 'calls_per_s'):.2f}x the "
            f"requests/s, p50 {median(ours, 'p50_ms') / max(median(go, 'p50_ms'), 1e-9):.2f}x, "
            f"p99 {median(ours, 'p99_ms') / max(median(go, 'p99_ms'), 1e-9):.2f}x "
            "(below 1 is faster for latency).",
        ]
    lines += [
        "",
        "Where the time goes (py-spy on our zipper for 8 s at 100 clients, 2026-11-29, same",
        "setup): its event loop was busy about 63% of the time; the scripted LLM (Python",
        "threads, one process) is the shared limit. *Direct* is slower still because the",
        "bench's own Python clients then make both LLM calls on one event loop.",
        "With a fixed 100 clients the rate follows the time per request, and ours adds more",
        "of it than Go's (p50 above). Of our loop's busy time, 46% is the openai SDK sending",
        "and parsing the two LLM calls (httpx2 over its aiohttp transport, pydantic models),",
        "12% qh3/aioquic for the tool call's QUIC hops, 16% uvicorn and starlette. Before",
        "the bridge used the SDK's aiohttp transport, the SDK's default pure-Python pool",
        "took three quarters of the loop and ours did 0.32x Go's requests/s (20 clients).",
        "The run-to-run spread on this shared 2-core machine is wide: four full runs on",
        "2026-11-29 gave 0.59x, 0.70x, 0.86x (after the TCP_NODELAY fix of yomo._asgi)",
        "and 0.57x (on the native data path, the table above) Go's requests/s. Ours had 0",
        "to 3 client read errors (a connection closed without an answer) in about 1,400",
        "requests in two of the four runs, Go's none; a 40 s run of 1,515 requests to",
        "look for them had none, and the cause is not found yet.",
    ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def publish(section: str) -> None:
    text = RESULTS_MD.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS_MD.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--publish", action="store_true", help="write the section of bench/RESULTS.md"
    )
    parser.add_argument("--serve-llm", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_llm:  # the scripted LLM's own process
        server = ScriptedLLM(call_tools_then_answer({"get-weather": ARGS}), port=args.serve_llm)
        server.start()
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        server.stop()
        return
    res = asyncio.run(run(args))
    OUT.mkdir(exist_ok=True)
    (OUT / "bridge.json").write_text(json.dumps(res, indent=2))
    section = render(res)
    print(section)
    if args.publish:
        publish(section)


if __name__ == "__main__":
    main()
