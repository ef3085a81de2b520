"""``yomo.ai``: the FunctionCall and FunctionDefinition JSON, as Go YoMo writes and reads it."""

from __future__ import annotations

import json

import pytest

from yomo.ai import (
    FUNCTION_CALL_TAG,
    REDUCER_TAG,
    FunctionCall,
    FunctionCallError,
    FunctionDefinition,
    FunctionDefinitionError,
)
from yomo.ai.function_call import go_json


def test_tags_are_gos() -> None:
    assert (REDUCER_TAG, FUNCTION_CALL_TAG) == (0xE001, 0xE002)


def test_function_call_bytes_follow_go_field_order_and_omitempty() -> None:
    call = FunctionCall(tid="t", req_id="r", arguments='{"city":"Paris"}', tool_call_id="c1")
    assert call.to_bytes() == (
        b'{"tid":"t","req_id":"r","arguments":"{\\"city\\":\\"Paris\\"}",'
        b'"tool_call_id":"c1","is_ok":false}'
    )
    # arguments and is_ok are always written, like Go (no omitempty on them)
    assert FunctionCall(req_id="r").to_dict() == {"req_id": "r", "arguments": "", "is_ok": False}


def test_function_call_round_trip() -> None:
    call = FunctionCall(
        tid="t", req_id="r", result="sunny", arguments="{}", tool_call_id="c",
        function_name="get-weather", is_ok=True, agent_context='{"user":"u"}',
    )  # fmt: skip
    assert FunctionCall.from_bytes(call.to_bytes()) == call


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"not json", "cannot read function call"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"arguments": "{}"}', "neither req_id nor tool_call_id"),
        (b'{"req_id": 7}', "'req_id': expected str"),
        (b'{"req_id": "r", "is_ok": "yes"}', "'is_ok': expected bool"),
    ],
)
def test_function_call_rejects_what_go_rejects(data: bytes, words: str) -> None:
    with pytest.raises(FunctionCallError, match=words):
        FunctionCall.from_bytes(data)


def test_function_call_bytes_are_gos() -> None:
    # printed by Go YoMo v1.22.3's ai.FunctionCall.Bytes() (tests/interop/go/cmd/fndef,
    # which the interop tests run again): json.Marshal escapes <, > and & and keeps UTF-8
    go = (
        b'{"tid":"t1","req_id":"r1","result":"sunny \\u003c\\u0026\\u003e \xc3\xa9",'
        b'"arguments":"{\\"city\\":\\"Paris\\"}","tool_call_id":"c1",'
        b'"function_name":"get-weather","is_ok":true,"agent_context":"null"}'
    )
    call = FunctionCall(
        tid="t1", req_id="r1", result="sunny <&> \u00e9", arguments='{"city":"Paris"}',
        tool_call_id="c1", function_name="get-weather", is_ok=True, agent_context="null",
    )  # fmt: skip
    assert call.to_bytes() == go
    assert FunctionCall.from_bytes(go) == call
    assert go_json("\u2028") == b'"\\u2028"'


def test_function_definition_json() -> None:
    fd = FunctionDefinition(
        name="get-weather",
        description="Get the weather",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    assert json.loads(fd.to_bytes()) == fd.to_dict()
    assert FunctionDefinition.from_bytes(fd.to_bytes()) == fd
    with pytest.raises(FunctionDefinitionError, match="unmarshal function definition"):
        FunctionDefinition.from_bytes(b"{")
    with pytest.raises(FunctionDefinitionError, match="parameters an object"):
        FunctionDefinition.from_bytes(b'{"name":"f","parameters":[1]}')


def test_function_definition_parameters_are_never_omitted() -> None:
    # go-openai's FunctionDefinition: `parameters` has no omitempty (Go writes null),
    # `description` and `strict` have it. These are Go's bytes for a definition
    # without an input model (core.ParseAIFunctionDefinition(name, desc, nil)).
    go = b'{"name":"no-args","description":"Takes nothing","parameters":null}'
    fd = FunctionDefinition(name="no-args", description="Takes nothing")
    assert fd.to_bytes() == go
    assert FunctionDefinition.from_bytes(go) == fd
    assert FunctionDefinition(name="f").to_bytes() == b'{"name":"f","parameters":null}'
    strict = FunctionDefinition(name="f", strict=True, parameters={"type": "object"})
    assert strict.to_bytes() == b'{"name":"f","strict":true,"parameters":{"type":"object"}}'
    assert FunctionDefinition.from_bytes(strict.to_bytes()) == strict
