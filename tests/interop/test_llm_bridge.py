"""Python LLM functions behind Go YoMo v1.22.3's AI bridge and MCP server.

One Go ``yomo serve`` runs for the module with ``bridge.ai`` (provider ``vllm``,
``api_endpoint`` pointed at a scripted OpenAI-compatible server on loopback) and
``bridge.mcp``. Python functions register through their handshakes; the tests ask
through the bridge's ``/overview``, ``/invoke`` and ``/v1/chat/completions`` (the
official ``openai`` SDK, plain and streamed) and its MCP endpoint (the official
``mcp`` SDK), and check that the right arguments reach Python and the results reach
the answer.

Go's bridge waits 60 s for a function (``RunFunctionTimeout``, not configurable in
v1.22.3) and then tells the LLM ``timeout in this function calling, you should
ignore this.``. To check that exact text at the cost of at most one such wait, the
two calls that end that way, one to a function that answers late and one to a
function whose process is killed mid-call, are fired in the background when the
module starts; every other test runs meanwhile, and the last tests collect them.

Go's MCP server only learns of a function when it registers: a function whose
handshake lands before the MCP server exists is served by the AI bridge but is never
an MCP tool (``tools/call`` answers ``unknown tool``), and Go starts that server in a
goroutine beside the zipper, so "zipper is up and running" does not mean it exists.
The functions connect only once the MCP endpoint answers (see docs/interop.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import httpx
import openai
import pydantic
import pytest
from goharness import GoBins, GoZipper, GoZippers, free_udp_port

import yomo
from support.scripted_llm import (
    ScriptedLLM,
    by_prompt,
    call_tools_then_answer,
    first_user_text,
    tool_results,
)
from yomo.ai import FunctionCall
from yomo.ai.function_call import go_json

#: Go's text for a call the function did not answer in time (pkg/bridge/ai/caller).
GO_TIMEOUT_TEXT = "timeout in this function calling, you should ignore this."
SUNNY_NY = "The current weather in New York (40.712800,-74.006000) is sunny"
NEW_YORK = {"city": "New York", "latitude": 40.7128, "longitude": -74.0060}
TLS = yomo.TlsConfig()


@dataclass
class Weather:
    city: Annotated[str, "The city name to get the weather for"]
    latitude: Annotated[float, "The latitude of the city, in decimal format"]
    longitude: Annotated[float, "The longitude of the city, in decimal format"]


class AddArgs(pydantic.BaseModel):
    a: int = pydantic.Field(description="The first number")
    b: int = pydantic.Field(description="The second number")


class WhoArgs(TypedDict):
    greeting: Annotated[str, "How to greet"]


# -- the LLM's script: one plan per prompt ------------------------------------------------

SCRIPT = by_prompt(
    {
        "weather in New York": call_tools_then_answer({"get-weather": NEW_YORK}),
        "add and weather": call_tools_then_answer(
            {"get-weather": NEW_YORK, "add": {"a": 40, "b": 2}}
        ),
        "bad weather args": call_tools_then_answer({"get-weather": '{"city": 5}'}),
        "flaky weather": call_tools_then_answer({"flaky": {}}),
        "who am i": call_tools_then_answer({"whoami": {"greeting": "hello"}}),
        "slow weather": call_tools_then_answer({"slow": {}}),
        "vanishing weather": call_tools_then_answer({"vanishing": {}}),
    }
)

#: The functions this process runs for the whole module (vanishing is killed mid-way).
IN_PROCESS = {"get-weather", "add", "flaky", "whoami", "slow"}

VANISHING_FILE = """
import sys
import time


def description():
    return "A tool whose process dies while it is being called"


def handler(ctx):
    print("vanishing: call received", flush=True)
    time.sleep(300)
