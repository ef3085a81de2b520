"""The monitor endpoint of a zipper: health, Prometheus metrics, JSON and a live page.

``Zipper(..., monitor="127.0.0.1:8222")`` (or ``yomo serve --monitor``) serves,
on the zipper's own event loop:

- ``/healthz``: 200 while serving, 503 while starting or stopping;
- ``/metrics``: Prometheus exposition of the zipper's counters (``yomo_*``);
- ``/api/stats``, ``/api/connections``, ``/api/history``: JSON, tags in hex;
- ``/``: a status page that polls the JSON (assets in ``static/``, no CDN).

Read-only: it reads ``stats()`` and ``connections()`` snapshots when asked
(and once a second for the history), never a per-frame hook. See docs/monitor.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from yomo._asgi import AsgiServer, serve_asgi
from yomo.errors import ListenError, StateError

from .app import build_app, connection_json, stats_json
from .history import DEFAULT_WINDOW, History
from .metrics import MAX_LABEL_VALUES, MonitoredZipper, ZipperCollector

__all__ = [
    "DEFAULT_WINDOW",
    "MAX_LABEL_VALUES",
    "History",
    "Monitor",
    "MonitoredZipper",
    "ZipperCollector",
    "build_app",
    "connection_json",
    "stats_json",
]


class _Zipper(MonitoredZipper, Protocol):
    @property
    def state(self) -> str: ...

    @property
    def log(self) -> logging.Logger: ...


class Monitor:
    """Serves a zipper's monitor endpoint and samples its throughput once a second."""

    def __init__(self, zipper: _Zipper, *, window: int = DEFAULT_WINDOW) -> None:
        self.zipper = zipper
        self.history = History(window)
        self._server: AsgiServer | None = None
        self._sampler: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` (after ``start``)."""
        if self._server is None:
            raise StateError("yomo: the monitor is not started")
        return self._server.address

    @property
    def url(self) -> str:
        """``http://host:port`` of the monitor (after ``start``)."""
        if self._server is None:
            raise StateError("yomo: the monitor is not started")
        return self._server.url

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (0: a free port).

        Raises:
            ListenError: the address cannot be bound (an OSError); the message names the monitor.
        """
        app = build_app(self.zipper, self.history, state=lambda: self.zipper.state)
        try:
            self._server = await serve_asgi(app, host, port, name="monitor", log=self.zipper.log)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            message = f"cannot serve the monitor on {host}:{port}: {reason}"
            raise ListenError(message) from exc
        self._sampler = asyncio.get_running_loop().create_task(self._sample())

    async def stop(self) -> None:
        """Stop sampling and serving."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self._server is not None:
            await self._server.stop()

    async def _sample(self) -> None:
        while True:
            try:
                self.history.sample(self.zipper.stats())
            except Exception:  # a broken stats section must not end the sampling
                self.zipper.log.exception("monitor: cannot read the zipper's counters")
            await asyncio.sleep(1.0)
