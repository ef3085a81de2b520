"""Fixtures for integration tests: a real zipper on loopback and real QUIC clients.

``zipper`` starts ``Zipper`` objects on 127.0.0.1 port 0 and stops them at teardown;
``clients`` connects ``ClientCore`` sources and stream functions (closed at teardown);
``raw`` dials bare ``FrameConnection``s for tests that write bytes by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from yomo.zipper.server import Zipper

from .helpers import PLAIN_TLS, Clients, Raw


@pytest.fixture
async def zipper() -> AsyncIterator[Callable[..., Awaitable[Zipper]]]:
    """Factory: ``await zipper(**options)`` starts a Zipper on 127.0.0.1, port 0 by default."""
    started: list[Zipper] = []

    async def make(**options: Any) -> Zipper:
        options.setdefault("name", "test-zipper")
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        options.setdefault("tls", PLAIN_TLS)
        options.setdefault("stats_interval", 0)
        z = Zipper(**options)
        await z.start()
        started.append(z)
        return z

    yield make
    for z in reversed(started):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(z.stop(), 5.0)


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """Factory of connected ClientCore sources and stream functions."""
    c = Clients()
    yield c
    await c.close_all()


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    """Bare dialled FrameConnections."""
    r = Raw()
    yield r
    await r.close_all()


# Fixtures of the public-client tests (yomo.* and yomo.aio.*), kept in their own module.
from .clients_helpers import (  # noqa: E402, F401
    aio_clients,
    aio_zipper,
    sync_clients,
    sync_zipper,
)