"""


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Bridge:
    """The Go zipper with its AI bridge and MCP server, and what runs behind it."""

    zipper: GoZipper
    llm: ScriptedLLM
    http: str
    mcp: str
    errors: list[BaseException]
    release_slow: threading.Event
    vanishing: subprocess.Popen[str]
    vanishing_called: threading.Event

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.http}/v1", api_key="unused", max_retries=0, timeout=120
        )

    def chat(self, prompt: str, **options: Any) -> Any:
        return self.openai().chat.completions.create(
            model="scripted-model", messages=[{"role": "user", "content": prompt}], **options
        )

    def overview(self) -> dict[str, dict[str, Any]]:
        reply = httpx.get(f"{self.http}/overview", timeout=10)
        reply.raise_for_status()
        return {f["name"]: f for f in reply.json()["Functions"]}


def _wait(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last error: {last})")


def _functions(addr: str, errors: list[BaseException], release: threading.Event) -> list[Any]:
    """The in-process Python LLM functions (sync and asyncio)."""

    def get_weather(ctx: yomo.Context) -> None:
        args = ctx.read_llm_arguments(Weather)
        ctx.write_llm_result(
            f"The current weather in {args.city} ({args.latitude:f},{args.longitude:f}) is sunny"
        )

    async def add(ctx: yomo.AsyncContext) -> None:
        args = ctx.read_llm_arguments(AddArgs)
        await ctx.write_llm_result({"sum": args.a + args.b})

    def flaky(ctx: yomo.Context) -> None:
        raise RuntimeError("the weather service is down")

    async def whoami(ctx: yomo.AsyncContext) -> None:
        args = ctx.read_llm_arguments(WhoArgs)
        user = ctx.agent_context() or {}
        await ctx.write_llm_result(f"{args['greeting']}, {user.get('user', 'stranger')}")

    def slow(ctx: yomo.Context) -> None:
        release.wait(120)  # answers only after Go's bridge has given up
        ctx.write_llm_result("too late")

    specs = [
        ("get-weather", get_weather, "Get current weather for a given city", Weather),
        ("add", add, "Add two integers", AddArgs),
        ("flaky", flaky, "A weather tool that always fails", None),
        ("whoami", whoami, "Greets the user of the agent", WhoArgs),
        ("slow", slow, "A tool that answers after Go's bridge has given up", None),
    ]
    started = []
    for name, handler, description, schema in specs:
        sfn = yomo.StreamFunction(
            name, addr, tls=TLS, description=description, input_schema=schema, concurrency=4
        )
        sfn.set_handler(handler)
        sfn.set_error_handler(errors.append)
        sfn.connect()
        started.append(sfn)
    return started


@pytest.fixture(scope="module")
def bridge(go_bins: GoBins, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    tmp = tmp_path_factory.mktemp("llm-bridge")
    http_port, mcp_port = _free_tcp_port(), _free_tcp_port()
    llm = ScriptedLLM(SCRIPT).start()
    zippers = GoZippers(go_bins, tmp)
    config = {
        "bridge": {
            "ai": {
                "server": {"addr": f"127.0.0.1:{http_port}", "provider": "vllm"},
                "providers": {"vllm": {"api_endpoint": llm.base_url, "model": "scripted-model"}},
            },
            "mcp": {"server": {"addr": f"127.0.0.1:{mcp_port}"}},
        }
    }
    zipper = zippers("zipper-llm", port=free_udp_port(), extra=config)
    # Go: cli/serve.go serveCmd runs mcp.Start in a goroutine and serves functions at once;
    # pkg/bridge/mcp/server.go MCPToolStore.AddMCPTool drops a tool while its server is nil.
    # mcp.Start sets that server before it listens, so an answer on /health means it is set.
    mcp_url = f"http://127.0.0.1:{mcp_port}"
    _wait(lambda: httpx.get(f"{mcp_url}/health", timeout=5).status_code == 200, "Go's MCP server")
    errors: list[BaseException] = []
    release = threading.Event()
    functions: list[Any] = []
    (tmp / "vanishing.py").write_text(VANISHING_FILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOMO_")}
    vanishing = subprocess.Popen(
        [sys.executable, "-m", "yomo", "run", "vanishing.py", "-z", zipper.addr],
        cwd=tmp,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    called = threading.Event()

    def watch() -> None:
        assert vanishing.stdout is not None
        for line in vanishing.stdout:
            if "vanishing: call received" in line:
                called.set()

    threading.Thread(target=watch, daemon=True).start()
    b = Bridge(zipper, llm, f"http://127.0.0.1:{http_port}", mcp_url,
               errors, release, vanishing, called)  # fmt: skip
    try:
        functions = _functions(zipper.addr, errors, release)
        names = IN_PROCESS | {"vanishing"}
        _wait(lambda: names <= set(b.overview()), "the functions on /overview")
        yield b
    finally:
        release.set()
        for sfn in functions:
            sfn.close()
        if vanishing.poll() is None:
            vanishing.kill()
        vanishing.wait(10)
        zippers.stop_all()
        llm.stop()


@dataclass
class SlowCalls:
    late: Future[Any]
    vanished: Future[Any]


@pytest.fixture(scope="module", autouse=True)
def slow_calls(bridge: Bridge) -> Iterator[SlowCalls]:
    """Fire the two calls that end in Go's 60 s timeout; the last tests collect them."""
    pool = ThreadPoolExecutor(3, thread_name_prefix="slow-call")
    late = pool.submit(bridge.chat, "slow weather, please")
    vanished = pool.submit(bridge.chat, "vanishing weather, please")

    def kill_when_called() -> None:
        if bridge.vanishing_called.wait(60):
            bridge.vanishing.send_signal(signal.SIGKILL)

    pool.submit(kill_when_called)
    yield SlowCalls(late, vanished)
    pool.shutdown(wait=False, cancel_futures=True)


