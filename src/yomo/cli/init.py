"""``yomo init NAME``: a new stream-function project to start from (Go: cli/init.go).

Creates ``NAME/`` with a working ``app.py``, its pytest test, a ``.env`` and a short
README. Never overwrites. Two templates, as in Go (``-t``, default ``llm``):

- ``llm``: Go v1.22.3's get-weather LLM function (same description, arguments and
  result text), called by an AI bridge as a tool;
- ``normal``: uppercases text from tag 0x33 to tag 0x34.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from yomo.errors import ConfigError

__all__ = ["DEFAULT_TYPE", "FUNCTION_NAME", "TEMPLATES", "create_project", "init"]

#: What a project (and so a stream function) may be called: it becomes YOMO_SFN_NAME and,
#: for LLM functions, a tool name (OpenAI allows ``[A-Za-z0-9_-]{1,64}``).
FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

_LLM_APP = '''\
"""A YoMo LLM function: an LLM calls it as a tool to learn the weather in a city.

A zipper with an AI bridge offers it to the LLM under its name (YOMO_SFN_NAME in
.env); when the LLM decides to call it, the bridge sends the call here and the
result goes back into the conversation. Run it against such a zipper:

    yomo run app.py

`yomo run` reads its settings from .env (YOMO_SFN_NAME, YOMO_SFN_ZIPPER,
YOMO_SFN_CREDENTIAL) or from the flags -n, -z and -d.
"""

from dataclasses import dataclass
from typing import Annotated


def init():
    """Optional: runs once, before the first call (open a database, load a model...).

    If it raises, the function stops before connecting.
    """


def description():
    """What the function does. The LLM reads it to decide when to call the function."""
    return (
        "Get current weather for a given city. If no city is provided, you should "
        "ask to clarify the city. If the city name is given, you should convert the "
        "city name to Latitude and Longitude geo coordinates, keeping Latitude and "
        "Longitude in decimal format."
    )


@dataclass
class Arguments:
    """The arguments the LLM fills in; each description tells it what to put there.

    Fields without a default are required.
    """

    city: Annotated[str, "The city name to get the weather for"]
    latitude: Annotated[
        float,
        "The latitude of the city, in decimal format, range should be in (-90, 90)",
    ]
    longitude: Annotated[
        float,
        "The longitude of the city, in decimal format, range should be in (-180, 180)",
    ]


def input_schema():
    """The argument type; its JSON schema is what the LLM sees.

    A dataclass, a TypedDict, a pydantic model, or a JSON schema dict.
    """
    return Arguments


def handler(ctx):
    """Called for every call of the LLM.

    ctx.read_llm_arguments(Arguments) reads the arguments the LLM chose (if they do
    not fit, the call fails and the LLM is told why); ctx.write_llm_result(text)
    sends the result back to the LLM, once.
    """
    args = ctx.read_llm_arguments(Arguments)
    # look the weather up here (a weather API, a database...)
    where = f"{args.city} ({args.latitude:f},{args.longitude:f})"
    result = f"The current weather in {where} is sunny"
    ctx.write_llm_result(result)
    print(f"get-weather: {result}", flush=True)
'''

_LLM_TEST_APP = '''\
"""Tests for app.py; run them with `pytest`.

yomo.testing is a pytest plugin installed with yomo: `call_llm_handler` calls the
handler in memory with the arguments an LLM would send and returns its result;
`run_llm_handler` runs it as a real LLM function behind the in-process zipper of
the `yomo_zipper` fixture and calls it the way the AI bridge does.
"""

import pytest
from yomo import LLMArgumentsError
from yomo.testing import call_llm_handler, run_llm_handler

import app

NEW_YORK = {"city": "New York", "latitude": 40.7128, "longitude": -74.0060}


def test_get_weather():
    assert call_llm_handler(app.handler, NEW_YORK) == (
        "The current weather in New York (40.712800,-74.006000) is sunny"
    )


def test_the_city_is_required():
    with pytest.raises(LLMArgumentsError, match="missing required field 'city'"):
        call_llm_handler(app.handler, {"latitude": 40.7128, "longitude": -74.0060})


def test_through_a_real_zipper(yomo_zipper):
    result = run_llm_handler(
        app.handler,
        NEW_YORK,
        description=app.description(),
        input_schema=app.input_schema(),
        zipper=yomo_zipper,
    )
    assert result == "The current weather in New York (40.712800,-74.006000) is sunny"
'''

_LLM_README = """\
# {name}

A YoMo LLM function made by `yomo init`: an LLM calls it as the tool `{name}`
to get the weather in a city (see `description()` and `Arguments` in app.py).

```sh
yomo run app.py       # needs a zipper with an AI bridge; settings in .env
pytest                # its tests, with an in-process zipper
```

The zipper's AI bridge lists the function to the LLM and calls it; with Go
YoMo's `yomo serve` and a `bridge: ai:` section in its config, ask it through
the OpenAI-compatible API:

```sh
curl http://localhost:8000/v1/chat/completions -H 'Content-Type: application/json' \\
  -d '{{"messages": [{{"role": "user", "content": "What is the weather in Paris?"}}]}}'
```

See docs/llm.md in YoMo for Python for the whole setup.
"""

_APP = '''\
"""A YoMo stream function: uppercases the text it receives.

Run it against a zipper (start one with `yomo serve` in another terminal):

    yomo run app.py

