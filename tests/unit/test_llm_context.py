"""The LLM side of the Context, in memory: reading arguments, answering once, failures."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

import pytest

import yomo
from yomo.ai import (
    FUNCTION_CALL_TAG,
    REDUCER_TAG,
    FunctionCall,
    FunctionCallError,
    LLMArgumentsError,
    NoLLMResultError,
    decode_arguments,
)
from yomo.client.llm import LLMFunction, failure_text
from yomo.testing import acall_llm_handler, call_llm_handler
from yomo.wire import TARGET, DataFrame, decode_frame, decode_metadata


@dataclass
class Weather:
    city: Annotated[str, "The city"]
    latitude: float
    longitude: float
    unit: Literal["celsius", "fahrenheit"] = "celsius"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Query(TypedDict, total=False):
    words: list[str]
    level: Level
    exact: bool


def weather(ctx: yomo.Context) -> None:
    args = ctx.read_llm_arguments(Weather)
    ctx.write_llm_result(
        f"The current weather in {args.city} ({args.latitude:f},{args.longitude:f}) is sunny"
    )


async def aweather(ctx: yomo.AsyncContext) -> None:
    args = ctx.read_llm_arguments(Weather)
    await ctx.write_llm_result({"city": args.city, "unit": args.unit})


def call_frame(**fields: Any) -> bytes:
    values = {"req_id": "r1", "tool_call_id": "c1", "function_name": "get-weather"}
    values.update(fields)
    return FunctionCall(**values).to_bytes()


def test_read_arguments_into_a_dataclass_and_answer() -> None:
    args = {"city": "New York", "latitude": 40.7128, "longitude": -74.0060}
    assert call_llm_handler(weather, args) == (
        "The current weather in New York (40.712800,-74.006000) is sunny"
    )
    # the JSON text an LLM sends works the same; a JSON-able result is sent as JSON
    text = '{"city": "Paris", "latitude": 48.85, "longitude": 2.35, "unit": "fahrenheit"}'
    assert json.loads(call_llm_handler(aweather, text)) == {"city": "Paris", "unit": "fahrenheit"}


async def test_acall_llm_handler_runs_both_kinds() -> None:
    args = {"city": "Oslo", "latitude": 59.9, "longitude": 10.7}
    assert await acall_llm_handler(aweather, args) == '{"city":"Oslo","unit":"celsius"}'
    assert (await acall_llm_handler(weather, args)).startswith("The current weather in Oslo")


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ('{"latitude": 1, "longitude": 2}', "missing required field 'city'"),
        (
            '{"city": 7, "latitude": 1, "longitude": 2}',
            "field 'city': expected a string, got an integer",
        ),
        (
            '{"city": "x", "latitude": "north", "longitude": 2}',
            "field 'latitude': expected a number",
        ),
        ('{"city": "x", "latitude": 1, "longitude": 2, "unit": "kelvin"}', "expected one of"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got an array"),
    ],
)
def test_argument_errors_name_what_was_wrong(arguments: str, words: str) -> None:
    with pytest.raises(LLMArgumentsError, match=words) as info:
        call_llm_handler(weather, arguments, name="get-weather")
    assert info.value.function == "get-weather"
    assert str(info.value).startswith("yomo: invalid arguments for function 'get-weather': ")


def test_typeddict_enums_lists_and_lenient_numbers() -> None:
    got = decode_arguments("q", '{"words": ["a", "b"], "level": 2, "exact": true}', Query)
    assert got == {"words": ["a", "b"], "level": Level.HIGH, "exact": True}
    assert decode_arguments("q", "", Query) == {}  # an LLM may send nothing at all
    assert (
        decode_arguments("q", '{"latitude": 1, "longitude": 2, "city": "c"}', Weather).latitude
        == 1.0
    )

    @dataclass
    class Count:
        n: int
        note: str | None = None

    assert decode_arguments("c", '{"n": 3.0, "note": null}', Count) == Count(3, None)
    with pytest.raises(LLMArgumentsError, match="field 'n': expected an integer, got a number"):
        decode_arguments("c", '{"n": 3.5}', Count)
    with pytest.raises(LLMArgumentsError, match=r"field 'words\[1\]': expected a string"):
        decode_arguments("q", '{"words": ["a", 2]}', Query)
    with pytest.raises(LLMArgumentsError, match="field 'exact': expected a boolean"):
        decode_arguments("q", '{"exact": 1}', Query)


def test_pydantic_models_are_validated_by_pydantic() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Trip(pydantic.BaseModel):
        city: str
        days: int = pydantic.Field(ge=1)

    assert decode_arguments("t", '{"city": "Rome", "days": 3}', Trip) == Trip(city="Rome", days=3)
    with pytest.raises(LLMArgumentsError, match="field 'days': Input should be greater"):
        decode_arguments("t", '{"city": "Rome", "days": 0}', Trip)


def test_write_llm_result_once_keeps_ids_and_metadata_but_no_target() -> None:
    written: list[bytes] = []
    md = {"yomo-tid": "tid-1", "yomo-source-id": "src", TARGET: "get-weather", "k": "v"}
    ctx = yomo.Context(FUNCTION_CALL_TAG, call_frame(tid="T", arguments="{}"), md, written.append)
    assert ctx.llm_function_call.req_id == "r1" and not ctx.llm_answered
    ctx.write_llm_result("done")
    assert ctx.llm_answered
    with pytest.raises(FunctionCallError, match="only be answered once"):
        ctx.write_llm_result("again")
    [frame] = written
    decoded = decode_frame(frame)
    assert isinstance(decoded, DataFrame) and decoded.tag == REDUCER_TAG
    assert decode_metadata(decoded.metadata) == {
        "yomo-tid": "tid-1",
        "yomo-source-id": "src",
        "k": "v",
    }
    answer = FunctionCall.from_bytes(decoded.payload)
    assert (answer.tid, answer.req_id, answer.tool_call_id) == ("T", "r1", "c1")
    assert (answer.is_ok, answer.result, answer.arguments) == (True, "done", "{}")


def test_results_must_be_text_or_json() -> None:
    ctx = yomo.Context(FUNCTION_CALL_TAG, call_frame(), {}, lambda _frame: None)
    with pytest.raises(TypeError, match="str or JSON-serializable, got bytes"):
        ctx.write_llm_result(b"raw")
    assert not ctx.llm_answered


def test_agent_context() -> None:
    @dataclass
    class User:
        name: str

    ctx = yomo.Context(FUNCTION_CALL_TAG, call_frame(agent_context='{"name": "ann"}'), {}, print)
    assert ctx.agent_context() == {"name": "ann"}
    assert ctx.agent_context(User) == User("ann")
    # Go's bridge sends "null" when the caller gave none
    none = yomo.Context(FUNCTION_CALL_TAG, call_frame(agent_context="null"), {}, print)
    assert none.agent_context() is None and none.agent_context(User) is None
    bad = yomo.Context(FUNCTION_CALL_TAG, call_frame(agent_context='{"name": 1}'), {}, print)
    with pytest.raises(LLMArgumentsError, match="invalid agent context for function"):
        bad.agent_context(User)


def test_a_frame_that_is_no_call() -> None:
    ctx = yomo.Context(0x33, b"plain data", {}, print)
    with pytest.raises(FunctionCallError, match="cannot read function call object"):
        ctx.read_llm_arguments()
    with pytest.raises(FunctionCallError):
        ctx.write_llm_result("x")


def test_no_result_is_an_error_in_memory() -> None:
    with pytest.raises(NoLLMResultError, match="returned without write_llm_result"):
        call_llm_handler(lambda ctx: None, {})


def test_failed_calls_are_answered_with_the_reason() -> None:
    import logging

    llm = LLMFunction(
        "get-weather", description="d", input_schema=Weather, log=logging.getLogger("t")
    )
    assert llm.handshake_fields((0x33,), "") == (
        llm.definition.to_bytes(),  # type: ignore[union-attr]
        (0x33, FUNCTION_CALL_TAG),
        "get-weather",
    )
    assert llm.is_call(FUNCTION_CALL_TAG) and not llm.is_call(0x33)

    written: list[bytes] = []
    ctx = yomo.Context(FUNCTION_CALL_TAG, call_frame(arguments="{}"), {}, written.append)
    with pytest.raises(LLMArgumentsError) as info:
        ctx.read_llm_arguments(Weather)
    answer, error = llm.finish(ctx, info.value)
    assert error is info.value and answer is not None
    reply = FunctionCall.from_bytes(decode_frame(answer).payload)  # type: ignore[union-attr]
    assert not reply.is_ok
    assert reply.result == (
        "error: invalid arguments for function 'get-weather': missing required field 'city'"
    )
    assert failure_text("f", ValueError("no such city")) == (
        "error: function 'f' failed: ValueError: no such city"
    )
    # returned without answering: answered for it, and reported
    quiet = yomo.Context(FUNCTION_CALL_TAG, call_frame(), {}, written.append)
    answer, error = llm.finish(quiet, None)
    assert isinstance(error, NoLLMResultError) and answer is not None
    # answered: nothing more to send
    done = yomo.Context(FUNCTION_CALL_TAG, call_frame(), {}, written.append)
    done.write_llm_result("ok")
    assert llm.finish(done, None) == (None, None)
    # not a call at all: nothing can be answered, the reason is reported
    answer, error = llm.finish(yomo.Context(FUNCTION_CALL_TAG, b"junk", {}, print), None)
    assert answer is None and isinstance(error, FunctionCallError)