# -- what the bridge lists ---------------------------------------------------------------------


def test_overview_lists_python_functions_with_their_definitions(bridge: Bridge) -> None:
    functions = bridge.overview()
    weather = yomo.ai.build_function_definition(
        "get-weather", "Get current weather for a given city", Weather
    )
    assert weather is not None
    assert functions["get-weather"] == weather.to_dict()
    assert functions["add"]["parameters"] == {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "description": "The first number"},
            "b": {"type": "integer", "description": "The second number"},
        },
        "required": ["a", "b"],
    }
    # no input schema: parameters is null, as Go writes it for a function without one
    assert functions["flaky"]["parameters"] is None
    assert functions["vanishing"]["description"].startswith("A tool whose process dies")


def test_go_writes_the_same_bytes(go_bins: GoBins) -> None:
    out = subprocess.run(
        [str(go_bins.dir / "fndef")], capture_output=True, text=True, timeout=30, check=True
    )
    lines = {o["case"]: o["text"] for o in map(json.loads, out.stdout.splitlines())}
    call = FunctionCall(
        tid="t1", req_id="r1", tool_call_id="c1", function_name="get-weather",
        arguments='{"city":"Paris"}', agent_context="null", is_ok=True, result="sunny <&> \u00e9",
    )  # fmt: skip
    assert call.to_bytes().decode() == lines["call"]
    no_args = yomo.ai.build_function_definition("no-args", "Takes nothing")
    assert no_args is not None and no_args.to_bytes().decode() == lines["no-args"]
    # Go cuts a jsonschema tag's description at its first comma: same shape otherwise
    go_weather = json.loads(lines["weather"])

    @dataclass
    class GoWeather:
        city: Annotated[str, "The city name to get the weather for"]
        latitude: Annotated[float, "The latitude of the city"]
        longitude: Annotated[float, "The longitude of the city"]

    ours = yomo.ai.build_function_definition("get-weather", go_weather["description"], GoWeather)
    assert ours is not None and ours.to_dict() == go_weather
    assert go_json(ours.to_dict()) == ours.to_bytes()


# -- /invoke and /v1/chat/completions ------------------------------------------------------


