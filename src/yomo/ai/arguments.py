"""Reading the arguments an LLM chose into the function's argument type.

Go: core/serverless/context_llm.go ``ReadLLMArguments`` (``json.Unmarshal`` into the
struct). Here a dataclass or TypedDict is checked field by field (required fields
present, each value of its declared type; unknown keys ignored, as Go ignores them),
and a pydantic model is validated by pydantic. Every mismatch raises
``LLMArgumentsError`` naming the field and what was wrong, so the LLM, which gets the
message as the call's result, can correct itself.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from yomo.errors import LLMArgumentsError

from .schema import _ARRAYS, _OBJECTS, _is_pydantic, _strip, argument_fields, is_argument_type

__all__ = ["decode_arguments", "parse_json_object"]

T = TypeVar("T")

_JSON_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


class _Mismatch(Exception):
    """A value that does not fit; an empty ``detail`` means the field is missing."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail


def _kind(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _at(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


def parse_json_object(function: str, text: str, what: str = "arguments") -> Any:
    """``text`` decoded as JSON (``""`` is ``{}``: an LLM may send nothing for no arguments).

    Raises:
        LLMArgumentsError: ``text`` is not JSON.
    """
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except ValueError as exc:
        raise LLMArgumentsError(function, f"not valid JSON: {exc}", what=what) from None


def _convert(value: Any, annotation: Any, path: str) -> Any:
    tp, nullable = _strip(annotation)
    if value is None:
        if nullable or tp is Any or tp is object:
            return None
        raise _Mismatch(path, f"expected {_describe(tp)}, got null")
    origin = get_origin(tp)
    if tp is Any or tp is object:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value in allowed and any(type(value) is type(a) for a in allowed if a == value):
            return value
        raise _Mismatch(path, f"expected one of {list(allowed)!r}, got {value!r}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            raise _Mismatch(
                path, f"expected one of {[m.value for m in tp]!r}, got {value!r}"
            ) from None
    if origin is Union or origin is types.UnionType:
        for option in get_args(tp):
            try:
                return _convert(value, option, path)
            except _Mismatch:
                continue
        raise _Mismatch(path, f"expected {_describe(tp)}, got {_kind(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # LLMs write 3.0 for 3
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp in _ARRAYS or origin in _ARRAYS:
        if isinstance(value, list):
            return _convert_array(value, tp, path)
    elif tp in _OBJECTS or origin in _OBJECTS:
        if isinstance(value, dict):
            args = get_args(tp)
            if len(args) == 2:
                return {k: _convert(v, args[1], _at(path, k)) for k, v in value.items()}
            return value
    elif is_argument_type(tp):
        if isinstance(value, dict):
            return _build(tp, value, path)
    else:
        return value  # a type the schema could not describe either; nothing to check
    raise _Mismatch(path, f"expected {_describe(tp)}, got {_kind(value)}")


def _convert_array(value: list[Any], tp: Any, path: str) -> Any:
    origin = get_origin(tp) or tp
    args = get_args(tp)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise _Mismatch(path, f"expected {len(args)} items, got {len(value)}")
        return tuple(
            _convert(v, a, _at(path, i)) for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    item = args[0] if args else Any
    items = [_convert(v, item, _at(path, i)) for i, v in enumerate(value)]
    if origin in (tuple, set, frozenset):
        return origin(items)
    return items


def _describe(tp: Any) -> str:
    if tp in _JSON_NAMES:
        return _JSON_NAMES[tp]
    if tp in _ARRAYS or get_origin(tp) in _ARRAYS:
        return "an array"
    if tp in _OBJECTS or get_origin(tp) in _OBJECTS or is_argument_type(tp):
        return "an object"
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    return getattr(tp, "__name__", repr(tp))


def _build(tp: type, obj: Mapping[str, Any], path: str) -> Any:
    if _is_pydantic(tp):
        return _pydantic(tp, obj, path)
    values: dict[str, Any] = {}
    for f in argument_fields(tp):
        if f.name not in obj:
            if f.required:
                raise _Mismatch(_at(path, f.name), "")
            continue
        values[f.attr] = _convert(obj[f.name], f.annotation, _at(path, f.name))
    if dataclasses.is_dataclass(tp):
        return tp(**values)
    return values  # a TypedDict is a plain dict


def _pydantic(tp: Any, obj: Any, path: str) -> Any:
    from pydantic import ValidationError

    try:
        return tp.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = first.get("msg", str(exc))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise _Mismatch(_at(path, where) if where else path, f"{detail}{more}") from None


@typing.overload
def decode_arguments(function: str, text: str, model: type[T], what: str = ...) -> T: ...
@typing.overload
def decode_arguments(function: str, text: str, model: None = None, what: str = ...) -> Any: ...
def decode_arguments(
    function: str, text: str, model: type[Any] | None = None, what: str = "arguments"
) -> Any:
    """The arguments ``text`` (a JSON object) as an instance of ``model``.

    Without ``model`` the decoded JSON is returned as it is. ``what`` names the text
    in error messages (``"arguments"``, ``"agent context"``).

    Raises:
        LLMArgumentsError: not JSON, not an object, a required field missing or a value
            of the wrong type (the message names the field).
        FunctionDefinitionError: ``model`` is not a dataclass, TypedDict or pydantic model.
    """
    obj = parse_json_object(function, text, what)
    if model is None:
        return obj
    if not is_argument_type(model):
        argument_fields(model)  # raises the explanation
    if not isinstance(obj, dict):
        raise LLMArgumentsError(function, f"expected a JSON object, got {_kind(obj)}", what=what)
    try:
        return _build(model, obj, "")
    except _Mismatch as exc:
        if not exc.detail:
            detail = f"missing required field {exc.path!r}"
        else:
            detail = f"field {exc.path!r}: {exc.detail}" if exc.path else exc.detail
        raise LLMArgumentsError(function, detail, what=what) from None
