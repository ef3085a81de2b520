"""The MCP server: registered LLM functions as MCP tools, with the official ``mcp`` SDK.

Go: pkg/bridge/mcp (server.go, mcp_server.go). Routes: ``/mcp`` (streamable HTTP),
``/sse`` with its ``/messages/`` endpoint (the older SSE transport), ``/health``
and ``/``. ``tools/list`` reads the zipper's function registry at each call, so
tools come and go with their functions; ``tools/call`` runs the function through
the zipper with the bridge's ``Caller`` and answers its result as text (a call
that fails or times out is answered with ``isError`` set, beyond Go). The
request's ``_meta`` reaches the function as its agent context, as in Go. The
``yomo`` prompt is Go's (an empty system prompt).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from yomo.errors import ConfigError
from yomo.zipper.functions import FunctionRegistry

from .caller import Caller, ToolCall, new_id
from .chat import BridgeStats

__all__ = ["MCP_SERVER_NAME", "MCP_SERVER_VERSION", "MCPServer"]

#: Go's MCP server implementation name and version (pkg/bridge/mcp/mcp_server.go).
MCP_SERVER_NAME = "mcp-server"
MCP_SERVER_VERSION = "2025-03-26"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _sdk() -> tuple[Any, Any]:
    try:
        import mcp_types
        from mcp.server.lowlevel import Server
    except ImportError as exc:
        raise ConfigError(
            f"the MCP server needs the mcp package (2.x): pip install 'pyyomo[ai]' ({exc})"
        ) from exc
    return mcp_types, Server


class MCPServer:
    """One MCP server over the zipper's registered functions."""

    def __init__(
        self,
        caller: Caller,
        functions: FunctionRegistry,
        stats: BridgeStats,
        *,
        call_timeout: float,
    ) -> None:
        self.types, server_class = _sdk()
        self.caller = caller
        self.functions = functions
        self.stats = stats
        self.call_timeout = call_timeout
        self.tool_calls = 0
        self.server = server_class(
            MCP_SERVER_NAME,
            version=MCP_SERVER_VERSION,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
        )

    async def _list_tools(self, ctx: Any, params: Any) -> Any:
        t = self.types
        tools = [
            t.Tool(
                name=d.name,
                description=d.description or None,
                input_schema=d.parameters or {"type": "object"},
            )
            for d in self.functions.definitions()
        ]
        return t.ListToolsResult(tools=tools)

    async def _call_tool(self, ctx: Any, params: Any) -> Any:
        t = self.types
        self.tool_calls += 1
        self.stats.requests += 1
        meta = params.meta or {}
        if hasattr(meta, "model_dump"):
            meta = meta.model_dump(mode="json", by_alias=True)
        arguments = json.dumps(params.arguments or {}, separators=(",", ":"))
        call = ToolCall(new_id(8), params.name, arguments)
        (result,) = await self.caller.call(
            [call],
            tid=new_id(32),
            req_id=new_id(16),
            agent_context=json.dumps(meta or None, separators=(",", ":")),
            timeout=self.call_timeout,
        )
        if not result.ok:
            self.stats.errors += 1
        return t.CallToolResult(
            content=[t.TextContent(type="text", text=result.content)], is_error=not result.ok
        )

    async def _list_prompts(self, ctx: Any, params: Any) -> Any:
        t = self.types
        return t.ListPromptsResult(prompts=[t.Prompt(name="yomo")])

    async def _get_prompt(self, ctx: Any, params: Any) -> Any:
        t = self.types
        return t.GetPromptResult(
            description="yomo system prompt",
            messages=[
                t.PromptMessage(role="assistant", content=t.TextContent(type="text", text=""))
            ],
        )

    def app(self, *, token: str = "", host: str = "127.0.0.1") -> Any:
        """The ASGI app: ``/mcp``, ``/sse`` + ``/messages/``, ``/health``, ``/``."""
        from mcp.server.sse import SseServerTransport
        from mcp.server.streamable_http_manager import (
            StreamableHTTPASGIApp,
            StreamableHTTPSessionManager,
        )
        from mcp.server.transport_security import TransportSecuritySettings
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, PlainTextResponse, Response
        from starlette.routing import Mount, Route

        security = None
        if host in _LOOPBACK:  # the SDK's own default: no DNS rebinding to a local server
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
        manager = StreamableHTTPSessionManager(app=self.server, security_settings=security)
        sse = SseServerTransport("/messages/", security_settings=security)
        server = self.server

        async def handle_sse(request: Request) -> Response:
            async with sse.connect_sse(request.scope, request.receive, request._send) as streams:
                await server.run(streams[0], streams[1], server.create_initialization_options())
            return Response()

        async def health(request: Request) -> Response:
            return JSONResponse({"status": "healthy", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

        async def index(request: Request) -> Response:
            return PlainTextResponse("MCP Server is running")

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            async with manager.run():
                yield

        app = Starlette(
            routes=[
                Route("/", index),
                Route("/health", health),
                Route("/sse", handle_sse, methods=["GET"]),
                Mount("/messages/", app=sse.handle_post_message),
                Route("/mcp", StreamableHTTPASGIApp(manager)),
            ],
            lifespan=lifespan,
        )
        return _BearerToken(app, token) if token else app


class _BearerToken:
    """ASGI middleware: every path but ``/`` and ``/health`` needs the bearer token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") not in ("/", "/health"):
            headers = dict(scope.get("headers") or [])
            scheme, _, value = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or value.strip() != self.token:
                body = json.dumps(
                    {
                        "error": {
                            "code": "invalid_api_key",
                            "message": "missing or wrong bearer token",
                        }
                    }
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
