"""LLM function calling: the data a tool call carries between the AI bridge and a function.

Go: ai/. A stream function that declares a function definition (its handshake's
field 0x09) is an LLM *tool*: the bridge writes each tool call as a
``FunctionCall`` JSON on ``FUNCTION_CALL_TAG`` (0xE002) targeted at the
function's name, and the function answers with the same object, ``is_ok`` and
``result`` set, on ``REDUCER_TAG`` (0xE001).

``build_function_definition`` makes the definition from a description and an
argument type (``parameters_schema``: dataclass, TypedDict or pydantic model);
``decode_arguments`` reads the LLM's arguments back into that type.
"""

from __future__ import annotations

from yomo.errors import FunctionDefinitionError, LLMArgumentsError, NoLLMResultError

from .arguments import decode_arguments
from .function_call import (
    FUNCTION_CALL_TAG,
    REDUCER_TAG,
    FunctionCall,
    FunctionCallError,
    FunctionDefinition,
)
from .schema import build_function_definition, parameters_schema

__all__ = [
    "FUNCTION_CALL_TAG",
    "REDUCER_TAG",
    "FunctionCall",
    "FunctionCallError",
    "FunctionDefinition",
    "FunctionDefinitionError",
    "LLMArgumentsError",
    "NoLLMResultError",
    "build_function_definition",
    "decode_arguments",
    "parameters_schema",
]
