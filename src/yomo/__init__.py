"""YoMo for Python: stream processing over QUIC, wire-compatible with Go YoMo.

The synchronous front door lives here (``yomo.Source``, ``yomo.StreamFunction``,
``yomo.Zipper``); the asyncio one is ``yomo.aio``.
"""

from __future__ import annotations

from ._version import SPEC_VERSION, __version__

__all__ = ["SPEC_VERSION", "__version__"]
