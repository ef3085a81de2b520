"""``yomo init NAME``: a new stream-function project to start from (Go: cli/init.go).

Creates ``NAME/`` with a working ``app.py`` (uppercases text from tag 0x33 to
tag 0x34), its pytest test, a ``.env`` and a short README. Never overwrites.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

__all__ = ["FUNCTION_NAME", "TEMPLATES", "create_project", "init"]

#: What a project (and so a stream function) may be called: it becomes YOMO_SFN_NAME and,
#: for LLM functions, a tool name (OpenAI allows ``[A-Za-z0-9_-]{1,64}``).
FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")

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

#: File name -> template; ``{name}`` is replaced by the project name.
TEMPLATES: dict[str, str] = {
    "app.py": _APP,
    "test_app.py": _TEST_APP,
    ".env": _ENV,
    "README.md": _README,
}


def create_project(directory: str | os.PathLike[str]) -> list[Path]:
    """Create ``directory`` with the template files; returns the files written.

    Raises:
        FileExistsError: ``directory`` already exists (nothing is written).
    """
    root = Path(directory)
    name = root.resolve().name
    root.mkdir(parents=True, exist_ok=False)
    written = []
    for filename, template in TEMPLATES.items():
        path = root / filename
        text = template.replace("{name}", name) if "{name}" in template else template
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


@click.command()
@click.argument("name")
def init(name: str) -> None:
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
        files = create_project(name)
    except OSError as exc:
        raise click.ClickException(f"yomo: cannot create {name}: {exc.strerror or exc}") from exc
    click.echo(f"yomo: created {name}/ with {', '.join(p.name for p in files)}")
    click.echo("next:")
    click.echo(f"  cd {name}")
    click.echo("  yomo serve        # in another terminal")
    click.echo("  yomo run app.py")
    click.echo("  pytest")
