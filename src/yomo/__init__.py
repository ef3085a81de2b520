"""YoMo for Python: stream processing over QUIC, wire-compatible with Go YoMo.

The synchronous front door lives here (``yomo.Source``, ``yomo.StreamFunction``,
``yomo.Zipper``); the asyncio one is ``yomo.aio``.
"""

from __future__ import annotations

from . import _logging
from ._sync import Source, StreamFunction, Zipper
from ._version import SPEC_VERSION, __version__
from .client.context import AsyncContext, Context, CronContext
from .errors import (
    AuthenticationError,
    ConfigError,
    ConnectError,
    ConnectionClosedError,
    ConnectToError,
    FramesMayBeLostError,
    FunctionCallError,
    FunctionDefinitionError,
    HandlerError,
    HandshakeError,
    LLMArgumentsError,
    NoLLMResultError,
    ProtocolError,
    RejectedError,
    ReservedTagError,
    StateError,
    TagError,
    TimeoutError,
    YomoError,
)
from .session import ClientOptions, ClientState, ReconnectPolicy
from .transport import QuicSettings, TlsConfig
from .zipper.options import MeshOptions, ZipperOptions

__all__ = [
    "SPEC_VERSION",
    "AsyncContext",
    "AuthenticationError",
    "ClientOptions",
    "ClientState",
    "ConfigError",
    "ConnectError",
    "ConnectToError",
    "ConnectionClosedError",
    "Context",
    "CronContext",
    "FramesMayBeLostError",
    "FunctionCallError",
    "FunctionDefinitionError",
    "HandlerError",
    "HandshakeError",
    "LLMArgumentsError",
    "MeshOptions",
    "NoLLMResultError",
    "ProtocolError",
    "QuicSettings",
    "ReconnectPolicy",
    "RejectedError",
    "ReservedTagError",
    "Source",
    "StateError",
    "StreamFunction",
    "TagError",
    "TimeoutError",
    "TlsConfig",
    "YomoError",
    "Zipper",
    "ZipperOptions",
    "__version__",
]

# Go's library reads YOMO_LOG_* when it loads; so do we (a no-op when none is set).
_logging.configure_from_env()
