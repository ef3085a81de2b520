"""LLM functions on another zipper of a mesh: offered by the bridge and called across it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from support.scripted_llm import ScriptedLLM, call_tools_then_answer
from support.wire_tool import WireTool
from yomo.client.core import ReconnectPolicy
from yomo.zipper.functions import FunctionRegistry, decode_announcement, encode_announcement
from yomo.zipper.server import Zipper

from .bridge_helpers import ai_bridge, bridge_url
from .helpers import PLAIN_TLS, eventually
from .test_mesh import mesh_of, ports_for

FAST_MESH = {"reconnect": ReconnectPolicy(initial_delay=0.1, max_delay=0.5, jitter=0.1)}


@pytest.fixture
async def started() -> AsyncIterator[list[Zipper]]:
    zippers: list[Zipper] = []
    yield zippers
    for z in reversed(zippers):
        await z.stop()


async def start(zippers: list[Zipper], name: str, ports: dict[str, int], **options: Any) -> Zipper:
    z = Zipper(
        name,
        "127.0.0.1",
        ports[name],
        tls=PLAIN_TLS,
        stats_interval=0,
        mesh=mesh_of(ports),
        mesh_options=FAST_MESH,
        **options,
    )
    # announcements every 1 s, so a peer's functions live 3 s without one: at 0.2 s
    # (a 0.6 s time to live) a loaded CI machine let zipper-a forget zipper-b's function
    # between learning it and calling it ("function `get-weather` is not registered")
    z.functions_announce_interval = 1.0
    await z.start()
    zippers.append(z)
    return z


async def test_a_function_on_a_peer_is_offered_and_called(started: list[Zipper]) -> None:
    ports = ports_for(("zipper-a", "zipper-b"))
    with ScriptedLLM(call_tools_then_answer({"get-weather": {"city": "Lima"}})) as llm:
        a = await start(started, "zipper-a", ports, bridge=ai_bridge(llm.base_url, call_timeout=10))
        b = await start(started, "zipper-b", ports)
        tool = WireTool("get-weather", b.addr)
        await tool.connect()
        await eventually(lambda: "get-weather" in a.functions, "zipper-a to learn the function", 10)
        entry = a.functions.get("get-weather")
        assert entry is not None and entry.zipper == "zipper-b"
        async with openai.AsyncOpenAI(base_url=bridge_url(a) + "/v1", api_key="k") as c:
            done = await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "weather?"}]
            )
        assert done.choices[0].message.content == (
            'Tool results: get-weather: get-weather got {"city":"Lima"}'
        )
        assert len(tool.calls) == 1
        # the function leaves: zipper-a forgets it with the next announcement
        await tool.close()
        await eventually(lambda: "get-weather" not in a.functions, "zipper-a to forget it", 10)
        # a zipper that stops announcing is forgotten after the time to live
        tool2 = WireTool("search", b.addr)
        await tool2.connect()
        await eventually(lambda: "search" in a.functions, "zipper-a to learn search", 10)
        await b.stop()
        await eventually(lambda: "search" not in a.functions, "zipper-a to forget zipper-b", 10)
        await tool2.close()


def test_announcements_apply_and_expire() -> None:
    local = FunctionRegistry()
    from yomo.ai import FunctionDefinition

    local.register(1, FunctionDefinition(name="mine"))
    zipper, defs = decode_announcement(encode_announcement("b", [*FunctionRegistry().functions()]))
    assert (zipper, defs) == ("b", [])
    changes: list[int] = []
    local.subscribe(lambda: changes.append(len(local)))
    local.apply_announcement("b", [FunctionDefinition(name="x"), FunctionDefinition(name="mine")])
    assert sorted(f.name for f in local.functions()) == ["mine", "x"]
    assert local.get("mine").zipper == ""  # type: ignore[union-attr]  # the local one keeps it
    local.apply_announcement("b", [FunctionDefinition(name="x")])
    assert changes == [2]  # nothing changed the second time
    assert local.expire(ttl=0.0) == ["b"]
    assert [f.name for f in local.functions()] == ["mine"]
