"""JSON schemas of LLM function arguments, built from Python types.

Go: core/client.go ``ParseAIFunctionDefinition``: ``parameters`` is an object schema
whose properties each carry ``type``, ``description`` (always written, as Go does)
and ``enum`` when the values are fixed, plus ``required``. The argument type may be
a dataclass, a TypedDict or a pydantic model; a field's description comes from
``Annotated[T, "text"]``, ``dataclasses.field(metadata={"description": ...})`` or
pydantic's ``Field(description=...)``; ``Literal[...]`` and ``enum.Enum`` give an
``enum``; a field is required when it has no default (TypedDict: ``Required`` keys),
as a Go field without ``omitempty`` is.

Go flattens every property to those three keys. For lists and nested objects this
module also writes ``items`` and nested ``properties``, still valid JSON Schema, so
the LLM learns their shape too. Properties keep the order they are declared in.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from yomo.errors import FunctionDefinitionError

from .function_call import FunctionDefinition, go_json

__all__ = [
    "ArgumentField",
    "argument_fields",
    "build_function_definition",
    "is_argument_type",
    "parameters_schema",
]

_SCALARS: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}
_ARRAYS = (list, tuple, set, frozenset, Sequence, typing.Sequence)
_OBJECTS = (dict, Mapping, typing.Mapping)


@dataclasses.dataclass(frozen=True)
class ArgumentField:
    """One field of an argument type: its JSON name, type, description and default-ness."""

    name: str
    """The key in the arguments' JSON object."""
    attr: str
    """The Python attribute (or TypedDict key) it fills."""
    annotation: Any
    """The field's type, ``Annotated`` and all."""
    description: str
    """Text for the LLM (empty when none is given)."""
    required: bool
    """True when the LLM must give it (no default)."""


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _is_pydantic(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "model_fields") and hasattr(tp, "model_validate")


def is_argument_type(tp: Any) -> bool:
    """True for a dataclass type, a TypedDict or a pydantic model class."""
    return (
        (isinstance(tp, type) and dataclasses.is_dataclass(tp))
        or _is_typeddict(tp)
        or _is_pydantic(tp)
    )


def _annotated_description(annotation: Any) -> str:
    if get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if isinstance(meta, str):
                return meta
            text = getattr(meta, "description", None)
            if isinstance(text, str):
                return text
    return ""


