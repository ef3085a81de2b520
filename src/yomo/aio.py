"""The asyncio front door: ``Source``, ``StreamFunction`` and ``Zipper`` as coroutines.

::

    async with yomo.aio.Source("src", "localhost:9000") as source:
        await source.write(0x33, b"hello")
"""

from __future__ import annotations

from yomo.client.context import AsyncContext, Context, CronContext
from yomo.client.sfn import AsyncStreamFunction as StreamFunction
from yomo.client.source import AsyncSource as Source
from yomo.errors import HandlerError
from yomo.session import ClientOptions, ClientState, ReconnectPolicy
from yomo.transport import QuicSettings, TlsConfig
from yomo.zipper.options import MeshOptions, ZipperOptions
from yomo.zipper.server import Zipper

__all__ = [
    "AsyncContext",
    "ClientOptions",
    "ClientState",
    "Context",
    "CronContext",
    "HandlerError",
    "MeshOptions",
    "QuicSettings",
    "ReconnectPolicy",
    "Source",
    "StreamFunction",
    "TlsConfig",
    "Zipper",
    "ZipperOptions",
]
