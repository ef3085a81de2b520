"""``yomo init`` (llm template) and ``yomo run`` of LLM function files, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cli_process import YomoProcess, run_yomo, start_serve
from .llm_bridge import call_llm_function

SUNNY_NY = "The current weather in New York (40.712800,-74.006000) is sunny"
NEW_YORK = {"city": "New York", "latitude": 40.7128, "longitude": -74.0060}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    p, addr = start_serve(tmp_path_factory.mktemp("serve"))
    yield addr
    p.signal()
    p.wait(15)


def test_init_llm_is_the_default_and_runs_as_a_tool(tmp_path: Path, served: str) -> None:
    init = run_yomo(["init", "get-weather"], tmp_path)
    assert init.proc.returncode == 0, init.output
    assert "(an LLM function)" in init.stdout[0]
    project = tmp_path / "get-weather"
    assert "YOMO_SFN_NAME=get-weather" in (project / ".env").read_text()
    app = (project / "app.py").read_text()
    assert "def description():" in app and "def input_schema():" in app

    run = YomoProcess(["run", "app.py", "-z", served], project)
    try:
        run.wait_line("stream function 'get-weather' is running")
        line = run.wait_line("yomo: function definition: ")
        definition = json.loads(line.split("function definition: ", 1)[1])
        assert definition["name"] == "get-weather"
        assert definition["description"].startswith("Get current weather for a given city.")
        assert definition["parameters"]["required"] == ["city", "latitude", "longitude"]
        assert list(definition["parameters"]["properties"]) == ["city", "latitude", "longitude"]

        answer = call_llm_function(served, "get-weather", NEW_YORK)
        assert (answer.is_ok, answer.result) == (True, SUNNY_NY)
        run.wait_line(f"get-weather: {SUNNY_NY}")

        bad = call_llm_function(served, "get-weather", {"city": "Paris", "latitude": "north"})
        assert not bad.is_ok
        assert bad.result == (
            "error: invalid arguments for function 'get-weather': "
            "field 'latitude': expected a number, got a string"
        )
        # the failure is logged by `yomo run`, and the function keeps serving
        run.wait_line("LLMArgumentsError", stream="stderr")
        assert call_llm_function(served, "get-weather", NEW_YORK).result == SUNNY_NY
        run.signal()
        assert run.wait(15) == 0, run.output
    finally:
        run.stop()


ASYNC_TOOL = """
from typing import TypedDict


def description():
    return "Add two numbers"


class Pair(TypedDict):
    a: int
    b: int


def input_schema():
    return Pair


async def handler(ctx):
    pair = ctx.read_llm_arguments(Pair)
    await ctx.write_llm_result({"sum": pair["a"] + pair["b"]})
"""

RAW_SCHEMA_TOOL = """
def description():
    return "Echo the text"


def input_schema():
    return {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


def handler(ctx):
    ctx.write_llm_result(ctx.read_llm_arguments()["text"])
"""


@pytest.mark.parametrize(
    ("source", "arguments", "result"),
    [(ASYNC_TOOL, {"a": 2, "b": 40}, '{"sum":42}'), (RAW_SCHEMA_TOOL, {"text": "hi"}, "hi")],
    ids=["async-typeddict", "raw-json-schema"],
)
def test_run_llm_files(
    tmp_path: Path, served: str, source: str, arguments: dict[str, object], result: str
) -> None:
    (tmp_path / "tool.py").write_text(source)
    run = YomoProcess(["run", "tool.py", "-z", served, "-n", "my-tool"], tmp_path)
    try:
        run.wait_line("stream function 'my-tool' is running")
        answer = call_llm_function(served, "my-tool", arguments)
        assert (answer.is_ok, answer.result) == (True, result)
    finally:
        run.stop()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "def description():\n    return ''\n\ndef handler(ctx):\n    pass\n",
            "Error: yomo: fn.py: description() must return a non-empty str, got ''",
        ),
        (
            "def input_schema():\n    return None\n\ndef handler(ctx):\n    pass\n",
            "Error: yomo: fn.py: defines input_schema() but no description(); an LLM function "
            "needs description() returning what it does",
        ),
        (
            "def description():\n    return 'd'\n\ndef input_schema():\n    return int\n\n"
            "def handler(ctx):\n    pass\n",
            "Error: yomo: fn.py: input_schema(): input_schema must be a dataclass, a TypedDict, "
            "a pydantic model or a JSON schema dict, got <class 'int'>",
        ),
        (
            "def description():\n    return 'd'\n\ndef input_schema():\n"
            "    return {'type': 'string'}\n\ndef handler(ctx):\n    pass\n",
            "Error: yomo: fn.py: input_schema(): an input schema must be a JSON schema object with "
            '"type": "object", got type \'string\'',
        ),
        (
            "def description():\n    return 'd'\n\ndef pipe(frames):\n    yield from ()\n",
            "Error: yomo: fn.py: an LLM function (it defines description()) needs handler(ctx), "
            "not pipe(stream)",
        ),
    ],
    ids=["empty-description", "schema-without-description", "bad-type", "bad-schema", "pipe"],
)
def test_llm_file_errors(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "fn.py").write_text(text)
    p = run_yomo(["run", "fn.py"], tmp_path)
    assert p.proc.returncode == 1, p.output
    assert p.stderr == [expected]
