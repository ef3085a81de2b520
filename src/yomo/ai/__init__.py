"""LLM function calling: the data a tool call carries between the AI bridge and a function.

Go: ai/. A stream function that declares a function definition (its handshake's
field 0x09) is an LLM *tool*: the bridge writes each tool call as a
``FunctionCall`` JSON on ``FUNCTION_CALL_TAG`` (0xE002) targeted at the
function's name, and the function answers with the same object, ``is_ok`` and
``result`` set, on ``REDUCER_TAG`` (0xE001).
"""

from __future__ import annotations

from .function_call import (
    FUNCTION_CALL_TAG,
    REDUCER_TAG,
    FunctionCall,
    FunctionCallError,
    FunctionDefinition,
)

__all__ = [
    "FUNCTION_CALL_TAG",
    "REDUCER_TAG",
    "FunctionCall",
    "FunctionCallError",
    "FunctionDefinition",
]
