"""QUIC transport: frame connections, listening, dialling and TLS settings.

Only this package imports the QUIC library.
"""

from __future__ import annotations

from .quic import (
    ALPN,
    CLOSE_CODE,
    DEFAULT_CLIENT_SETTINGS,
    DEFAULT_ZIPPER_SETTINGS,
    FrameConnection,
    Listener,
    QuicSettings,
    backend_info,
    dial,
    listen,
)
from .tls import TlsConfig

__all__ = [
    "ALPN",
    "CLOSE_CODE",
    "DEFAULT_CLIENT_SETTINGS",
    "DEFAULT_ZIPPER_SETTINGS",
    "FrameConnection",
    "Listener",
    "QuicSettings",
    "TlsConfig",
    "backend_info",
    "dial",
    "listen",
]
