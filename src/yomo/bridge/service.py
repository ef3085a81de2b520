"""``Bridge``: starts and stops the AI bridge and MCP server of one zipper.

Go: cli/serve.go (registerAIProvider, llm.Serve, mcp.Start). Started by
``Zipper.start`` when the zipper has a ``bridge:`` config, after the zipper
listens: it builds the provider, connects its ``Caller`` to the zipper over
loopback, and serves the HTTP API and the MCP server with uvicorn on the same
event loop. Any failure at start-up (unknown provider, missing SDK, taken port)
stops the zipper's start with a clear error instead of a half-served bridge.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from yomo._asgi import AsgiServer, serve_asgi
from yomo.errors import ConfigError
from yomo.zipper.bridge_config import DEFAULT_CALL_TIMEOUT, BridgeConfig

from .caller import Caller
from .chat import BridgeStats, ChatEngine
from .openai_compat import Provider
from .providers import build_provider

if TYPE_CHECKING:
    from yomo.zipper.server import Zipper

__all__ = ["KEEP_ALIVE", "Bridge", "loopback_address"]

#: Seconds the bridge's HTTP servers keep an idle connection open. Longer than the
#: idle limit of the clients that pool connections to them (httpx and the openai and
#: mcp SDKs: 5 s, aiohttp: 15 s, Go's net/http: 90 s): at uvicorn's default of 5 s the
#: server closed connections just as such clients reused them, and those requests
#: failed ("connection closed without an answer"). Go's bridge never closes idle ones.
KEEP_ALIVE = 120


def loopback_address(host: str, port: int) -> str:
    """Where a client in this process reaches a zipper listening on ``host:port``."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _starlette() -> Any:
    try:
        from starlette.applications import Starlette
    except ImportError as exc:  # pragma: no cover - starlette is a dependency
        raise ConfigError(
            f"the AI bridge needs starlette: pip install 'pyyomo[ai]' ({exc})"
        ) from exc
    return Starlette


async def _serve(app: Any, host: str, port: int, name: str, log: logging.Logger) -> AsgiServer:
    try:
        return await serve_asgi(app, host, port, name=name, log=log, keep_alive=KEEP_ALIVE)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{name}: cannot listen on {host}:{port}: {reason}") from exc


class Bridge:
    """The AI bridge (``bridge.ai``) and/or MCP server (``bridge.mcp``) of ``zipper``."""

    def __init__(self, zipper: Zipper, config: BridgeConfig) -> None:
        self.zipper = zipper
        self.config = config
        self.log = logging.getLogger("yomo.bridge")
        self.stats_counters = BridgeStats()
        self.provider: Provider | None = None
        self.caller: Caller | None = None
        self.engine: ChatEngine | None = None
        self.api: AsgiServer | None = None
        self.mcp: AsgiServer | None = None
        self._mcp_server: Any = None
        self._expiry: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Build the provider, connect the caller, serve HTTP. Raises on any failure."""
        ai = self.config.ai
        if ai is not None:
            self.provider = self._provider()
        host, port = self.zipper.address
        self.caller = Caller(
            loopback_address(host, port),
            self.zipper.functions,
            credential=self.zipper.bridge_credential,
            tls=self.zipper.tls,
            zipper_name=self.zipper.name,
            reachable=self._reachable,
            logger=self.log,
        )
        try:
            await self.caller.start()
            if self.zipper.mesh_peers:
                self._expiry = asyncio.get_running_loop().create_task(self._expire_peers())
            starlette = _starlette()
            if ai is not None:
                from .api import api_routes

                assert self.provider is not None
                self.engine = ChatEngine(
                    self.provider,
                    self.caller,
                    self.zipper.functions,
                    self.stats_counters,
                    call_timeout=ai.server.call_timeout,
                )
                app = starlette(
                    routes=api_routes(self.engine, ai.server, self.stats_counters, self.log)
                )
                api_host, api_port = ai.server.address
                self.api = await _serve(app, api_host, api_port, "ai bridge", self.log)
                self.log.info(
                    "AI bridge on %s with provider %s (%d LLM functions registered)",
                    self.api.url,
                    self.provider.name,
                    len(self.zipper.functions),
                )
            if self.config.mcp is not None:
                from .mcp import MCPServer

                mcp_config = self.config.mcp
                timeout = mcp_config.call_timeout
                if ai is not None and mcp_config.call_timeout == DEFAULT_CALL_TIMEOUT:
                    timeout = ai.server.call_timeout
                self._mcp_server = MCPServer(
                    self.caller, self.zipper.functions, self.stats_counters, call_timeout=timeout
                )
                mcp_host, mcp_port = mcp_config.address
                app = self._mcp_server.app(token=mcp_config.token, host=mcp_host)
                self.mcp = await _serve(app, mcp_host, mcp_port, "mcp server", self.log)
        except BaseException:
            await self.stop()
            raise

    def _provider(self) -> Provider:
        ai = self.config.ai
        assert ai is not None
        if not ai.providers:
            raise ConfigError(
                "bridge.ai.providers: no provider configured; add one, e.g. "
                "openai: {api_key: ..., model: ...} (see docs/llm.md)"
            )
        name = ai.server.provider or next(iter(ai.providers))
        return build_provider(name, ai.providers[name], timeout=ai.server.request_timeout)

    def _reachable(self, zipper: str) -> bool:
        mesh = self.zipper.mesh
        return mesh is not None and mesh.link_states().get(zipper) == "up"

    async def _expire_peers(self) -> None:
        """Forget the functions of mesh peers whose announcements stopped."""
        while True:
            interval = self.zipper.functions_announce_interval
            await asyncio.sleep(interval)
            self.zipper.functions.expire(3 * interval)

    async def stop(self) -> None:
        """Stop serving HTTP, close the caller's clients and the provider's client."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for server in (self.mcp, self.api):
            if server is not None:
                await server.stop()
        self.mcp = self.api = None
        if self.caller is not None:
            await self.caller.stop()
            self.caller = None
        if self.provider is not None:
            await self.provider.aclose()
            self.provider = None

    def stats(self) -> dict[str, Any]:
        """Counters for ``Zipper.stats()["bridge"]``: requests, LLM turns, tool calls."""
        s = self.stats_counters
        result: dict[str, Any] = {
            "requests": s.requests,
            "in_flight": s.in_flight,
            "errors": s.errors,
            "rejected": s.rejected,
            "llm_turns": s.llm_turns,
        }
        if self.caller is not None:
            c = self.caller.stats
            result["calls"] = {
                "total": c.calls,
                "answered": c.answered,
                "timeouts": c.timeouts,
                "failed": c.failed,
                "late_results": c.late_results,
                "pending": self.caller.pending,
                "seconds": round(c.seconds, 6),
            }
        if self.api is not None:
            result["ai_url"] = self.api.url
        if self.mcp is not None:
            result["mcp_url"] = self.mcp.url
        return result
