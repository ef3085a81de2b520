"""Stream-function files: import one and check what it defines, without connecting.

A stream-function file defines, by convention:

- ``handler(ctx)`` (plain or ``async def``) or ``pipe(stream)``, exactly one;
- ``data_tags()`` returning the observed tags, or a module constant ``DATA_TAGS``;
- optionally ``init()`` (run once before the first frame) and ``wanted_target()``.

An LLM function file (Go's llm template) defines ``description()`` returning what
the function does, optionally ``input_schema()`` returning its argument type (a
dataclass, TypedDict or pydantic model) or a JSON schema dict, and ``handler(ctx)``
answering with ``ctx.write_llm_result``; it needs no tags.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from yomo.errors import FunctionFileError, TagError

__all__ = ["FunctionFile", "FunctionFileError", "load_function_file", "user_traceback"]

#: This package's folder: its frames are left out of the tracebacks users see.
_HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class FunctionFile:
    """What a stream-function file defines, checked."""

    path: Path
    """The file."""
    module: ModuleType
    """The imported module."""
    tags: tuple[int, ...]
    """The tags to observe (from ``data_tags()`` or ``DATA_TAGS``)."""
    handler: Callable[..., Any] | None = None
    """``handler(ctx)``, when the file defines it."""
    pipe: Callable[..., Any] | None = None
    """``pipe(stream)``, when the file defines it."""
    init: Callable[[], Any] | None = None
    """``init()``, when the file defines it."""
    wanted_target: str = ""
    """What ``wanted_target()`` returned; empty when the file does not define it."""
    description: str | None = None
    """What ``description()`` returned: the file is an LLM function."""
    input_schema: Any = None
    """What ``input_schema()`` returned (an argument type or a JSON schema dict)."""

    @property
    def stem(self) -> str:
        """The file name without ``.py``: the default function name."""
        return self.path.stem


def user_traceback(exc: BaseException, path: Path) -> str:
    """The traceback of ``exc`` without the frames of the import machinery and of yomo's CLI."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith("<frozen importlib") or os.path.dirname(filename) == _HERE:
            tb = tb.tb_next
            continue
        break
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _import(path: Path) -> ModuleType:
    stem = path.stem
    name = stem if stem.isidentifier() and stem not in sys.modules else "yomo_function_main"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FunctionFileError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)  # sibling modules import as they would with `python FILE`
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    # Boundary: importing the user's file may raise anything (SystemExit too); it becomes
    # one FunctionFileError with the user's traceback.
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise FunctionFileError(
            f"{path} does not import: {type(exc).__name__}: {exc}",
            details=user_traceback(exc, path),
        ) from exc
    return module


def _callable_or_none(module: ModuleType, name: str, path: Path) -> Callable[..., Any] | None:
    value = getattr(module, name, None)
    if value is None:
        return None
    if not callable(value):
        raise FunctionFileError(f"{path}: {name} must be a function, got {type(value).__name__}")
    return value  # type: ignore[no-any-return]


def _call_user(fn: Callable[[], Any], what: str, path: Path) -> Any:
    try:
        return fn()
    # Boundary: the user's function may raise anything; it becomes one FunctionFileError.
    except Exception as exc:
        raise FunctionFileError(
            f"{path}: {what} failed: {type(exc).__name__}: {exc}",
            details=user_traceback(exc, path),
        ) from exc


def _tags(module: ModuleType, path: Path, llm: bool) -> tuple[int, ...]:
    fn = _callable_or_none(module, "data_tags", path)
    if fn is not None:
        raw, where = _call_user(fn, "data_tags()", path), "data_tags()"
    elif hasattr(module, "DATA_TAGS"):
        raw, where = module.DATA_TAGS, "DATA_TAGS"
    elif llm:
        return ()  # tool calls arrive on 0xE002 without observing anything
    else:
        raise FunctionFileError(
            f"{path}: no tags to observe: define data_tags() returning a list of tags, "
            "or a DATA_TAGS constant"
        )
    values: Iterable[Any]
    if isinstance(raw, int):
        values = (raw,)
    elif isinstance(raw, (list, tuple, set, frozenset)):
        values = raw
    else:
        raise FunctionFileError(
            f"{path}: {where} must be a list of integer tags, got {type(raw).__name__}"
        )
    from yomo.wire import check_tag

    tags: list[int] = []
    for value in values:
        try:
            tags.append(check_tag(value))
        except TagError as exc:
            raise FunctionFileError(f"{path}: bad tag in {where}: {exc.message}") from None
        except TypeError as exc:
            message = str(exc).removeprefix("yomo: ")
            raise FunctionFileError(f"{path}: bad tag in {where}: {message}") from None
    if not tags and not llm:
        raise FunctionFileError(f"{path}: no tags to observe: {where} is empty")
    return tuple(dict.fromkeys(tags))


def _llm_parts(module: ModuleType, path: Path) -> tuple[str | None, Any]:
    """``description()`` and ``input_schema()`` of an LLM function file, checked."""
    describe = _callable_or_none(module, "description", path)
    schema_fn = _callable_or_none(module, "input_schema", path)
    if describe is None:
        if schema_fn is not None:
            raise FunctionFileError(
                f"{path}: defines input_schema() but no description(); an LLM function "
                "needs description() returning what it does"
            )
        return None, None
    description = _call_user(describe, "description()", path)
    if not isinstance(description, str) or not description.strip():
        raise FunctionFileError(
            f"{path}: description() must return a non-empty str, got {description!r:.60}"
        )
    schema = _call_user(schema_fn, "input_schema()", path) if schema_fn is not None else None
    from yomo.ai import build_function_definition
    from yomo.errors import FunctionDefinitionError

    try:
        build_function_definition(path.stem, description, schema)
    except FunctionDefinitionError as exc:
        raise FunctionFileError(f"{path}: input_schema(): {exc.message}") from None
    return description, schema


def load_function_file(path: str | os.PathLike[str]) -> FunctionFile:
    """Import a stream-function file and check what it defines.

    Raises:
        FunctionFileError: the file is missing, does not import, defines neither or both
            of ``handler`` and ``pipe``, has no tags (and is no LLM function) or a tag out
            of range, or its ``description()`` / ``input_schema()`` cannot be used.
    """
    file = Path(path)
    if not file.is_file():
        raise FunctionFileError(f"file not found: {path}")
    module = _import(file)
    handler = _callable_or_none(module, "handler", file)
    pipe = _callable_or_none(module, "pipe", file)
    if handler is None and pipe is None:
        raise FunctionFileError(
            f"{file}: defines neither handler(ctx) nor pipe(stream); define one of them"
        )
    if handler is not None and pipe is not None:
        raise FunctionFileError(f"{file}: defines both handler and pipe; keep one of them")
    description, schema = _llm_parts(module, file)
    if description is not None and handler is None:
        raise FunctionFileError(
            f"{file}: an LLM function (it defines description()) needs handler(ctx), "
            "not pipe(stream)"
        )
    tags = _tags(module, file, description is not None)
    target_fn = _callable_or_none(module, "wanted_target", file)
    target = _call_user(target_fn, "wanted_target()", file) if target_fn is not None else ""
    if not isinstance(target, str):
        raise FunctionFileError(
            f"{file}: wanted_target() must return a str, got {type(target).__name__}"
        )
    return FunctionFile(
        path=file,
        module=module,
        tags=tags,
        handler=handler,
        pipe=pipe,
        init=_callable_or_none(module, "init", file),
        wanted_target=target,
        description=description,
        input_schema=schema,
    )
