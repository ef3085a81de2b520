"""``FunctionCall`` and ``FunctionDefinition``: the JSON shapes Go YoMo's AI bridge speaks.

Go: ai/function_call.go (``FunctionCall``, its JSON tags and ``FromBytes`` check) and
go-openai v1.50.3's ``FunctionDefinition`` (``name``, ``description`` and ``strict``
omitempty, ``parameters`` always written, ``null`` when there are none). Field names
are Go's JSON keys; ``to_bytes`` writes them in Go's order, leaves out the same empty
fields Go's ``omitempty`` does and escapes like ``json.Marshal``, so the bytes are
the ones Go writes (tests/interop compares them with Go's own).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from yomo.errors import FunctionCallError, FunctionDefinitionError

__all__ = [
    "FUNCTION_CALL_TAG",
    "REDUCER_TAG",
    "FunctionCall",
    "FunctionCallError",
    "FunctionDefinition",
    "go_json",
]

#: Results of tool calls travel on this tag, back to the bridge (Go: ai.ReducerTag).
REDUCER_TAG = 0xE001
#: Tool calls travel on this tag, targeted at the function's name (Go: ai.FunctionCallTag).
FUNCTION_CALL_TAG = 0xE002


# json.Marshal escapes these inside strings (HTML safety, and JavaScript line ends).
_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_GO_ESCAPE_TABLE = str.maketrans(_GO_ESCAPES)


def go_json(obj: Any) -> bytes:
    """Compact JSON bytes as Go's ``json.Marshal`` writes them (UTF-8, ``<>&`` escaped).

    The escaped characters can only occur inside JSON strings, so translating the
    whole text is exact.
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.translate(_GO_ESCAPE_TABLE).encode()


@dataclass(kw_only=True)
class FunctionCall:
    """One tool call, as the bridge sends it and the function answers it."""

    tid: str = ""
    """Transaction id of the request chain (``yomo-tid``)."""
    req_id: str = ""
    """Id of the chat request this call belongs to."""
    result: str = ""
    """The function's answer, set with ``is_ok`` when it replies."""
    arguments: str = ""
    """The arguments the LLM chose, as a JSON string."""
    tool_call_id: str = ""
    """The LLM's id for this call; the bridge matches results by it and ``req_id``."""
    function_name: str = ""
    """The called function's name (its stream function's name)."""
    is_ok: bool = False
    """True when the function answered (``result`` holds the answer)."""
    agent_context: str = ""
    """Caller-provided context, as a JSON string, passed through to the function."""

    # Go's order of fields; those not listed in _ALWAYS are omitted when empty.
    _ALWAYS = frozenset({"arguments", "is_ok"})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object Go would write (``omitempty`` fields left out when empty)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value or f.name in self._ALWAYS:
                out[f.name] = value
        return out

    def to_bytes(self) -> bytes:
        """Compact JSON bytes, as ``json.Marshal`` writes them."""
        return go_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> FunctionCall:
        """Parse a tool call; Go's rule: JSON object with a ``req_id`` or ``tool_call_id``.

        Raises:
            FunctionCallError: the bytes are not such an object.
        """
        try:
            obj = json.loads(bytes(data))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FunctionCallError(
                f"llm-sfn: cannot read function call object from context data: {exc}"
            ) from exc
        if not isinstance(obj, dict):
            raise FunctionCallError(
                "llm-sfn: cannot read function call object from context data: "
                f"expected a JSON object, got {type(obj).__name__}"
            )
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in obj or obj[f.name] is None:
                continue
            value = obj[f.name]
            expected = bool if f.name == "is_ok" else str
            if not isinstance(value, expected):
                raise FunctionCallError(
                    f"llm-sfn: function call field {f.name!r}: expected "
                    f"{expected.__name__}, got {type(value).__name__}"
                )
            values[f.name] = value
        call = cls(**values)
        if not call.req_id and not call.tool_call_id:
            raise FunctionCallError(
                "llm-sfn: cannot read function call object from context data: "
                "neither req_id nor tool_call_id is set"
            )
        return call


@dataclass(frozen=True, kw_only=True)
class FunctionDefinition:
    """An OpenAI function definition: what a tool is called, does and takes."""

    name: str
    """The tool's name: the stream function's name."""
    description: str = ""
    """What the tool does, for the LLM to decide when to call it."""
    strict: bool = False
    """OpenAI's strict schema adherence (Go YoMo never sets it)."""
    parameters: dict[str, Any] | None = None
    """A JSON Schema object of the arguments (``type``, ``properties``, ``required``);
    None for a function that takes none (written as ``null``, as Go does)."""

    def to_dict(self) -> dict[str, Any]:
        """``{name, description, strict, parameters}`` with Go's omitempty rules."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.strict:
            out["strict"] = True
        out["parameters"] = self.parameters
        return out

    def to_bytes(self) -> bytes:
        """Compact JSON: the bytes of a handshake's field 0x09."""
        return go_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> FunctionDefinition:
        """Parse field 0x09 of a handshake (Go's zipper rejects what this rejects).

        Raises:
            FunctionDefinitionError: not a JSON object with a string ``name``, a string
                ``description`` and an object (or null) ``parameters``.
        """
        try:
            obj = json.loads(bytes(data))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FunctionDefinitionError(f"unmarshal function definition error: {exc}") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("name", ""), str):
            raise FunctionDefinitionError(
                "unmarshal function definition error: expected a JSON object with a string name"
            )
        description = obj.get("description") or ""
        parameters = obj.get("parameters")
        strict = obj.get("strict") or False
        if (
            not isinstance(description, str)
            or not isinstance(strict, bool)
            or not (parameters is None or isinstance(parameters, dict))
        ):
            raise FunctionDefinitionError(
                "unmarshal function definition error: description must be a string, strict "
                "a boolean and parameters an object"
            )
        return cls(
            name=obj.get("name", ""), description=description, strict=strict, parameters=parameters
        )
