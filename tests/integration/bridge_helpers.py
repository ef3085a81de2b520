"""Helpers of the AI bridge tests: a zipper serving a bridge in front of a scripted LLM."""

from __future__ import annotations

from typing import Any

from yomo.zipper.bridge_config import AIConfig, AIServerConfig, BridgeConfig, MCPConfig
from yomo.zipper.server import Zipper

__all__ = ["ai_bridge", "bridge_url", "mcp_url"]


def ai_bridge(
    base_url: str,
    *,
    provider: str = "vllm",
    model: str = "",
    mcp: bool = False,
    mcp_token: str = "",
    **server: Any,
) -> BridgeConfig:
    """A bridge config on 127.0.0.1 port 0 whose provider is the scripted LLM at ``base_url``."""
    settings = {"api_endpoint": base_url, "max_retries": "0"}
    if model:
        settings["model"] = model
    return BridgeConfig(
        ai=AIConfig(
            server=AIServerConfig(addr="127.0.0.1:0", provider=provider, **server),
            providers={provider: settings},
        ),
        mcp=MCPConfig(addr="127.0.0.1:0", token=mcp_token) if mcp else None,
    )


def bridge_url(z: Zipper) -> str:
    """``http://127.0.0.1:<port>`` of the zipper's AI bridge."""
    assert z._bridge is not None and z._bridge.api is not None
    return str(z._bridge.api.url)


def mcp_url(z: Zipper) -> str:
    """``http://127.0.0.1:<port>`` of the zipper's MCP server."""
    assert z._bridge is not None and z._bridge.mcp is not None
    return str(z._bridge.mcp.url)
