"""The one way tests start zippers: on 127.0.0.1, port 0, plain self-signed TLS, no summary log.

Every zipper fixture (``zipper``, ``aio_zipper``, ``sync_zipper``, the interop ``py_zipper``,
the mesh tests' ``mesh_zipper``) is a thin wrapper over ``AsyncZippers`` or ``SyncZippers``,
so the defaults and the teardown (stop, bounded, newest first) live here once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from yomo.transport import TlsConfig

__all__ = ["PLAIN_TLS", "TEST_ZIPPER_DEFAULTS", "AsyncZippers", "SyncZippers", "with_defaults"]

#: Self-signed, unverified TLS: what a test zipper and its clients use unless told otherwise.
PLAIN_TLS = TlsConfig()
#: What a test zipper gets unless the test says otherwise (the runner's YOMO_TLS_* are ignored).
TEST_ZIPPER_DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "tls": PLAIN_TLS,
    "stats_interval": 0,
    # Go's behaviour (no observer: dropped at once) unless a test is about the hold
    # (yomo.zipper.startup_hold): counts of unobserved frames are then immediate
    "startup_hold": 0.0,
}
#: Seconds a zipper has to stop at teardown.
STOP_TIMEOUT = 5.0

Z = TypeVar("Z")


def with_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` over ``TEST_ZIPPER_DEFAULTS``."""
    return {**TEST_ZIPPER_DEFAULTS, **options}


class AsyncZippers(Generic[Z]):
    """Starts asyncio zippers made by ``factory(**options)``; ``stop_all`` at teardown."""

    def __init__(self, factory: Callable[..., Z]) -> None:
        self._factory = factory
        self.started: list[Z] = []

    async def start(self, **options: Any) -> Z:
        z = self._factory(**with_defaults(options))
        await z.start()  # type: ignore[attr-defined]
        self.started.append(z)
        return z

    async def stop_all(self) -> None:
        for z in reversed(self.started):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(z.stop(), STOP_TIMEOUT)  # type: ignore[attr-defined]


class SyncZippers(Generic[Z]):
    """Starts synchronous ``yomo.Zipper``s made by ``factory(**options)``; ``stop_all`` at teardown."""

    def __init__(self, factory: Callable[..., Z]) -> None:
        self._factory = factory
        self.started: list[Z] = []

    def start(self, **options: Any) -> Z:
        z = self._factory(**with_defaults(options))
        z.start()  # type: ignore[attr-defined]
        self.started.append(z)
        return z

    def stop_all(self) -> None:
        for z in reversed(self.started):
            with contextlib.suppress(Exception):
                z.stop()  # type: ignore[attr-defined]
