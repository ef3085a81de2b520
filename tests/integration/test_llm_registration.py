"""LLM function registration in the zipper handshake (Go: core/server.go).

A stream function whose handshake carries a function definition is registered under
its name, observes 0xE002 with its name as wanted target, and is unregistered when
it leaves; a second one with the same name is refused with Go's text.
"""

from __future__ import annotations

from typing import Any

from support.wire_tool import WireTool
from yomo.ai import FUNCTION_CALL_TAG, REDUCER_TAG, FunctionCall

from .helpers import Clients, eventually


async def test_function_is_registered_targeted_and_unregistered(
    zipper: Any, clients: Clients
) -> None:
    z = await zipper()
    tool = WireTool("get-weather", z.addr)
    await tool.connect()
    assert tool.rejected is None
    assert [f.name for f in z.functions.functions()] == ["get-weather"]
    assert z.functions.get("get-weather").definition == tool.definition  # type: ignore[union-attr]
    info = next(c for c in z.connections() if c.name == "get-weather")
    assert info.wanted_target == "get-weather"
    assert FUNCTION_CALL_TAG in info.observed_tags
    assert z.stats()["llm_functions"] == ["get-weather"]

    # a call targeted at the function reaches it; its answer comes back on 0xE001
    _, results = await clients.sfn(z, "reducer", tags=[REDUCER_TAG])
    source = await clients.source(z)
    call = FunctionCall(req_id="r1", tool_call_id="t1", function_name="get-weather", arguments="{}")
    from yomo.client.context import build_frame
    from yomo.wire import metadata as md_keys

    frame = build_frame(
        FUNCTION_CALL_TAG, call.to_bytes(), {md_keys.TID: "tid1", md_keys.TARGET: "get-weather"}
    )
    assert frame is not None
    await source.send(frame)
    await results.wait_count(1)
    answered = FunctionCall.from_bytes(results.frames[0].payload)
    assert answered.is_ok and answered.result == "get-weather got {}"
    assert answered.tool_call_id == "t1"

    await tool.close()
    await eventually(lambda: len(z.functions) == 0, "the function to be unregistered")
    assert "llm_functions" not in z.stats()


async def test_second_function_with_the_same_name_is_refused_with_gos_text(zipper: Any) -> None:
    z = await zipper()
    first = WireTool("get-weather", z.addr)
    await first.connect()
    second = WireTool("get-weather", z.addr)
    await second.connect()
    assert second.rejected == "function `get-weather` already registered"
    assert z.stats()["rejections"] == 1
    # the first one keeps its registration; once it leaves the name is free again
    assert z.functions.get("get-weather").owner != 0  # type: ignore[union-attr]
    await first.close()
    await eventually(lambda: len(z.functions) == 0, "the first function to leave")
    third = WireTool("get-weather", z.addr)
    await third.connect()
    assert third.rejected is None
    await third.close()


async def test_a_definition_that_is_not_json_is_refused(zipper: Any, raw: Any) -> None:
    z = await zipper()
    from yomo._version import SPEC_VERSION
    from yomo.wire import ClientType, HandshakeFrame, RejectedFrame

    conn = await raw.dial(z)
    conn.send_nowait(
        HandshakeFrame(
            name="broken",
            id="b1",
            client_type=ClientType.STREAM_FUNCTION,
            version=SPEC_VERSION,
            function_definition=b"{not json",
        )
    )
    reply = await conn.read_frame()
    assert isinstance(reply, RejectedFrame)
    assert reply.message.startswith("unmarshal function definition error: ")
    assert len(z.functions) == 0


async def test_plain_stream_functions_are_not_registered(zipper: Any, clients: Clients) -> None:
    z = await zipper()
    await clients.sfn(z, "plain", tags=[0x33])
    assert len(z.functions) == 0
    info = next(c for c in z.connections() if c.name == "plain")
    assert info.observed_tags == (0x33,)
    assert info.wanted_target == ""
