"""The monitor's HTTP routes: a Starlette app built from one zipper's state.

Every handler is ``async`` so it runs on the zipper's loop and reads its
snapshots without locks; none of them writes anything.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from yomo._version import __version__

from ..stats import ConnectionInfo, format_tag
from .history import History
from .metrics import MonitoredZipper, ZipperCollector

__all__ = ["build_app", "connection_json", "stats_json"]

_NO_CACHE = {"Cache-Control": "no-store"}


def stats_json(stats: dict[str, Any]) -> dict[str, Any]:
    """``stats()`` with tags written in hex, as ``/api/stats`` returns it."""
    out = dict(stats)
    out["version"] = __version__
    out["tags"] = {format_tag(tag): counters for tag, counters in stats["tags"].items()}
    return out


def connection_json(conn: ConnectionInfo) -> dict[str, Any]:
    """One ``connections()`` entry for ``/api/connections``: tags in hex, address as text."""
    out = dataclasses.asdict(conn)
    out["observed_tags"] = [format_tag(t) for t in conn.observed_tags]
    host, port = conn.remote_address[:2]
    out["remote_address"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return out


def build_app(zipper: MonitoredZipper, history: History, *, state: Any) -> Starlette:
    """The monitor app: ``/healthz``, ``/metrics``, ``/api/*``, the page and its assets.

    ``state`` is a callable returning the zipper's state (``"serving"`` etc.).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ZipperCollector(zipper))

    async def healthz(request: Request) -> Response:
        current = state()
        code = 200 if current == "serving" else 503
        return JSONResponse({"status": current, "name": zipper.name}, code, headers=_NO_CACHE)

    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), headers={"Content-Type": content_type, **_NO_CACHE})

    async def api_stats(request: Request) -> Response:
        return JSONResponse(stats_json(zipper.stats()), headers=_NO_CACHE)

    async def api_connections(request: Request) -> Response:
        body = [connection_json(c) for c in zipper.connections()]
        return JSONResponse(body, headers=_NO_CACHE)

    async def api_history(request: Request) -> Response:
        return JSONResponse(history.as_json(), headers=_NO_CACHE)

    static = resources.files("yomo.zipper.monitor") / "static"
    page = (static / "index.html").read_bytes()

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_NO_CACHE)

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/api/stats", api_stats),
        Route("/api/connections", api_connections),
        Route("/api/history", api_history),
        Mount("/static", StaticFiles(directory=str(static)), name="static"),
    ]
    return Starlette(routes=routes)
