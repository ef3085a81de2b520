"""The session layer: a connection to a zipper kept up, for clients and mesh links alike.

Dial, handshake (``handshake.py``: the sans-IO tables), read loop, reconnect with
backoff and re-send of what the zipper never acknowledged. ``yomo.client``
(Source, StreamFunction) and ``yomo.zipper.mesh`` (links to peer zippers) sit on
``ClientCore``; it sits on ``yomo.transport``'s ``Connection``.
"""

from __future__ import annotations

from .address import join_address, parse_address
from .core import THREAD_PENDING_BYTES, ClientCore, ClientState, ErrorHandler, FrameHandler
from .dial import Dialer
from .errorlog import RepeatedErrorLog
from .options import DEFAULT_WRITE_TIMEOUT, ClientKeywords, ClientOptions
from .policy import ReconnectPolicy, new_id

__all__ = [
    "DEFAULT_WRITE_TIMEOUT",
    "THREAD_PENDING_BYTES",
    "ClientCore",
    "ClientKeywords",
    "ClientOptions",
    "ClientState",
    "Dialer",
    "ErrorHandler",
    "FrameHandler",
    "ReconnectPolicy",
    "RepeatedErrorLog",
    "join_address",
    "new_id",
    "parse_address",
]
