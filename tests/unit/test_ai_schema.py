"""``yomo.ai`` schemas: the function definition an argument type makes, next to Go's."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

import pytest

from yomo.ai import FunctionDefinition, FunctionDefinitionError, build_function_definition
from yomo.ai.schema import parameters_schema

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:
    from typing_extensions import NotRequired

# What Go YoMo v1.22.3's core.ParseAIFunctionDefinition printed for these structs
# (tests/interop/go/cmd/fndef; the interop tests compare against the live output):
#
#   type Weather struct {
#       City      string  `json:"city" jsonschema:"description=The city name to get the weather for,required"`
#       Latitude  float64 `json:"latitude" jsonschema:"description=The latitude of the city, in ..."`
#       Longitude float64 `json:"longitude" jsonschema:"description=The longitude of the city, in ..."`
#   }
#   type Kinds struct {
#       Name   string            `json:"name" jsonschema:"description=A name"`
#       Count  int               `json:"count"`
#       Ratio  float64           `json:"ratio,omitempty"`
#       OK     bool              `json:"ok,omitempty"`
#       Unit   string            `json:"unit" jsonschema:"enum=celsius,enum=fahrenheit"`
#       Tags   []string          `json:"tags,omitempty"`
#       Nested map[string]string `json:"nested,omitempty"`
#   }
#
# (invopop/jsonschema cuts a description at its first comma, hence "The latitude of
# the city"; a field without omitempty is required.)
GO_WEATHER = (
    '{"name":"get-weather","description":"Get current weather for a given city.",'
    '"parameters":{"type":"object","properties":{"city":{"type":"string","description":'
    '"The city name to get the weather for"},"latitude":{"type":"number","description":'
    '"The latitude of the city"},"longitude":{"type":"number","description":'
    '"The longitude of the city"}},"required":["city","latitude","longitude"]}}'
)
GO_KINDS = (
    '{"name":"kinds","description":"All kinds","parameters":{"type":"object","properties":'
    '{"count":{"type":"integer","description":""},"name":{"type":"string","description":'
    '"A name"},"nested":{"type":"object","description":""},"ok":{"type":"boolean",'
    '"description":""},"ratio":{"type":"number","description":""},"tags":{"type":"array",'
    '"description":""},"unit":{"type":"string","description":"","enum":["celsius",'
    '"fahrenheit"]}},"required":["name","count","unit"]}}'
)


@dataclass
class Weather:
    city: Annotated[str, "The city name to get the weather for"]
    latitude: float = field(metadata={"description": "The latitude of the city"})
    longitude: Annotated[float, "The longitude of the city"]


class Kinds(TypedDict):
    name: Annotated[str, "A name"]
    count: int
    ratio: NotRequired[float]
    ok: NotRequired[bool]
    unit: Literal["celsius", "fahrenheit"]
    tags: NotRequired[list[Any]]
    nested: NotRequired[dict[str, str]]


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


@dataclass
class KindsDataclass:
    name: Annotated[str, "A name"]
    count: int
    unit: Unit
    ratio: float = 0.0
    ok: bool = False
    tags: list[Any] = dataclasses.field(default_factory=list)
    nested: dict[str, str] | None = None


def test_weather_definition_is_gos() -> None:
    fd = build_function_definition("get-weather", "Get current weather for a given city.", Weather)
    assert fd is not None
    assert json.loads(fd.to_bytes()) == json.loads(GO_WEATHER)
    # the same keys in Go's order at each level; properties in declaration order
    assert list(fd.to_dict()) == ["name", "description", "parameters"]
    assert list(fd.parameters["properties"]) == ["city", "latitude", "longitude"]  # type: ignore[index]


@pytest.mark.parametrize("model", [Kinds, KindsDataclass], ids=["TypedDict", "dataclass"])
def test_kinds_definition_is_gos(model: type) -> None:
    fd = build_function_definition("kinds", "All kinds", model)
    assert fd is not None
    assert json.loads(fd.to_bytes()) == json.loads(GO_KINDS)


def test_pydantic_model_and_optional_fields() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Trip(pydantic.BaseModel):
        city: str = pydantic.Field(description="Where to")
        unit: Unit = Unit.CELSIUS
        days: int | None = None
        legs: list[Weather] = []

    schema = parameters_schema(Trip)
    assert schema == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "Where to"},
            "unit": {"type": "string", "description": "", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "description": ""},
            "legs": {
                "type": "array",
                "description": "",
                "items": json.loads(GO_WEATHER)["parameters"],
            },
        },
        "required": ["city"],
    }


def test_nested_objects_and_lists_carry_their_shape() -> None:
    @dataclass
    class Route:
        stops: Annotated[list[Weather], "Where to stop"]
        home: Weather
        mode: Literal[1, 2]

    props = parameters_schema(Route)["properties"]
    assert props["stops"]["items"]["properties"]["city"]["type"] == "string"
    assert props["home"]["type"] == "object" and props["home"]["required"] == [
        "city",
        "latitude",
        "longitude",
    ]
    assert props["mode"] == {"type": "integer", "description": "", "enum": [1, 2]}


def test_without_input_schema_parameters_is_null_as_in_go() -> None:
    fd = build_function_definition("no-args", "Takes nothing")
    assert fd == FunctionDefinition(name="no-args", description="Takes nothing")
    assert fd.to_bytes() == b'{"name":"no-args","description":"Takes nothing","parameters":null}'
    assert build_function_definition("plain") is None  # no description: not an LLM tool


def test_raw_json_schema_and_whole_definitions() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    fd = build_function_definition("search", "Search", schema)
    assert fd is not None and fd.parameters == schema
    whole = build_function_definition(
        "search", definition={"description": "S", "parameters": schema}
    )
    assert whole == FunctionDefinition(name="search", description="S", parameters=schema)
    text = json.dumps({"name": "search", "description": "S", "parameters": schema})
    assert build_function_definition("search", "ignored", Weather, definition=text) == whole


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"description": "d", "input_schema": {"type": "string"}}, '"type": "object"'),
        ({"description": "d", "input_schema": {"properties": {}}}, '"type": "object"'),
        ({"description": "d", "input_schema": int}, "dataclass, a TypedDict"),
        ({"input_schema": Weather}, "no description"),
        ({"definition": '{"name": "other"}'}, "named 'other' but the stream function is 'f'"),
        ({"definition": "{"}, "unmarshal function definition error"),
        ({"definition": {"parameters": {"type": "array"}}}, '"type": "object"'),
    ],
)
def test_unusable_definitions_are_refused_with_a_reason(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(FunctionDefinitionError, match=words.replace("(", r"\(")):
        build_function_definition("f", **kwargs)


def test_a_field_type_without_a_schema_is_named() -> None:
    @dataclass
    class Odd:
        when: complex

    with pytest.raises(FunctionDefinitionError, match=r"field 'when' of .*Odd"):
        parameters_schema(Odd)
