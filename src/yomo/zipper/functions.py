"""The LLM functions (tools) a zipper knows: name -> definition and who serves it.

Go: pkg/bridge/ai/register/register.go and core/server.go
tryRegisterFunctionDefinition. A stream function whose handshake carries a function
definition (field 0x09) is registered under the definition's name when it connects
and unregistered when it leaves; a second function with a name already taken is
refused. The AI bridge and the MCP server list tools from here and subscribe to
changes. Functions known through mesh peers are registered with the peer's name as
``zipper`` (see docs/llm.md, "Functions on other zippers of a mesh").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from yomo.ai import FunctionDefinition
from yomo.errors import YomoError

__all__ = ["DuplicateFunctionError", "FunctionRegistry", "RegisteredFunction"]

logger = logging.getLogger("yomo.zipper")

Listener = Callable[[], None]


class DuplicateFunctionError(YomoError):
    """A function with this name is already registered (Go's refusal text)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"function `{name}` already registered")


@dataclass(frozen=True)
class RegisteredFunction:
    """One registered tool."""

    definition: FunctionDefinition
    owner: int | str
    """The connection number on this zipper, or ``"<peer>/<id>"`` for a mesh peer's."""
    zipper: str = ""
    """The zipper the function is connected to; empty for this one."""

    @property
    def name(self) -> str:
        return self.definition.name


class FunctionRegistry:
    """Registered LLM functions in registration order; listeners hear every change."""

    def __init__(self) -> None:
        self._by_owner: dict[int | str, RegisteredFunction] = {}
        self._by_name: dict[str, RegisteredFunction] = {}
        self._listeners: list[Listener] = []

    def register(
        self, owner: int | str, definition: FunctionDefinition, *, zipper: str = ""
    ) -> RegisteredFunction:
        """Register ``definition`` for ``owner``.

        Raises:
            DuplicateFunctionError: another owner registered the same name.
        """
        taken = self._by_name.get(definition.name)
        if taken is not None and taken.owner != owner:
            raise DuplicateFunctionError(definition.name)
        self.unregister(owner, notify=False)
        entry = RegisteredFunction(definition, owner, zipper)
        self._by_owner[owner] = entry
        self._by_name[definition.name] = entry
        self._notify()
        return entry

    def unregister(self, owner: int | str, *, notify: bool = True) -> RegisteredFunction | None:
        """Forget ``owner``'s function (no-op if it has none); returns what was removed."""
        entry = self._by_owner.pop(owner, None)
        if entry is None:
            return None
        if self._by_name.get(entry.name) is entry:
            del self._by_name[entry.name]
        if notify:
            self._notify()
        return entry

    def unregister_zipper(self, zipper: str) -> int:
        """Forget every function learned from mesh peer ``zipper``; returns how many."""
        owners = [o for o, e in self._by_owner.items() if e.zipper == zipper]
        for owner in owners:
            self.unregister(owner, notify=False)
        if owners:
            self._notify()
        return len(owners)

    def get(self, name: str) -> RegisteredFunction | None:
        """The function registered under ``name``, if any."""
        return self._by_name.get(name)

    def functions(self) -> list[RegisteredFunction]:
        """Every registered function, oldest first."""
        return list(self._by_owner.values())

    def definitions(self) -> list[FunctionDefinition]:
        """The definitions of every registered function, oldest first."""
        return [e.definition for e in self._by_owner.values()]

    def local(self) -> list[RegisteredFunction]:
        """The functions connected to this zipper itself."""
        return [e for e in self._by_owner.values() if not e.zipper]

    def __len__(self) -> int:
        return len(self._by_owner)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener()`` after every change; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener's bug must not break a handshake
                logger.exception("function registry listener failed")
