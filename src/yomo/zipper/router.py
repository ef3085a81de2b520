"""The routing table: which stream-function connections observe which tags.

Go: core/router/router.go. A frame with ``yomo-target`` goes only to functions
whose wanted target equals it. Routes are keyed by the zipper's own
connection number, so a reconnecting client never loses routes when its old
connection closes late.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

__all__ = ["Router", "TagRouter"]

T = TypeVar("T")


class Router(Protocol[T]):
    """What the zipper needs of a router; replace it to route differently."""

    def add(self, number: int, tags: Iterable[int], wanted_target: str, value: T) -> None:
        """Route ``tags`` to ``value`` (registered under connection ``number``)."""

    def remove(self, number: int) -> None:
        """Forget every route of connection ``number``."""

    def route(self, tag: int, target: str | None) -> list[T]:
        """Everything that should receive a frame with ``tag`` (and ``target``)."""


class TagRouter(Generic[T]):
    """Tag -> observers, with wanted targets; the default router."""

    def __init__(self) -> None:
        self._by_tag: dict[int, dict[int, T]] = {}
        self._targets: dict[int, str] = {}
        self._tags: dict[int, tuple[int, ...]] = {}

    def add(self, number: int, tags: Iterable[int], wanted_target: str, value: T) -> None:
        tags = tuple(dict.fromkeys(tags))
        self._tags[number] = tags
        if wanted_target:
            self._targets[number] = wanted_target
        for tag in tags:
            self._by_tag.setdefault(tag, {})[number] = value

    def remove(self, number: int) -> None:
        self._targets.pop(number, None)
        for tag in self._tags.pop(number, ()):
            observers = self._by_tag.get(tag)
            if observers is not None:
                observers.pop(number, None)
                if not observers:
                    del self._by_tag[tag]

    def route(self, tag: int, target: str | None) -> list[T]:
        observers = self._by_tag.get(tag)
        if not observers:
            return []
        if not target:
            return list(observers.values())
        targets = self._targets
        return [v for n, v in observers.items() if targets.get(n) == target]
