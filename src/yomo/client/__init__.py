"""The clients' machinery: core (dial, handshake, reconnect), Source, StreamFunction, Context.

Import the public names from ``yomo`` (sync) or ``yomo.aio`` (asyncio) instead.
"""

from __future__ import annotations

__all__: list[str] = []
