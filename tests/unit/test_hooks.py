"""The pure parts of yomo.zipper.hooks: composition order, Go's default negotiation, the
default registry. The zipper's use of them is in tests/integration/test_zipper_hooks.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import yomo
from yomo.zipper.hooks import (
    ConnectionRegistry,
    MetadataRouter,
    check_version,
    compose,
    default_version_negotiator,
)
from yomo.zipper.router import TagRouter


def test_the_first_middleware_is_the_outermost() -> None:
    calls: list[str] = []

    def named(label: str) -> Any:
        def middleware(next: Any) -> Any:
            def handle(x: int) -> int:
                calls.append(f"{label}>")
                result = next(x) + 1
                calls.append(f"<{label}")
                return result

            return handle

        return middleware

    handler = compose(lambda x: x * 10, [named("a"), named("b")])
    assert handler(1) == 12
    assert calls == ["a>", "b>", "<b", "<a"]
    assert compose(abs, []) is abs


def test_default_negotiation_is_gos() -> None:
    default_version_negotiator(yomo.SPEC_VERSION, yomo.SPEC_VERSION)
    with pytest.raises(yomo.RejectedError) as info:
        default_version_negotiator("2023-01-01", yomo.SPEC_VERSION)
    assert info.value.reason == ("version negotiation failed: client=2023-01-01, server=2024-01-03")


def test_any_other_exception_of_a_negotiator_is_a_rejection_with_its_text() -> None:
    def broken(client: str, zipper: str) -> None:
        raise KeyError("x")

    with pytest.raises(yomo.RejectedError) as info:
        check_version(broken, "v")
    assert info.value.reason == "'x'"

    def moved(client: str, zipper: str) -> None:
        raise yomo.ConnectToError("other:9000")

    with pytest.raises(yomo.ConnectToError):
        check_version(moved, "v")


def test_registry() -> None:
    registry = ConnectionRegistry()
    a = SimpleNamespace(number=1, name="a")
    b = SimpleNamespace(number=2, name="b")
    registry.store(a)  # type: ignore[arg-type]
    registry.store(b)  # type: ignore[arg-type]
    assert registry.get(2) is b and registry.get(3) is None
    assert registry.find(lambda c: c.name == "a") == [a]
    assert registry.snapshot() == {"1": "a", "2": "b"} and len(registry) == 2
    registry.remove(1)
    registry.remove(1)
    assert registry.snapshot() == {"2": "b"}


def test_a_tag_router_is_not_a_metadata_router() -> None:
    """The zipper tells the two router kinds apart by ``route_frame``."""
    assert not isinstance(TagRouter(), MetadataRouter)

    class Mine:
        def add(self, connection: Any) -> None: ...
        def remove(self, number: int) -> None: ...
        def route_frame(self, tag: int, metadata: Any) -> list[Any]:
            return []

    assert isinstance(Mine(), MetadataRouter)
