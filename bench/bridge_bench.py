"""AI bridge overhead: a tool-call round trip through our bridge vs Go's, same run.

Each chat request takes two LLM turns and one tool call: the scripted
OpenAI-compatible server asks for ``get-weather``, the bridge calls the function
through its zipper, and the LLM's second turn quotes the result. The function is
Go's own ``yomo init -t llm -r go`` template run by Go's ``yomo run``
(tests/interop/go_llm.py), the same binary for both zippers. Zippers: ours
(``python -m yomo serve -c``) and Go's v1.22.3 (``yomo serve -c``), each in its own
process.

The harness is built not to be the bottleneck: the scripted LLM is
bench/bench_llm.py (the script and bodies of tests/support/scripted_llm.py, built
once per distinct reply and served by uvicorn, in a process of its own) and the
load comes from ``chatload`` (bench/go/cmd/chatload, Go's net/http client):
``--concurrency`` (100) clients posting ``/v1/chat/completions`` back to back for
``--seconds`` (10). *Direct* is the same clients making the bridge's two LLM calls
straight to the scripted LLM: the harness's own ceiling. The three rows are
interleaved within every repeat (the order rotates). Around every run the bench
reads the scripted LLM's counters (LLM calls per request: 2 on both bridges) and
the CPU time of every process (bridge, function, LLM, client).

    .venv-test/bin/python bench/bridge_bench.py            # writes bench/out/bridge.json
    .venv-test/bin/python bench/bridge_bench.py --publish  # ... and its section of RESULTS.md
    .venv-test/bin/python bench/bridge_bench.py --profile  # + py-spy on our zipper
    .venv-test/bin/python bench/bridge_bench.py --render bench/out/bridge.json --publish

Not part of the test suite; needs Go on PATH (the interop harness builds Go's yomo)
and the ``bench`` extra (psutil, py-spy).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))
sys.path.insert(0, str(ROOT / "tests"))

import goharness as gh  # noqa: E402
from go_llm import GoLLMFunctions, prepare_go_llm_app  # noqa: E402

OUT = ROOT / "bench" / "out"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
GO_BENCH_DIR = ROOT / "bench" / "go"
BEGIN = "<!-- bench/bridge_bench.py: section begin -->"
END = "<!-- bench/bridge_bench.py: section end -->"
ARGS = {"city": "New York", "latitude": 40.7128, "longitude": -74.006}
RESULT = "The current weather in New York (40.712800,-74.006000) is sunny"
PATHS = ("direct", "ours", "go", "nosdk")
LABELS = {
    "direct": "direct to the LLM (ceiling)",
    "ours": "our bridge",
    "go": "Go's bridge",
    "nosdk": "our bridge, LLM calls by aiohttp, no openai SDK (experiment)",
}


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uptime() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


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
    elif which == "nosdk":
        argv = [sys.executable, __file__, "--serve-zipper-without-sdk", str(cfg)]
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (``yomo run`` starts the function)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def build_chatload(toolchain: gh.GoToolchain) -> Path:
    """bench/go/cmd/chatload, built into the Go cache when its sources changed."""
    out = gh.CACHE_DIR / "bench-bin" / "chatload"
    sources = sorted([*(GO_BENCH_DIR / "cmd" / "chatload").glob("*.go"), GO_BENCH_DIR / "go.mod"])
    h = hashlib.sha256(toolchain.version.encode())
    for p in sources:
        h.update(p.read_bytes())
    stamp, stamp_file = h.hexdigest(), out.with_suffix(".stamp")
    if not (out.exists() and stamp_file.exists() and stamp_file.read_text() == stamp):
        res = toolchain.run(["build", "-o", str(out), "./cmd/chatload"], GO_BENCH_DIR)
        if res.returncode != 0:
            raise gh.GoBuildError(f"go build ./cmd/chatload failed:\n{res.stdout}")
        stamp_file.write_text(stamp)
    return out


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


async def wait_llm(url: str) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url + "/models")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError("the scripted LLM did not start")


async def llm_counts(llm_root: str) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=5) as http:
        counts: dict[str, int] = (await http.get(llm_root + "/_bench/counts")).json()
        return counts


async def chatload(
    binary: Path, url: str, concurrency: int, seconds: float, *, direct: bool = False
) -> dict[str, Any]:
    argv = [str(binary), "-url", url, "-c", str(concurrency), "-duration", f"{seconds}s"]
    argv += ["-expect", RESULT] + (["-direct", "-tool", "get-weather"] if direct else [])
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), seconds + 180)
    if proc.returncode != 0:
        raise RuntimeError(f"chatload failed ({proc.returncode}): {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


class Bench:
    """The processes of one bench run and the measurements taken around every load."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        toolchain = gh.find_go_toolchain()
        if toolchain is None:
            raise SystemExit("bridge_bench: needs Go on PATH (Go's yomo, its LLM function)")
        self.bins = gh.build_go_bins(toolchain)
        self.app = prepare_go_llm_app(self.bins)
        self.chatload = build_chatload(toolchain)
        self.llm_port = free_port(socket.SOCK_STREAM)
        self.llm_root = f"http://127.0.0.1:{self.llm_port}"
        self.llm_url = self.llm_root + "/v1"
        self.llm_proc: subprocess.Popen[bytes] | None = None
        self.profile_summary = ""

    @contextlib.contextmanager
    def llm(self) -> Iterator[None]:
        self.llm_proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-llm", str(self.llm_port)],
            start_new_session=True,
        )
        try:
            yield
        finally:
            stop(self.llm_proc)

    async def measured(
        self, url: str, pids: dict[str, int], *, direct: bool = False
    ) -> dict[str, Any]:
        """One load of ``--concurrency`` clients, with LLM counts and CPU around it."""
        assert self.llm_proc is not None
        pids = {**pids, "llm": self.llm_proc.pid}
        counts0 = await llm_counts(self.llm_root)
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        load = os.getloadavg()[0]
        result = await chatload(
            self.chatload, url, self.args.concurrency, self.args.seconds, direct=direct
        )
        cpu1 = {k: cpu_seconds(p) for k, p in pids.items()}
        counts1 = await llm_counts(self.llm_root)
        cpu = {k: cpu1[k] - cpu0[k] for k in pids}
        cpu["client"] = result.pop("client_cpu_s")
        done = result["requests"] + result["errors"]
        result["load_1min"] = load
        result["cpu_s"] = cpu
        result["cpu_ms_per_request"] = {k: v * 1000 / max(done, 1) for k, v in cpu.items()}
        result["llm"] = {k: counts1[k] - counts0[k] for k in counts0}
        result["llm_calls_per_request"] = result["llm"]["requests"] / max(done, 1)
        return result

    async def direct(self) -> dict[str, Any]:
        return await self.measured(self.llm_url + "/chat/completions", {}, direct=True)

    async def bridge(self, which: str, repeat: int) -> dict[str, Any]:
        cfg, zipper_addr, api_port = config(self.tmp / f"{which}-{repeat}.yaml", self.llm_url)
        zipper = start_zipper(which, cfg, self.bins)
        functions = GoLLMFunctions(self.bins, self.app)
        try:
            api = f"http://127.0.0.1:{api_port}"
            await wait_ready(api, [])  # the zipper (and its bridge) listen
            proc = functions.start("get-weather", zipper_addr)
            try:
                await wait_ready(api, ["get-weather"])
            except TimeoutError:
                print(proc.tail(), file=sys.stderr)
                raise
            url = api + "/v1/chat/completions"
            await chatload(self.chatload, url, 10, 1.0)  # warm-up
            if self.args.profile and which == "ours" and repeat == 0:
                await self.profile(url, zipper.pid)
            tool_call = await tool_call_round_trip(zipper_addr)
            result = await self.measured(url, {"bridge": zipper.pid, "function": proc.pid})
            result["tool_call_ms"] = tool_call
            return result
        finally:
            functions.stop_all()
            stop(zipper)

    async def profile(self, url: str, pid: int) -> None:
        """py-spy on our zipper under the same load; a summary to bench/out/."""
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        raw = OUT / "bridge-profile.txt"
        seconds = max(2, int(self.args.seconds) - 2)
        argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200"]
        argv += ["--duration", str(seconds), "--idle", "--threads", "--nonblocking"]
        argv += ["-o", str(raw)]
        spy_proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        await chatload(self.chatload, url, self.args.concurrency, self.args.seconds)
        await spy_proc.wait()
        self.profile_summary = summarize_profile(raw)
        print(self.profile_summary, flush=True)

    async def run(self) -> dict[str, Any]:
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in PATHS}
        started = uptime()
        with self.llm():
            await wait_llm(self.llm_url)
            await chatload(self.chatload, self.llm_url + "/chat/completions", 10, 1.0, direct=True)
            sdk = await sdk_cost(self.llm_url)
            print(f"LLM client CPU per call: {json.dumps(sdk)}", flush=True)
            paths = [p for p in PATHS if p in self.args.paths.split(",")]
            for repeat in range(self.args.repeats):
                order = paths[repeat % len(paths) :] + paths[: repeat % len(paths)]
                for which in order:
                    if which == "direct":
                        result = await self.direct()
                    else:
                        result = await self.bridge(which, repeat)
                    rows[which].append(result)
                    print(f"repeat {repeat + 1} {which}: {json.dumps(result)}", flush=True)
        return {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
            f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
            "uptime": [started, uptime()],
            "concurrency": self.args.concurrency,
            "seconds": self.args.seconds,
            "repeats": self.args.repeats,
            "rows": rows,
            "llm_client_cpu_us": sdk,
            "profile": self.profile_summary,
        }


