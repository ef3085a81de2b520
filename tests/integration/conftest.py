"""Fixtures for integration tests: a real zipper on loopback and real QUIC clients.

``zipper`` starts ``Zipper`` objects on 127.0.0.1 port 0 and stops them at teardown;
``clients`` connects ``ClientCore`` sources and stream functions (closed at teardown);
``raw`` dials bare ``FrameConnection``s for tests that write bytes by hand.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from support.zippers import AsyncZippers
from yomo.zipper.server import Zipper

from .helpers import Clients, Raw


def pytest_configure(config: pytest.Config) -> None:
    """Programs the tests start get Ctrl-C as from a terminal, however pytest was started.

    A shell that starts a job in the background (``cmd &`` in a script) ignores SIGINT for
    it, and an ignored signal stays ignored in every child: ``wait()`` then rightly leaves
    SIGINT alone, and the tests that send it to their programs hang. With a handler here,
    children start with SIGINT's default again (exec resets handlers, not "ignored").
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration/ is marked ``integration`` (``-m "not integration"``
    runs the fast tests below QUIC alone)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def zipper() -> AsyncIterator[Callable[..., Awaitable[Zipper]]]:
    """Factory: ``await zipper(**options)`` starts a Zipper on 127.0.0.1, port 0 by default."""
    zippers = AsyncZippers(Zipper)

    async def make(**options: Any) -> Zipper:
        options.setdefault("name", "test-zipper")
        return await zippers.start(**options)

    yield make
    await zippers.stop_all()


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
