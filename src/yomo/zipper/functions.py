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

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from yomo.ai import FunctionCallError, FunctionDefinition
from yomo.errors import YomoError

__all__ = [
    "MESH_ANNOUNCE_INTERVAL",
    "MESH_FUNCTIONS_TAG",
    "MESH_FUNCTIONS_TTL",
    "DuplicateFunctionError",
    "FunctionRegistry",
    "RegisteredFunction",
    "decode_announcement",
    "encode_announcement",
]

#: Zippers of a mesh tell each other their LLM functions on this tag (not a Go tag;
#: a Go zipper routes it to nobody and does not forward it).
MESH_FUNCTIONS_TAG = 0xE003
#: Seconds between two announcements of a zipper's functions to its peers.
MESH_ANNOUNCE_INTERVAL = 5.0
#: A peer's functions are forgotten when no announcement came for this long.
MESH_FUNCTIONS_TTL = 3 * MESH_ANNOUNCE_INTERVAL

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
        self._seen: dict[str, float] = {}

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

    def apply_announcement(self, zipper: str, definitions: Iterable[FunctionDefinition]) -> None:
        """Make ``zipper``'s functions exactly ``definitions`` (a peer's announcement).

        A name already served here or by another peer keeps its first owner; the
        clash is logged once per announcement.
        """
        wanted = {d.name: d for d in definitions}
        prefix = f"{zipper}/"
        changed = False
        for owner, entry in list(self._by_owner.items()):
            if entry.zipper == zipper and (
                entry.name not in wanted or wanted[entry.name] != entry.definition
            ):
                self.unregister(owner, notify=False)
                changed = True
        for name, definition in wanted.items():
            owner = prefix + name
            if owner in self._by_owner:
                continue
            taken = self._by_name.get(name)
            if taken is not None:
                where = f"zipper {taken.zipper!r}" if taken.zipper else "this zipper"
                logger.warning(
                    "LLM function %r of zipper %r is not offered: the name is taken on %s",
                    name,
                    zipper,
                    where,
                )
                continue
            entry = RegisteredFunction(definition, owner, zipper)
            self._by_owner[owner] = entry
            self._by_name[name] = entry
            changed = True
        self._seen[zipper] = time.monotonic()
        if changed:
            self._notify()

    def expire(self, ttl: float = MESH_FUNCTIONS_TTL) -> list[str]:
        """Forget the functions of peers not heard from for ``ttl`` seconds; their names."""
        now = time.monotonic()
        gone = [z for z, seen in self._seen.items() if now - seen > ttl]
        for zipper in gone:
            del self._seen[zipper]
            count = self.unregister_zipper(zipper)
            if count:
                logger.info(
                    "forgot %d LLM function(s) of zipper %r: no news for %g s", count, zipper, ttl
                )
        return gone

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


def encode_announcement(zipper: str, functions: Iterable[RegisteredFunction]) -> bytes:
    """The payload a zipper sends its peers: its name and its own functions' definitions."""
    body = {"zipper": zipper, "functions": [f.definition.to_dict() for f in functions]}
    return json.dumps(body, separators=(",", ":")).encode()


def decode_announcement(payload: bytes) -> tuple[str, list[FunctionDefinition]]:
    """``(zipper, definitions)`` of an announcement.

    Raises:
        FunctionCallError: the payload is not an announcement.
    """
    try:
        body = json.loads(payload)
        zipper = body["zipper"]
        items = body["functions"]
        if not isinstance(zipper, str) or not zipper or not isinstance(items, list):
            raise TypeError("zipper must be a name and functions a list")
        definitions = [FunctionDefinition.from_bytes(json.dumps(item).encode()) for item in items]
    except (ValueError, KeyError, TypeError) as exc:
        raise FunctionCallError(f"not an LLM function announcement: {exc}") from exc
    return zipper, definitions