async def tool_call_round_trip(zipper_addr: str, calls: int = 300) -> dict[str, float]:
    """One tool call at a time through the zipper, as the bridge makes them (a ``Caller``
    in the bench process: 0xE002 out to the function, 0xE001 back): p50 and p90 in ms.
    Shows whether the zipper holds these small frames back (batching, Nagle-like waits)."""
    from yomo.bridge.caller import Caller, ToolCall, new_id

    caller = Caller(zipper_addr)
    await caller.start()
    took = []
    try:
        for _ in range(calls):
            start = time.perf_counter()
            (result,) = await caller.call(
                [ToolCall(new_id(8), "get-weather", json.dumps(ARGS))],
                tid=new_id(32),
                req_id=new_id(16),
                timeout=10,
            )
            took.append((time.perf_counter() - start) * 1000)
            if RESULT not in result.content:
                raise RuntimeError(f"unexpected tool result {result.content!r}")
    finally:
        await caller.stop()
    took = sorted(took[calls // 10 :])  # the first ones warm up
    return {"p50": took[len(took) // 2], "p90": took[int(len(took) * 0.9)]}


async def sdk_cost(llm_url: str, calls: int = 2000, concurrency: int = 50) -> dict[str, float]:
    """CPU time per non-streamed LLM call (µs) of the clients a bridge could use, 50 at
    once, against the scripted LLM: the openai SDK as our bridge calls it (aiohttp
    transport, the answer as a dict), the SDK building ``ChatCompletion`` models (as the
    bridge did before), and aiohttp alone (what the SDK sends through)."""
    import aiohttp
    import openai

    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "weather in New York?"}],
        "tools": [{"type": "function", "function": {"name": "get-weather", "parameters": {}}}],
    }
    client = openai.AsyncOpenAI(
        api_key="none", base_url=llm_url, http_client=openai.DefaultAioHttpClient()
    )
    session = aiohttp.ClientSession()
    url = llm_url + "/chat/completions"

    async def sdk_dict() -> None:
        await client.post("/chat/completions", body=body, cast_to=object)

    async def sdk_models() -> None:
        answer = await client.post(
            "/chat/completions", body=body, cast_to=openai.types.chat.ChatCompletion
        )
        answer.to_dict(mode="json")

    async def plain() -> None:
        async with session.post(url, json=body, headers={"Authorization": "Bearer none"}) as r:
            await r.json()

    async def measure(one: Any) -> float:
        async def worker(n: int) -> None:
            for _ in range(n):
                await one()

        await asyncio.gather(*(worker(10) for _ in range(concurrency)))  # warm-up
        before = time.process_time()
        await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
        return (time.process_time() - before) * 1e6 / (calls // concurrency * concurrency)

    try:
        return {
            "openai_sdk": await measure(sdk_dict),
            "openai_sdk_models": await measure(sdk_models),
            "aiohttp": await measure(plain),
        }
    finally:
        await session.close()
        await client.close()


#: Where a sample of the loop counts, first match wins (by the packages in its stack).
_CATEGORIES = (
    (
        "LLM calls: the openai SDK (openai, httpx2, aiohttp)",
        ("openai", "httpx2", "aiohttp", "aiohappyeyeballs", "yomo/bridge/providers.py"),
    ),
    (
        "tool calls: caller, clients, native transport, wire",
        ("yomo/bridge/caller.py", "yomo/client/", "yomo/transport/", "yomo/wire/", "yomo/ai/"),
    ),
    (
        "HTTP serving: uvicorn, starlette, the bridge's handlers",
        ("uvicorn", "starlette", "h11", "httptools", "yomo/bridge/"),
    ),
    ("event loop and sockets (asyncio, selectors)", ("asyncio", "selectors")),
)


def summarize_profile(raw: Path, top: int = 12) -> str:
    """py-spy's raw stacks (``--threads --idle``) of the event loop's thread: how busy it
    was, where its busy samples went (``_CATEGORIES``), the packages found in them
    (inclusive) and the functions it spent its own time in."""
    stacks: dict[str, list[tuple[list[str], int]]] = collections.defaultdict(list)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        thread, _, rest = stack.partition(";")
        frames = [f for f in rest.split(";") if f.endswith(")") and "(" in f]
        stacks[thread].append((frames, int(count)))
    loop_thread = max(
        stacks,
        key=lambda t: sum(n for f, n in stacks[t] if any("run_forever" in x for x in f)),
        default="",
    )
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    category: collections.Counter[str] = collections.Counter()
    total = busy = 0
    for frames, n in stacks.get(loop_thread, []):
        total += n
        if not frames or _idle(frames[-1]):
            continue
        busy += n
        own[_short(frames[-1])] += n
        areas = {_area(f) for f in frames}
        for area in areas:
            inclusive[area] += n
        category[_category(areas)] += n

    def pct(n: int) -> str:
        return f"{100 * n / max(busy, 1):5.1f}%"

    lines = [
        f"py-spy, the event loop's thread: {total} samples, busy "
        f"{100 * busy / max(total, 1):.0f}% (the rest waiting in select); of the busy ones:",
    ]
    lines += [f"{pct(n)}  {c}" for c, n in category.most_common()]
    lines.append("packages in the busy samples' stacks (inclusive):")
    skip = ("<frozen", "click", "yomo/cli", "yomo/__main__")
    shown = [(a, n) for a, n in inclusive.most_common() if not a.startswith(skip)]
    lines += [f"{pct(n)}  {a}" for a, n in shown[:top]]
    lines.append("busiest functions (own time):")
    lines += [f"{pct(n)}  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def _category(areas: set[str]) -> str:
    for name, markers in _CATEGORIES:
        if any(a == m or a.startswith(m) for a in areas for m in markers):
            return name
    return "other"


def _idle(frame: str) -> bool:
    name, _, where = frame.partition(" (")
    return where.startswith("selectors.py") and name.endswith("select")


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rstrip(')')})"


def _area(frame: str) -> str:
    """A frame's package (``openai``, ``asyncio``), or its file for our own code."""
    path = frame.partition(" (")[2].rsplit(":", 1)[0]
    if path.startswith("yomo/"):
        return path
    return path.split("/", 1)[0].removesuffix(".py")


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows) if rows else 0.0


