"""YoMo for Python: stream processing over QUIC, wire-compatible with Go YoMo.

The synchronous front door lives here (``yomo.Source``, ``yomo.StreamFunction``,
``yomo.Zipper``); the asyncio one is ``yomo.aio``.
"""

from __future__ import annotations

from ._sync import Source, StreamFunction, Zipper
from ._version import SPEC_VERSION, __version__
from .client.context import AsyncContext, Context, CronContext
from .client.core import ClientState, ReconnectPolicy
from .client.sfn import HandlerError
from .errors import (
    AuthenticationError,
    ConfigError,
    ConnectError,
    ConnectionClosedError,
    ConnectToError,
    HandshakeError,
    ProtocolError,
    RejectedError,
    ReservedTagError,
    TimeoutError,
    YomoError,
)
from .transport import QuicSettings, TlsConfig

__all__ = [
    "SPEC_VERSION",
    "AsyncContext",
    "AuthenticationError",
    "ClientState",
    "ConfigError",
    "ConnectError",
    "ConnectToError",
    "ConnectionClosedError",
    "Context",
    "CronContext",
    "HandlerError",
    "HandshakeError",
    "ProtocolError",
    "QuicSettings",
    "ReconnectPolicy",
    "RejectedError",
    "ReservedTagError",
    "Source",
    "StreamFunction",
    "TimeoutError",
    "TlsConfig",
    "YomoError",
    "Zipper",
    "__version__",
]