def _hints(tp: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(tp, include_extras=True)
    except Exception as exc:  # a forward reference that does not resolve
        raise FunctionDefinitionError(
            f"cannot read the field types of {tp.__qualname__}: {type(exc).__name__}: {exc}"
        ) from exc


def argument_fields(tp: type) -> list[ArgumentField]:
    """The fields of an argument type, in declaration order.

    Raises:
        FunctionDefinitionError: ``tp`` is not a dataclass, TypedDict or pydantic model.
    """
    if _is_pydantic(tp):
        out = []
        for attr, info in tp.model_fields.items():  # type: ignore[attr-defined]
            # pydantic keeps Annotated metadata (constraints) apart from the bare type
            out.append(
                ArgumentField(
                    name=info.alias or attr,
                    attr=attr,
                    annotation=info.annotation,
                    description=info.description or "",
                    required=info.is_required(),
                )
            )
        return out
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        out = []
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            annotation = hints.get(f.name, Any)
            text = f.metadata.get("description", "") or _annotated_description(annotation)
            missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            out.append(ArgumentField(f.name, f.name, annotation, str(text), missing))
        return out
    if _is_typeddict(tp):
        hints = _hints(tp)
        required = tp.__required_keys__  # type: ignore[attr-defined]
        return [
            ArgumentField(
                key, key, hint, _annotated_description(hint), _required(key, hint, required)
            )
            for key, hint in hints.items()
        ]
    raise FunctionDefinitionError(
        f"an argument type must be a dataclass, a TypedDict or a pydantic model, got {tp!r}"
    )


def _required(key: str, hint: Any, required_keys: frozenset[str]) -> bool:
    # With `from __future__ import annotations` a TypedDict counts NotRequired[...]
    # keys as required (Python < 3.12 does not see through the string), so the
    # evaluated hint decides when it says.
    wrapper = getattr(get_origin(hint), "_name", "")
    if wrapper in ("Required", "NotRequired"):
        return wrapper == "Required"
    return key in required_keys


def _strip(annotation: Any) -> tuple[Any, bool]:
    """``annotation`` without ``Annotated``, ``Required``/``NotRequired`` and ``None``.

    Returns the bare type and whether ``None`` was allowed.
    """
    nullable = False
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin is not None and getattr(origin, "_name", "") in ("Required", "NotRequired"):
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            nullable = nullable or len(args) < len(get_args(annotation))
            if len(args) != 1:
                return annotation, nullable
            annotation = args[0]
        else:
            return annotation, nullable


def _json_type(values: Sequence[Any]) -> str:
    kinds = {_SCALARS.get(type(v), "") for v in values}
    return kinds.pop() if len(kinds) == 1 else ""


def _type_schema(annotation: Any, where: str) -> dict[str, Any]:
    """``type`` (and ``enum``, ``items``, ``properties``) for one annotation."""
    tp, _ = _strip(annotation)
    origin = get_origin(tp)
    if tp is Any or tp is object:
        return {}
    if origin is Literal:
        values = list(get_args(tp))
        kind = _json_type(values)
        return {"type": kind, "enum": values} if kind else {"enum": values}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        values = [m.value for m in tp]
        kind = _json_type(values)
        return {"type": kind, "enum": values} if kind else {"enum": values}
    if isinstance(tp, type) and tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if tp in _ARRAYS or origin in _ARRAYS:
        args = [a for a in get_args(tp) if a is not Ellipsis]
        schema: dict[str, Any] = {"type": "array"}
        if len(set(args)) == 1:
            items = _type_schema(args[0], f"{where}[]")
            if items:
                schema["items"] = items
        return schema
    if tp in _OBJECTS or origin in _OBJECTS:
        return {"type": "object"}
    if is_argument_type(tp):
        return parameters_schema(tp)
    raise FunctionDefinitionError(
        f"cannot describe {where} of type {annotation!r} in a JSON schema: use str, int, "
        "float, bool, a Literal, an Enum, a list, a dict or a nested argument type"
    )


def parameters_schema(tp: type) -> dict[str, Any]:
    """The ``parameters`` JSON schema of an argument type (Go's shape, see the module doc).

    Raises:
        FunctionDefinitionError: ``tp`` or one of its fields cannot be described.
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in argument_fields(tp):
        schema = _type_schema(f.annotation, f"field {f.name!r} of {tp.__qualname__}")
        prop: dict[str, Any] = {}
        if "type" in schema:
            prop["type"] = schema.pop("type")
        prop["description"] = f.description
        prop.update(schema)
        properties[f.name] = prop
        if f.required:
            required.append(f.name)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    return out


def _check_raw_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    if schema.get("type") != "object":
        # Go's MCP server (go-sdk AddTool) panics on any other input schema
        raise FunctionDefinitionError(
            f'an input schema must be a JSON schema object with "type": "object", '
            f"got type {schema.get('type')!r}"
        )
    props = schema.get("properties", {})
    if not isinstance(props, Mapping):
        raise FunctionDefinitionError('the input schema\'s "properties" must be an object')
    return dict(schema)


def build_function_definition(
    name: str,
    description: str | None = None,
    input_schema: type | Mapping[str, Any] | None = None,
    definition: FunctionDefinition | str | bytes | Mapping[str, Any] | None = None,
) -> FunctionDefinition | None:
    """The function definition a stream function announces in its handshake, or None.

    Go: ``WithSfnAIFunctionDefinition(description, inputModel)`` and
    ``WithAIFunctionJsonDefinition(json)``; the latter wins when both are given.

    Args:
        name: the stream function's name (the tool's name).
        description: what the function does; without one (and no ``definition``)
            the function is not an LLM tool.
        input_schema: the argument type, or a JSON schema object of the arguments.
        definition: a whole ``{name, description, parameters}`` definition (JSON text
            or a mapping); ``name`` may be left out and must be the function's name.

    Raises:
        FunctionDefinitionError: the definition or the schema cannot be used.
    """
    if definition is not None:
        if isinstance(definition, FunctionDefinition):
            parsed = definition
        elif isinstance(definition, (str, bytes)):
            text = definition.encode() if isinstance(definition, str) else definition
            parsed = FunctionDefinition.from_bytes(text)
        else:
            parsed = FunctionDefinition.from_bytes(go_json({"name": name, **definition}))
        if parsed.name and parsed.name != name:
            raise FunctionDefinitionError(
                f"the function definition is named {parsed.name!r} but the stream function "
                f"is {name!r}: the bridge calls a tool by its name, so they must match"
            )
        if parsed.parameters is not None:
            _check_raw_schema(parsed.parameters)
        return dataclasses.replace(parsed, name=name)
    if not description:
        if input_schema is not None:
            raise FunctionDefinitionError(
                f"function {name!r} has an input schema but no description: an LLM tool "
                "needs a description of what it does"
            )
        return None
    if not isinstance(description, str):
        raise FunctionDefinitionError(
            f"a description must be a str, got {type(description).__name__}"
        )
    parameters: dict[str, Any] | None = None
    if isinstance(input_schema, Mapping):
        parameters = _check_raw_schema(input_schema)
    elif input_schema is not None:
        if not is_argument_type(input_schema):
            raise FunctionDefinitionError(
                "input_schema must be a dataclass, a TypedDict, a pydantic model or a JSON "
                f"schema dict, got {input_schema!r}"
            )
        parameters = parameters_schema(input_schema)
    return FunctionDefinition(name=name, description=description, parameters=parameters)