def spread(rows: list[dict[str, Any]], key: str, fmt: str = "{:.0f}") -> str:
    if not rows:
        return "-"
    values = [r[key] for r in rows]
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def cpu_median(rows: list[dict[str, Any]], part: str) -> float | None:
    """Median CPU ms per request of one process (``bridge``, ``llm``, ...) over repeats."""
    values = [x["cpu_ms_per_request"][part] for x in rows if part in x["cpu_ms_per_request"]]
    return statistics.median(values) if values else None


def limits(res: dict[str, Any]) -> list[str]:
    """What bounds each bridge, from the CPU figures of the run."""
    rows, sdk = res["rows"], res.get("llm_client_cpu_us")
    parts = ("bridge", "function", "llm", "client")
    own = {k: cpu_median(rows[k], "bridge") for k in ("ours", "go", "nosdk")}
    total = {
        k: sum(cpu_median(rows[k], p) or 0.0 for p in parts) for k in own if own[k] is not None
    }
    if own["ours"] is None or own["go"] is None or not sdk:
        return []
    extra = 2 * (sdk["openai_sdk"] - sdk["aiohttp"]) / 1000
    lines = [
        "",
        f"What limits ours is CPU. A request costs our zipper process {own['ours']:.2f} ms of",
        "CPU, nearly all of it on one thread: the zipper's event loop, which the bridge",
        "shares by design (issue 18; Python's GIL would serialize threads anyway). That",
        f"alone caps it near {1000 / own['ours']:.0f} requests/s on an idle core; Go's bridge",
        f"costs {own['go']:.2f} ms, spread over all cores. The two LLM calls through the",
        f"openai SDK cost about {extra:.2f} ms more than aiohttp alone would",
        f"({sdk['openai_sdk']:.0f} vs {sdk['aiohttp']:.0f} µs per call, above).",
    ]
    if own["nosdk"] is not None:
        lines += [
            f"The experiment, the same bridge without the SDK, needs {own['nosdk']:.2f} ms",
            f"(a one-core cap near {1000 / own['nosdk']:.0f} requests/s).",
        ]
    lines += [
        "On the 2 shared cores everything else runs too: all processes together spend "
        + ", ".join(
            f"{total[k]:.2f} ms ({LABELS[k].split(',')[0]}{', experiment' if k == 'nosdk' else ''})"
            for k in total
        )
        + " per request.",
    ]
    return lines


