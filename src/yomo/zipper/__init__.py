"""The zipper: handshake and auth, routing by tag and target, mesh peers, config.

``yomo.aio.Zipper`` (asyncio) and ``yomo.Zipper`` (synchronous) are the
front doors; this package holds the parts they are built from.
"""

from __future__ import annotations

from .auth import Authenticator, AuthFailed, TokenAuth, authenticator_for
from .config import AuthConfig, MeshPeer, ZipperConfig, load_config, parse_config
from .router import Router, TagRouter
from .server import ConnectionInfo, SlowConsumerPolicy, Zipper, ZipperState
from .stats import ZipperStats

__all__ = [
    "AuthConfig",
    "AuthFailed",
    "Authenticator",
    "ConnectionInfo",
    "MeshPeer",
    "Router",
    "SlowConsumerPolicy",
    "TagRouter",
    "TokenAuth",
    "Zipper",
    "ZipperConfig",
    "ZipperState",
    "ZipperStats",
    "authenticator_for",
    "load_config",
    "parse_config",
]
