"""LLM functions behind a real zipper, called the way Go's AI bridge calls them.

The "bridge" here (``llm_bridge.Bridge``) is what Go's is made of: a source that
writes each ``FunctionCall`` on 0xE002 with the function's name as target, and a
stream function observing 0xE001 that collects the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import yomo
import yomo.aio
from yomo.ai import FUNCTION_CALL_TAG, FunctionCall, LLMArgumentsError
from yomo.testing import arun_llm_handler, run_llm_handler
from yomo.wire import TARGET, TID

from .helpers import PLAIN_TLS, eventually
from .llm_bridge import Bridge


@dataclass
class Weather:
    city: Annotated[str, "The city name to get the weather for"]
    latitude: Annotated[float, "The latitude of the city"]
    longitude: Annotated[float, "The longitude of the city"]


def get_weather(ctx: yomo.Context) -> None:
    args = ctx.read_llm_arguments(Weather)
    ctx.write_llm_result(
        f"The current weather in {args.city} ({args.latitude:f},{args.longitude:f}) is sunny"
    )


NEW_YORK = {"city": "New York", "latitude": 40.7128, "longitude": -74.0060}
SUNNY = "The current weather in New York (40.712800,-74.006000) is sunny"


@pytest.fixture
async def azipper() -> AsyncIterator[yomo.aio.Zipper]:
    z = yomo.aio.Zipper("llm-zipper", "127.0.0.1", 0, tls=PLAIN_TLS, stats_interval=0)
    await z.start()
    yield z
    await z.stop()


def test_run_llm_handler_through_a_real_zipper(yomo_zipper: yomo.Zipper) -> None:
    assert run_llm_handler(get_weather, NEW_YORK, input_schema=Weather, zipper=yomo_zipper) == SUNNY
    with pytest.raises(LLMArgumentsError, match="missing required field 'city'"):
        run_llm_handler(get_weather, {"latitude": 1}, input_schema=Weather, zipper=yomo_zipper)


async def test_arun_llm_handler_async_handler_and_agent_context() -> None:
    async def who(ctx: yomo.AsyncContext) -> None:
        user = ctx.agent_context()
        await ctx.write_llm_result({"user": user["name"], "args": ctx.read_llm_arguments()})

    got = await arun_llm_handler(who, {"q": 1}, agent_context={"name": "ann"})
    assert json.loads(got) == {"user": "ann", "args": {"q": 1}}


async def test_handshake_announces_the_tool(azipper: yomo.aio.Zipper) -> None:
    sfn = yomo.aio.StreamFunction(
        "get-weather",
        azipper.addr,
        observe_data_tags=[0x33],
        tls=PLAIN_TLS,
        description="Get current weather for a given city",
        input_schema=Weather,
    )
    sfn.set_handler(get_weather)
    async with sfn:
        [info] = [c for c in azipper.connections() if c.name == "get-weather"]
        # as Go's zipper sets on receipt: its name as target, and 0xE002 observed
        assert info.wanted_target == "get-weather"
        assert set(info.observed_tags) == {0x33, FUNCTION_CALL_TAG}
    fd = sfn.function_definition
    assert fd is not None and fd.parameters is not None
    assert fd.parameters["required"] == ["city", "latitude", "longitude"]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_calls_answers_and_failures(azipper: yomo.aio.Zipper, kind: str) -> None:
    errors: list[BaseException] = []

    def weather_or_fail(ctx: yomo.Context) -> None:
        if ctx.llm_function_call.tool_call_id == "raise":
            raise RuntimeError("the weather service is down")
        if ctx.llm_function_call.tool_call_id == "quiet":
            return
        get_weather(ctx)

    async def aweather_or_fail(ctx: yomo.AsyncContext) -> None:
        call = ctx.llm_function_call
        if call.tool_call_id == "raise":
            raise RuntimeError("the weather service is down")
        if call.tool_call_id == "quiet":
            return
        args = ctx.read_llm_arguments(Weather)
        await ctx.write_llm_result(
            f"The current weather in {args.city} ({args.latitude:f},{args.longitude:f}) is sunny"
        )

    def run() -> yomo.aio.StreamFunction:
        sfn = yomo.aio.StreamFunction(
            "get-weather",
            azipper.addr,
            tls=PLAIN_TLS,
            description="Get current weather for a given city",
            input_schema=Weather,
            concurrency=4,
        )
        sfn.set_handler(weather_or_fail if kind == "sync" else aweather_or_fail)
        sfn.set_error_handler(errors.append)
        return sfn

    async with run(), Bridge(azipper.addr) as bridge:
        await bridge.call("get-weather", NEW_YORK, "ok")
        await bridge.call("get-weather", {"city": 3}, "bad-args")
        await bridge.call("get-weather", NEW_YORK, "raise")
        await bridge.call("get-weather", NEW_YORK, "quiet")
        await bridge.call("nobody", NEW_YORK, "unrouted")  # no function of that name
        ok = await bridge.answer("ok")
        assert (ok.is_ok, ok.result) == (True, SUNNY)
        assert (ok.tid, ok.req_id, ok.function_name) == ("trans-1", "req-1", "get-weather")
        bad = await bridge.answer("bad-args")
        assert not bad.is_ok
        assert bad.result == (
            "error: invalid arguments for function 'get-weather': "
            "field 'city': expected a string, got an integer"
        )
        raised = await bridge.answer("raise")
        assert (raised.is_ok, raised.result) == (
            False,
            "error: function 'get-weather' failed: RuntimeError: the weather service is down",
        )
        quiet = await bridge.answer("quiet")
        assert (quiet.is_ok, quiet.result) == (
            False,
            "error: function 'get-weather' returned without write_llm_result",
        )
        await eventually(lambda: len(errors) == 3, "three errors reported")
        assert "unrouted" not in bridge.answers
    inner = sorted(type(e.error).__name__ for e in errors if isinstance(e, yomo.HandlerError))
    assert inner == ["LLMArgumentsError", "NoLLMResultError", "RuntimeError"]


async def test_answers_keep_the_frame_metadata_without_target(azipper: yomo.aio.Zipper) -> None:
    sfn = yomo.aio.StreamFunction(
        "echo-tool", azipper.addr, tls=PLAIN_TLS, description="Echo", input_schema=None
    )

    async def echo(ctx: yomo.AsyncContext) -> None:
        await ctx.write_llm_result(ctx.llm_function_call.arguments)

    sfn.set_handler(echo)
    async with sfn, Bridge(azipper.addr) as bridge:
        await bridge.call("echo-tool", "", "c1")
        answer = await bridge.answer("c1")
        assert answer.result == "" and answer.is_ok
        _, md = bridge.answers["c1"]
        assert TARGET not in md
        assert md[TID]  # the frame's own tid (the source's), kept


async def test_two_functions_get_only_their_own_calls(azipper: yomo.aio.Zipper) -> None:
    seen: dict[str, list[str]] = {"alpha": [], "beta": []}
    lock = threading.Lock()

    def make(name: str) -> yomo.aio.StreamFunction:
        def handler(ctx: yomo.Context) -> None:
            with lock:
                seen[name].append(ctx.llm_function_call.tool_call_id)
            ctx.write_llm_result(f"{name} done")

        sfn = yomo.aio.StreamFunction(
            name, azipper.addr, tls=PLAIN_TLS, description=f"The {name} tool"
        )
        sfn.set_handler(handler)
        return sfn

    async with make("alpha"), make("beta"), Bridge(azipper.addr) as bridge:
        for i in range(5):
            await bridge.call("alpha", {}, f"a{i}")
            await bridge.call("beta", {}, f"b{i}")
        for i in range(5):
            assert (await bridge.answer(f"a{i}")).result == "alpha done"
            assert (await bridge.answer(f"b{i}")).result == "beta done"
    assert seen == {"alpha": [f"a{i}" for i in range(5)], "beta": [f"b{i}" for i in range(5)]}


def test_sync_stream_function_is_a_tool(yomo_zipper: yomo.Zipper) -> None:
    sfn = yomo.StreamFunction(
        "get-weather",
        yomo_zipper.addr,
        tls=PLAIN_TLS,
        description="Get current weather for a given city",
        input_schema=Weather,
    )
    sfn.set_handler(get_weather)
    assert sfn.function_definition is not None
    with sfn:

        async def call() -> FunctionCall:
            async with Bridge(yomo_zipper.addr) as bridge:
                await bridge.call("get-weather", NEW_YORK, "s1")
                return await bridge.answer("s1")

        answer = yomo._sync.LoopThread.get().run(call(), 20)
    assert answer.result == SUNNY


async def test_spans_carry_gos_attributes_and_the_call(azipper: yomo.aio.Zipper) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sfn = yomo.aio.StreamFunction(
        "get-weather",
        azipper.addr,
        tls=PLAIN_TLS,
        description="Get current weather for a given city",
        input_schema=Weather,
        tracer_provider=provider,
    )
    sfn.set_handler(get_weather)
    async with sfn, Bridge(azipper.addr) as bridge:
        await bridge.call("get-weather", NEW_YORK, "t1")
        await bridge.call("get-weather", {}, "t2")
        await bridge.answer("t1")
        await bridge.answer("t2")
        await eventually(lambda: len(exporter.get_finished_spans()) == 2, "two spans")
        _, md = bridge.answers["t1"]
    spans = {s.attributes["tool_call_id"]: s for s in exporter.get_finished_spans()}
    good = dict(spans["t1"].attributes)
    assert good == {
        "sfn_handler_type": "async_handler",
        "recv_data_tag": FUNCTION_CALL_TAG,
        "recv_data_len": good["recv_data_len"],
        "function_name": "get-weather",
        "tool_call_id": "t1",
        "req_id": "req-1",
        "is_ok": True,
    }
    assert spans["t1"].name == "get-weather"
    assert spans["t2"].attributes["is_ok"] is False
    assert [e.name for e in spans["t2"].events] == ["exception"]
    # the answer carries the span's trace ids on, as every write of a handler does
    assert md["yomo-trace-id"] == format(spans["t1"].context.trace_id, "032x")


async def test_a_tool_needs_a_handler_and_a_usable_schema(azipper: yomo.aio.Zipper) -> None:
    sfn = yomo.aio.StreamFunction("t", azipper.addr, tls=PLAIN_TLS, description="d")
    sfn.set_cron_handler("@every 1h", lambda ctx: None)
    with pytest.raises(yomo.YomoError, match="is an LLM tool: set a handler"):
        await sfn.connect()
    with pytest.raises(yomo.FunctionDefinitionError, match='"type": "object"'):
        yomo.aio.StreamFunction("t", description="d", input_schema={"type": "string"})
    with contextlib.suppress(Exception):
        await sfn.close()
    await asyncio.sleep(0)
