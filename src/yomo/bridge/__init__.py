"""The AI bridge and MCP server of a zipper (``bridge:`` in ``zipper.yaml``).

Go: pkg/bridge. The bridge is a client of the zipper it serves: its ``Caller``
writes tool calls on 0xE002 targeted at each function and reads results on
0xE001, over loopback QUIC like any source and stream function, so it works the
same whatever moves the zipper's frames. Its HTTP side (OpenAI-compatible API,
MCP) is an ASGI app served by uvicorn on the zipper's event loop.
"""

from __future__ import annotations

from yomo.zipper.bridge_config import AIConfig, AIServerConfig, BridgeConfig, MCPConfig

from .service import Bridge

__all__ = ["AIConfig", "AIServerConfig", "Bridge", "BridgeConfig", "MCPConfig"]
