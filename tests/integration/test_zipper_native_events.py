"""The native data path's events reach the zipper's Python side in batches
(``take_events``); a batch handled in order keeps registrations right.

A mass close puts many ``closed`` events ahead of a new ``handshake`` in one batch. The
zipper handles them in order, so an LLM function that reconnects finds its old
registration gone: its name is free again. (Answering handshakes ahead of the closes
would refuse it as a duplicate; measured, the closes' Python work is not what delays
a new handshake during a mass close, see docs/reliability.md, What is left, item 3.)
Here the batch is formed on purpose: the test holds the events back until the closes
and the new handshake have all come, then hands them over as one batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from support.wire_tool import WireTool
from yomo.transport import DEFAULT_ZIPPER_SETTINGS
from yomo.transport.native import available as native_available
from yomo.zipper.server import Zipper

from .helpers import Clients, eventually

pytestmark = pytest.mark.skipif(
    not native_available(), reason="yomo._native is not built (no Rust toolchain at install)"
)


class HeldEvents:
    """Holds the native path's event batches while ``holding``; ``release`` hands what
    was held to the zipper as one batch, in the order it came."""

    def __init__(self) -> None:
        self.holding = False
        self.held: list[tuple[Any, ...]] = []
        self.handled: list[list[tuple[Any, ...]]] = []

    def kinds(self) -> list[str]:
        return [str(event[0]) for event in self.held]

    def release(self, zipper: Zipper) -> None:
        batch, self.held, self.holding = self.held, [], False
        self.handled.append(batch)
        ORIGINAL(zipper, batch)


ORIGINAL = Zipper._on_native_events


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldEvents]:
    events = HeldEvents()

    def on_events(self: Zipper, batch: list[tuple[Any, ...]]) -> None:
        if events.holding:
            events.held.extend(batch)
        else:
            ORIGINAL(self, batch)

    monkeypatch.setattr(Zipper, "_on_native_events", on_events)
    yield events


async def test_a_function_reconnecting_in_the_batch_of_its_close_is_registered_again(
    zipper: Any, clients: Clients, held: HeldEvents
) -> None:
    z = await zipper(quic=dataclasses.replace(DEFAULT_ZIPPER_SETTINGS, backend="native"))
    assert z.backend.startswith("native"), z.backend
    first = WireTool("get-weather", z.addr)
    await first.connect()
    assert first.rejected is None
    crowd = [await clients.source(z, name=f"crowd-{i}") for i in range(20)]
    await eventually(lambda: len(z.connections()) == 21, "21 connections")
    old_owner = z.functions.get("get-weather").owner  # type: ignore[union-attr]

    held.holding = True
    for source in crowd:
        await source.close()
    await first.close()
    await eventually(lambda: held.kinds().count("closed") == 21, "the 21 closes, held")
    second = WireTool("get-weather", z.addr)
    connecting = asyncio.get_running_loop().create_task(second.connect())
    await eventually(lambda: "handshake" in held.kinds(), "the new handshake, held")
    kinds = held.kinds()
    assert kinds.index("handshake") > max(i for i, k in enumerate(kinds) if k == "closed")
    held.release(z)  # one batch: 21 closes, then the function's new handshake

    await asyncio.wait_for(connecting, 10)
    assert second.rejected is None  # not "function `get-weather` already registered"
    entry = z.functions.get("get-weather")
    assert entry is not None and entry.owner != old_owner
    assert [c.name for c in z.connections()] == ["get-weather"]
    assert z.stats()["rejections"] == 0
    await second.close()
    await eventually(lambda: len(z.functions) == 0, "the function to leave")