`yomo run` reads its settings from .env (YOMO_SFN_NAME, YOMO_SFN_ZIPPER,
YOMO_SFN_CREDENTIAL) or from the flags -n, -z and -d.
"""

#: Where the results go; another stream function (a sink) observes this tag.
OUTPUT_TAG = 0x34


def data_tags():
    """The tags to observe: the zipper sends this function every frame written under them."""
    return [0x33]


def init():
    """Runs once, before the first frame: load a model, open a database... (optional)."""
    print("app: ready", flush=True)


def handler(ctx):
    """Called for every frame of an observed tag.

    ctx.data is the payload (bytes), ctx.tag its tag; ctx.write(tag, data) sends
    a new frame that keeps this frame's transaction id. This plain function runs
    on a worker thread; an `async def handler(ctx)` would `await ctx.write(...)`.
    """
    text = ctx.data.decode("utf-8", errors="replace")
    print(f"app: received {text!r} on tag 0x{ctx.tag:x}", flush=True)
    ctx.write(OUTPUT_TAG, text.upper().encode())
'''

_TEST_APP = '''\
"""Tests for app.py; run them with `pytest`.

yomo.testing is a pytest plugin installed with yomo: `call_handler` calls the
handler in memory, `run_handler` runs it as a real stream function against the
in-process zipper of the `yomo_zipper` fixture.
"""

import app
from yomo.testing import call_handler, run_handler


def test_handler_uppercases():
    assert call_handler(app.handler, 0x33, b"hello") == [(app.OUTPUT_TAG, b"HELLO")]


def test_through_a_real_zipper(yomo_zipper):
    written = run_handler(
        app.handler, 0x33, b"hello yomo", observe=app.data_tags(), zipper=yomo_zipper
    )
    assert written == [(app.OUTPUT_TAG, b"HELLO YOMO")]
'''

_ENV = """\
# Settings for `yomo run app.py`; the flags -n, -z and -d win over them,
# and so do variables already set in the environment.
YOMO_SFN_NAME={name}
YOMO_SFN_ZIPPER=localhost:9000
# The zipper's credential when it has token auth, e.g. token:<secret>
YOMO_SFN_CREDENTIAL=
"""

_README = """\
# {name}

A YoMo stream function made by `yomo init`: it uppercases the text written
under tag 0x33 and writes it under tag 0x34.

```sh
yomo serve            # a zipper on localhost:9000, in another terminal
yomo run app.py       # this function; settings in .env
pytest                # its tests, with an in-process zipper
```

Write to it from Python:

```python
import yomo

with yomo.Source("my-source", "localhost:9000") as source:
    source.write(0x33, b"hello")
```
"""

#: The template ``yomo init`` uses without ``-t`` (Go's default too).
DEFAULT_TYPE = "llm"

#: Template type -> file name -> template; ``{name}`` is replaced by the project name.
TEMPLATES: dict[str, dict[str, str]] = {
    "llm": {
        "app.py": _LLM_APP,
        "test_app.py": _LLM_TEST_APP,
        ".env": _ENV,
        "README.md": _LLM_README,
    },
    "normal": {
        "app.py": _APP,
        "test_app.py": _TEST_APP,
        ".env": _ENV,
        "README.md": _README,
    },
}


def create_project(directory: str | os.PathLike[str], type: str = DEFAULT_TYPE) -> list[Path]:
    """Create ``directory`` with the files of template ``type``; returns the files written.

    Raises:
        FileExistsError: ``directory`` already exists (nothing is written).
        ConfigError: ``type`` is not a template's name (a ValueError).
    """
    if type not in TEMPLATES:
        raise ConfigError(f"yomo: unknown template {type!r}; use one of {sorted(TEMPLATES)}")
    root = Path(directory)
    name = root.resolve().name
    root.mkdir(parents=True, exist_ok=False)
    written = []
    for filename, template in TEMPLATES[type].items():
        path = root / filename
        text = template.replace("{name}", name) if "{name}" in template else template
        if filename == "README.md":
            text = text.replace("{{", "{").replace("}}", "}")
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


@click.command()
@click.argument("name")
@click.option(
    "-t",
    "--type",
    "type_",
    type=click.Choice(sorted(TEMPLATES)),
    default=DEFAULT_TYPE,
    show_default=True,
    help="llm: a function an LLM calls as a tool; normal: a stream function on data tags.",
)
def init(name: str, type_: str) -> None:
    """Create NAME/ with a stream function (app.py), its test, .env and a README."""
    if not name.strip():
        raise click.ClickException("yomo: the project name must not be empty")
    function_name = Path(name).name
    if not FUNCTION_NAME.fullmatch(function_name):
        raise click.ClickException(
            f"yomo: {function_name!r} is not a valid function name: use letters, digits, "
            "'-' and '_', starting with a letter, at most 64 characters (the directory's "
            "name becomes the stream function's name)"
        )
    if os.path.lexists(name):
        raise click.ClickException(
            f"yomo: {name} already exists; choose another name or remove it first"
        )
    try:
        files = create_project(name, type_)
    except OSError as exc:
        raise click.ClickException(f"yomo: cannot create {name}: {exc.strerror or exc}") from exc
    kind = "an LLM function" if type_ == "llm" else "a stream function"
    click.echo(f"yomo: created {name}/ ({kind}) with {', '.join(p.name for p in files)}")
    click.echo("next:")
    click.echo(f"  cd {name}")
    if type_ == "llm":
        click.echo("  yomo serve -c zipper.yaml   # a zipper with an AI bridge, see docs/llm.md")
    else:
        click.echo("  yomo serve        # in another terminal")
    click.echo("  yomo run app.py")
    click.echo("  pytest")