def render(res: dict[str, Any]) -> str:
    rows = res["rows"]
    lines = [
        BEGIN,
        "## AI bridge overhead (bench/bridge_bench.py)",
        "",
        "A chat request through the AI bridge: two LLM turns and one tool call to Go's",
        "`get-weather` LLM function (Go's `yomo init -t llm` template, run by Go's `yomo run`,",
        "the same binary for both zippers). The scripted LLM is bench/bench_llm.py (the",
        "script and bodies of tests/support/scripted_llm.py, each distinct body built once,",
        "served by uvicorn in a process of its own); the clients are bench/go/cmd/chatload",
        f"(Go net/http): {res['concurrency']} clients post `/v1/chat/completions` back to back",
        f"for {res['seconds']:g} s. *Direct* is the same clients making the bridge's two LLM",
        "calls straight to the scripted LLM: the harness's ceiling. The rows alternate",
        f"within each of {res['repeats']} repeats (the order rotates); cells are the median",
        "(min-max). The last row is an experiment, not the product: our bridge with its LLM",
        "calls made by aiohttp directly instead of through the openai SDK.",
        "",
        "    .venv-test/bin/python bench/bridge_bench.py --publish",
        "",
        f"Run {res['when']} on {res['machine']}; CPython {res['python']}. The machine's 2",
        "cores are shared with other developers; `uptime` at start and end:",
        "",
        f"    {res['uptime'][0]}",
        f"    {res['uptime'][1]}",
        "",
        "| path | requests/s | p50 ms | p99 ms | errors | LLM calls/request |",
        "|---|---|---|---|---|---|",
    ]
    for key in PATHS:
        r = rows[key]
        lines.append(
            f"| {LABELS[key]} | {spread(r, 'calls_per_s')} | {spread(r, 'p50_ms', '{:.1f}')} | "
            f"{spread(r, 'p99_ms', '{:.1f}')} | {sum(x['errors'] for x in r)} | "
            f"{median([{'v': x['llm_calls_per_request']} for x in r], 'v'):.2f} |"
        )
    lines += [
        "",
        "CPU per request (ms, median over repeats; every process's user + system time during",
        "the load divided by the requests answered), and one tool call's round trip through",
        "the zipper without load (a `Caller`, as the bridge's, in the bench process, one call",
        "at a time: 0xE002 to the function and 0xE001 back):",
        "",
        "| path | bridge (zipper process) | function | scripted LLM | clients | tool call p50 / p90 ms |",
        "|---|---|---|---|---|---|",
    ]
    for key in PATHS:
        r = rows[key]

        def cpu(part: str, r: list[dict[str, Any]] = r) -> str:
            value = cpu_median(r, part)
            return f"{value:.2f}" if value is not None else "-"

        trips = [x["tool_call_ms"] for x in r if "tool_call_ms" in x]
        trip = (
            f"{statistics.median(t['p50'] for t in trips):.2f} / "
            f"{statistics.median(t['p90'] for t in trips):.2f}"
            if trips
            else "-"
        )
        lines.append(
            f"| {LABELS[key]} | {cpu('bridge')} | {cpu('function')} | {cpu('llm')} | "
            f"{cpu('client')} | {trip} |"
        )
    go = rows["go"]
    for key, who in (("ours", "Ours"), ("nosdk", "The experiment without the SDK")):
        ours = rows[key]
        if not (ours and go and median(go, "calls_per_s")):
            continue
        ratios = [o["calls_per_s"] / g["calls_per_s"] for o, g in zip(ours, go, strict=False)]
        lines += [
            "",
            f"{who} vs Go: {median(ours, 'calls_per_s') / median(go, 'calls_per_s'):.2f}x "
            f"the requests/s (per repeat {', '.join(f'{x:.2f}x' for x in ratios)}), p50 "
            f"{median(ours, 'p50_ms') / max(median(go, 'p50_ms'), 1e-9):.2f}x, p99 "
            f"{median(ours, 'p99_ms') / max(median(go, 'p99_ms'), 1e-9):.2f}x "
            "(below 1 is faster for latency).",
        ]
    sdk = res.get("llm_client_cpu_us")
    if sdk:
        lines += [
            "",
            "CPU per non-streamed LLM call of the client alone (bench process, 50 calls at",
            f"once to the scripted LLM): the openai SDK as our bridge calls it "
            f"{sdk['openai_sdk']:.0f} µs, the SDK building `ChatCompletion` models (as before)",
            f"{sdk['openai_sdk_models']:.0f} µs, aiohttp alone (the SDK's transport) "
            f"{sdk['aiohttp']:.0f} µs.",
        ]
    lines += limits(res)
    if res.get("profile"):
        lines += [
            "",
            "Where our bridge's time goes: py-spy on our zipper during an extra load of the",
            "first repeat (`--profile`). Stacks py-spy could not unwind to the loop count",
            "where their frames put them.",
            "",
            *(f"    {line}" for line in res["profile"].splitlines()),
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


def serve_llm(port: int) -> None:
    """The scripted LLM's own process (bench/bench_llm.py with the bench's script)."""
    from bench_llm import main as serve

    from support.scripted_llm import call_tools_then_answer

    serve(call_tools_then_answer({"get-weather": ARGS}), port)


def serve_zipper_without_sdk(cfg: str) -> None:
    """``yomo serve -c cfg`` with the provider's non-streamed call made by aiohttp directly.

    An experiment, not the product (issue 18 has the bridge call OpenAI-compatible
    providers through the official openai SDK): it measures, in the same run, how much
    of our bridge's time per request the SDK takes. Only the success path the bench
    takes is done here (no retries, no error mapping beyond a status check).
    """
    import aiohttp

    from yomo.bridge import providers
    from yomo.cli import main as yomo_main

    sessions: dict[int, aiohttp.ClientSession] = {}

    async def chat(self: providers.OpenAICompatible, body: dict[str, Any]) -> Any:
        session = sessions.get(id(self))
        if session is None:
            session = sessions[id(self)] = aiohttp.ClientSession()
        url = str(self.client.base_url).rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {self.client.api_key}"}
        async with session.post(url, json=self.prepare(body), headers=headers) as response:
            if response.status != 200:
                raise providers.ProviderError(
                    f"provider {self.name}: status {response.status}", status=502
                )
            return await response.json()

    providers.OpenAICompatible.chat = chat  # type: ignore[method-assign]
    sys.argv = ["yomo", "--log-level", "warn", "serve", "-c", cfg]
    yomo_main()


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
    parser.add_argument(
        "--paths", default=",".join(PATHS), help=f"which rows to run (default: {','.join(PATHS)})"
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on our zipper during one extra load"
    )
    parser.add_argument(
        "--render", metavar="JSON", help="print (and --publish) the section of a saved run"
    )
    parser.add_argument("--serve-llm", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-zipper-without-sdk", metavar="CFG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_llm:
        serve_llm(args.serve_llm)
        return
    if args.serve_zipper_without_sdk:
        serve_zipper_without_sdk(args.serve_zipper_without_sdk)
        return
    OUT.mkdir(exist_ok=True)
    if args.render:
        res = json.loads(Path(args.render).read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            res = asyncio.run(Bench(args, Path(tmp)).run())
        (OUT / "bridge.json").write_text(json.dumps(res, indent=2))
    section = render(res)
    print(section)
    if args.publish:
        publish(section)


if __name__ == "__main__":
    main()