def test_invoke(bridge: Bridge) -> None:
    reply = httpx.post(
        f"{bridge.http}/invoke",
        json={"prompt": "What is the weather in New York?", "include_call_stack": True},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["content"] == f"Tool results: get-weather: {SUNNY_NY}"
    tool_messages = [m for m in body["history"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == [SUNNY_NY]


def test_chat_completions_with_the_openai_sdk(bridge: Bridge) -> None:
    prompt = "What is the weather in New York? (openai SDK)"
    completion = bridge.chat(prompt)
    assert completion.choices[0].message.content == f"Tool results: get-weather: {SUNNY_NY}"
    first, second = [r for r in bridge.llm.requests if first_user_text(r.body) == prompt]
    offered = {t["function"]["name"]: t["function"] for t in first.body["tools"]}
    assert offered["get-weather"]["parameters"]["required"] == ["city", "latitude", "longitude"]
    # the LLM's arguments reached Python as it chose them; the result came back as written
    assert tool_results(second.body) == [("get-weather", SUNNY_NY)]


def test_chat_completions_streamed(bridge: Bridge) -> None:
    stream = bridge.chat("What is the weather in New York? (streamed)", stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == f"Tool results: get-weather: {SUNNY_NY}"


def test_two_functions_in_one_turn(bridge: Bridge) -> None:
    completion = bridge.chat("add and weather, both")
    content = completion.choices[0].message.content
    assert content is not None
    results = dict(
        part.split(": ", 1) for part in content.removeprefix("Tool results: ").split(" | ")
    )
    assert results == {"get-weather": SUNNY_NY, "add": '{"sum":42}'}


def test_agent_context_reaches_the_function(bridge: Bridge) -> None:
    completion = bridge.chat("who am i?", extra_body={"agent_context": {"user": "ann"}})
    assert completion.choices[0].message.content == "Tool results: whoami: hello, ann"


def test_bad_arguments_are_answered_with_the_reason(bridge: Bridge) -> None:
    completion = bridge.chat("bad weather args")
    assert completion.choices[0].message.content == (
        "Tool results: get-weather: error: invalid arguments for function 'get-weather': "
        "field 'city': expected a string, got an integer"
    )


def test_a_raising_function_is_answered_and_reported(bridge: Bridge) -> None:
    completion = bridge.chat("flaky weather")
    assert completion.choices[0].message.content == (
        "Tool results: flaky: error: function 'flaky' failed: RuntimeError: "
        "the weather service is down"
    )
    _wait(
        lambda: any(
            isinstance(e, yomo.HandlerError) and isinstance(e.error, RuntimeError)
            for e in bridge.errors
        ),
        "the error handler",
        10,
    )


# -- MCP ---------------------------------------------------------------------------------------


def test_mcp_lists_and_calls_python_functions(bridge: Bridge) -> None:
    import mcp

    async def session() -> tuple[dict[str, Any], Any]:
        async with mcp.Client(f"{bridge.mcp}/mcp") as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            # every in-process function is on /overview (the fixture waited): Go's MCP
            # server must offer each of them too, before any is called
            missing = IN_PROCESS - set(tools)
            assert not missing, f"Go's MCP server does not offer {sorted(missing)}"
            result = await client.call_tool("get-weather", NEW_YORK)
            return tools, result

    try:
        tools, result = asyncio.run(session())
    except Exception as exc:  # say what Go's MCP server had done with its tools by then
        lines = [
            r
            for r in bridge.zipper.logs
            if any(word in str(r.get("msg", "")) for word in ("[mcp]", "ai function"))
        ]
        raise AssertionError(
            f"MCP session failed: {exc!r}; Go's [mcp] and (un)register log: {lines}"
        ) from exc
    assert tools["get-weather"].input_schema == bridge.overview()["get-weather"]["parameters"]
    assert tools["get-weather"].description == "Get current weather for a given city"
    # without an input schema Go's MCP server offers an empty object schema
    assert tools["flaky"].input_schema == {"type": "object"}
    assert [c.text for c in result.content] == [SUNNY_NY]


# -- the two calls fired at the start: Go's 60 s timeout -------------------------------------


def test_a_late_function_gets_gos_timeout_text(bridge: Bridge, slow_calls: SlowCalls) -> None:
    completion = slow_calls.late.result(timeout=100)
    assert completion.choices[0].message.content == f"Tool results: slow: {GO_TIMEOUT_TEXT}"
    bridge.release_slow.set()  # the late answer arrives after all; the bridge drops it
    assert bridge.chat("What is the weather in New York?").choices[0].message.content == (
        f"Tool results: get-weather: {SUNNY_NY}"
    )


def test_a_function_that_dies_mid_call(bridge: Bridge, slow_calls: SlowCalls) -> None:
    assert bridge.vanishing_called.is_set()
    assert bridge.vanishing.wait(10) == -signal.SIGKILL
    completion = slow_calls.vanished.result(timeout=100)
    assert completion.choices[0].message.content == f"Tool results: vanishing: {GO_TIMEOUT_TEXT}"
    # Go's zipper noticed the lost connection and unregistered the tool; the rest still work
    _wait(lambda: "vanishing" not in bridge.overview(), "vanishing off /overview", 30)
    assert "get-weather" in bridge.overview()


def test_the_python_functions_saw_no_unexpected_errors(bridge: Bridge) -> None:
    # only the two failures the tests above provoke (bad arguments, a raising handler)
    assert all(isinstance(e, yomo.HandlerError) for e in bridge.errors), bridge.errors
    inner = {type(e.error).__name__ for e in bridge.errors if isinstance(e, yomo.HandlerError)}
    assert inner <= {"LLMArgumentsError", "RuntimeError"}
