"""QUIC transport: frame connections, listening, dialling and TLS settings.

Only this package imports a QUIC library or the native data path. ``dial`` returns a
connection on the data path chosen by ``QuicSettings.backend`` / ``YOMO_QUIC_BACKEND``
(see ``yomo.transport.settings``); ``listen`` serves ``FrameConnection`` objects on the
pure-Python path (the zipper's native path is ``yomo.transport.native.NativeServer``).
"""

from __future__ import annotations

from . import native
from .quic import FrameConnection, Listener, backend_info, listen
from .quic import dial as _python_dial
from .settings import (
    ALPN,
    CLOSE_CODE,
    DEFAULT_CLIENT_SETTINGS,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_ZIPPER_SETTINGS,
    QuicSettings,
    wants_native,
)
from .tls import TlsConfig

__all__ = [
    "ALPN",
    "CLOSE_CODE",
    "DEFAULT_CLIENT_SETTINGS",
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "DEFAULT_ZIPPER_SETTINGS",
    "FrameConnection",
    "Listener",
    "NativeConnection",
    "QuicSettings",
    "TlsConfig",
    "backend_info",
    "dial",
    "listen",
]

NativeConnection = native.NativeConnection


async def dial(
    host: str,
    port: int,
    *,
    tls: TlsConfig | None = None,
    settings: QuicSettings = DEFAULT_CLIENT_SETTINGS,
) -> FrameConnection | NativeConnection:
    """Connect to a zipper (QUIC handshake done) on the chosen data path.

    Raises:
        ConnectError: the zipper did not answer within ``handshake_timeout`` or TLS failed.
        TransportError: the chosen data path is unknown or not installed.
    """
    if wants_native(settings):
        return await native.dial(host, port, tls=tls, settings=settings)
    return await _python_dial(host, port, tls=tls, settings=settings)
